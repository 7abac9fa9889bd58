"""TVM and onnxruntime on one network: same ONNX file, same input, same threads, timed alternately.

A claim that holds with TVM's kernels but flips with onnxruntime's is a finding,
so the claims report puts both engines side by side. The box drifts by up to 2x
for minutes, so the two engines are never timed minutes apart: they are timed in
rounds (:mod:`hwface.measure.rounds`), and the ratio is taken per round (its
median over the rounds is the figure; drift between rounds cancels).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwface.measure.timing import LatencyStats, time_vm_main

ROUNDS = 7
REPEAT = 5  # samples per engine and round
MIN_REPEAT_MS = 20  # one sample lasts at least this long (ms; TVM takes an int)


@dataclass(frozen=True)
class EngineComparison:
    """Both engines' latencies (us, statistics of the rounds' medians) and the per-round ratio TVM / onnxruntime."""

    tvm: LatencyStats
    onnxruntime: LatencyStats
    ratio: float
    ratio_p10: float
    ratio_p90: float
    rounds: int
    threads: int
    onnxruntime_version: str
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_callable(fn: Callable[[], Any], repeat: int = REPEAT, min_repeat_ms: float = MIN_REPEAT_MS) -> list[float]:
    """``repeat`` samples (seconds per call) of ``fn``, each at least ``min_repeat_ms`` long, after a warm-up call.

    Like TVM's ``time_evaluator``: a sample runs ``fn`` as many times as fill
    ``min_repeat_ms`` (counted from the warm-up call) and is their mean.
    """
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, math.ceil(min_repeat_ms / 1e3 / once))
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - start) / number)
    return out


def onnxruntime_session(onnx_path: str | Path, threads: int):
    """An onnxruntime CPU session with ``threads`` intra-op threads, operators run one after another."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


@dataclass
class NetworkTimers:
    """One host artifact ready to time on both engines: one call of a timer is a median of ``repeat`` samples (us)."""

    tvm: Callable[[], float]
    onnxruntime: Callable[[], float]
    threads: int
    max_abs_diff: float  # between the two engines' first outputs


def network_timers(artifact_dir: str | Path, onnx_path: str | Path, repeat: int = REPEAT,
                   min_repeat_ms: float = MIN_REPEAT_MS) -> NetworkTimers:
    """Load a host artifact (TVM's VM, after its sha256 check) and an onnxruntime session on its ONNX file.

    Both take the artifact's input and this process's usable cores (threads).
    """
    import tvm
    from tvm import relax

    from hwface.compile.artifact import load_artifact, numpy_outputs
    from hwface.measure.local_run import load_input
    from hwface.measure.threads import use_all_cores

    artifact = load_artifact(artifact_dir)
    x = load_input(artifact, None)
    threads = use_all_cores()
    dev = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.so_path)), dev)
    arg = tvm.runtime.tensor(x, dev)
    sess = onnxruntime_session(onnx_path, threads)
    feed = {sess.get_inputs()[0].name: x}
    diff = float(np.max(np.abs(numpy_outputs(vm["main"](arg))[0] - np.asarray(sess.run(None, feed)[0]))))
    return NetworkTimers(
        tvm=lambda: time_vm_main(vm, dev, [arg], repeat=repeat, min_repeat_ms=max(1, round(min_repeat_ms))).median_us,
        onnxruntime=lambda: 1e6 * float(np.median(time_callable(lambda: sess.run(None, feed), repeat, min_repeat_ms))),
        threads=threads, max_abs_diff=diff)


def compare_engines(artifact_dir: str | Path, onnx_path: str | Path, rounds: int = ROUNDS, repeat: int = REPEAT,
                    min_repeat_ms: float = MIN_REPEAT_MS) -> EngineComparison:
    """Time a host artifact (TVM's VM) and onnxruntime on its ONNX file, in alternating rounds, on this machine.

    Parameters
    ----------
    artifact_dir : path
        A host artifact (``hwface compile``), loaded after its sha256 check.
    onnx_path : path
        The ONNX file it was compiled from.
    rounds : int
        Rounds of both engines (:func:`hwface.measure.rounds.time_in_rounds`); the
        ratio is the median of the per-round ratios.
    repeat : int
        Samples per engine and round.
    min_repeat_ms : float
        Minimum duration of one sample, in ms.

    Returns
    -------
    EngineComparison
        With the largest absolute difference between the two engines' first outputs.
    """
    import onnxruntime as ort

    from hwface.measure.rounds import time_in_rounds

    t = network_timers(artifact_dir, onnx_path, repeat, min_repeat_ms)
    r = time_in_rounds({"tvm": t.tvm, "onnxruntime": t.onnxruntime}, rounds)
    ratio, p10, p90 = r.ratio("tvm", "onnxruntime")
    return EngineComparison(
        tvm=LatencyStats.from_seconds(np.asarray(r.medians_us["tvm"]) / 1e6),
        onnxruntime=LatencyStats.from_seconds(np.asarray(r.medians_us["onnxruntime"]) / 1e6),
        ratio=ratio, ratio_p10=p10, ratio_p90=p90, rounds=rounds, threads=t.threads,
        onnxruntime_version=ort.__version__, max_abs_diff=t.max_abs_diff)

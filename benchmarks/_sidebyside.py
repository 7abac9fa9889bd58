"""Side-by-side latency of TVM artifacts, onnxruntime and PyTorch: alternating rounds, one input, equal threads.

Each runtime lives in its own process (:class:`IsolatedRuntime`) and the parent asks
one at a time for a timed sample, so the runtimes alternate within one run but share
no thread pool, allocator or OpenMP state (in one process, tuned TVM measured 3.5 ms
beside the other two and 2.4-2.8 ms alone, docs/performance.md). Ratios are taken
round by round (:func:`paired_ratio`): this machine's speed drifts by up to 2x for
minutes at a time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np


def _time_ms(fn, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e3


# Pause before timing each runtime: the previous one's thread pool keeps spinning for a
# while after its last call (TVM's, onnxruntime's and OpenMP's all do) and would take
# the cores from the next one.
SETTLE_S = 0.2


# One sample lasts at least this long, so that it is dominated by steady-state calls.
MIN_SAMPLE_MS = 100.0


def _tvm(so_path: str, shape: tuple[int, ...], threads: int):
    from hwface.measure.threads import ENV, runtime_threads

    os.environ[ENV] = str(threads)  # before TVM's thread pool starts: its x86 default is half the CPUs
    import tvm
    from tvm import relax

    from hwface.export import example_input

    if runtime_threads() != threads:
        raise RuntimeError(f"TVM runs {runtime_threads()} threads, not {threads}")
    dev = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(so_path), dev)
    x = tvm.runtime.tensor(example_input(shape), dev)
    return lambda: vm["main"](x)


def _onnxruntime(onnx_path: str, shape: tuple[int, ...], threads: int):
    import onnxruntime as ort

    from hwface.export import example_input

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: example_input(shape)}
    return lambda: sess.run(None, feeds)


def _pytorch(model_name: str, shape: tuple[int, ...], threads: int):
    import torch

    from hwface.export import example_input
    from hwface.models import create_model

    torch.set_num_threads(threads)
    model = create_model(model_name, input_size=tuple(shape[2:]))
    x = torch.from_numpy(example_input(shape))

    def run():
        with torch.no_grad():
            model(x)

    return run


def _serve(conn, make, args) -> None:
    try:
        fn = make(*args)
        fn()  # warm-up: thread pools, caches, lazy initialisation
        conn.send(("ready", None))
    except Exception as e:  # reported to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while (number := conn.recv()) is not None:
        conn.send(("ok", _time_ms(fn, number)))


class IsolatedRuntime:
    """A runtime loaded in a child process that times ``number`` calls on request (ms per call)."""

    def __init__(self, make, *args) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no thread pool or pinning inherited
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, make, args), daemon=True)
        self._proc.start()
        status, detail = self._conn.recv()
        if status != "ready":
            self.close()
            raise RuntimeError(f"{make.__name__.strip('_')} did not start: {detail}")

    def time_ms(self, number: int) -> float:
        self._conn.send(number)
        return self._conn.recv()[1]

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


def side_by_side(runners: dict[str, IsolatedRuntime], rounds: int) -> dict[str, list[float]]:
    """Mean latency of each runtime (ms) in each of ``rounds`` rounds, alternating runtimes within a round.

    Each sample is a warm call after :data:`SETTLE_S` of rest, then enough calls
    to last :data:`MIN_SAMPLE_MS`.
    """
    number = {name: max(5, int(MIN_SAMPLE_MS / max(r.time_ms(3), 1e-3))) for name, r in runners.items()}
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, r in runners.items():
            time.sleep(SETTLE_S)
            r.time_ms(1)
            samples[name].append(r.time_ms(number[name]))
    return samples


def median(samples: list[float]) -> float:
    return float(np.median(samples))


def paired_ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median, min and max over rounds of ``a / b``, each round's two samples taken seconds apart.

    The machine's speed drifts (a neighbour on the host can halve it for minutes); a
    ratio within one round cancels what a ratio of two medians would not.
    """
    r = np.asarray(a) / np.asarray(b)
    return float(np.median(r)), float(r.min()), float(r.max())


def tvm_runtime(artifact, threads: int) -> IsolatedRuntime:
    """A host TVM artifact in its own process."""
    return IsolatedRuntime(_tvm, str(artifact.so_path), tuple(artifact.manifest.input["shape"]), threads)


def runtimes(artifact, model_name: str, threads: int) -> dict[str, IsolatedRuntime]:
    """A TVM artifact (host), onnxruntime on its model.onnx and the PyTorch model, each in its own process."""
    shape = tuple(artifact.manifest.input["shape"])
    return {
        "tvm": tvm_runtime(artifact, threads),
        "onnxruntime": IsolatedRuntime(_onnxruntime, str(artifact.onnx_path), shape, threads),
        "pytorch": IsolatedRuntime(_pytorch, model_name, shape, threads),
    }


def close_all(runners: dict[str, IsolatedRuntime]) -> None:
    for r in runners.values():
        r.close()

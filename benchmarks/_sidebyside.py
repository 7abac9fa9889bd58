"""Side-by-side latency of TVM artifacts, onnxruntime and PyTorch: alternating rounds, one input, equal threads."""

from __future__ import annotations

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


def side_by_side(runners: dict, rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of the mean latency of each runner (ms), alternating runners each round.

    Each sample is a warm call after :data:`SETTLE_S` of rest, then enough calls
    to last :data:`MIN_SAMPLE_MS`.
    """
    number = {}
    for name, fn in runners.items():
        fn()  # warm-up
        number[name] = max(5, int(MIN_SAMPLE_MS / max(_time_ms(fn, 3), 1e-3)))
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            time.sleep(SETTLE_S)
            fn()
            samples[name].append(_time_ms(fn, number[name]))
    return {name: float(np.median(v)) for name, v in samples.items()}


def runtimes(artifact, model_name: str, threads: int) -> dict:
    """Callables running one input through a TVM artifact (host), onnxruntime (its model.onnx) and PyTorch."""
    import onnxruntime as ort
    import torch
    import tvm
    from tvm import relax

    from hwface.export import example_input
    from hwface.measure.threads import ENV, runtime_threads
    from hwface.models import create_model

    os.environ[ENV] = str(threads)  # before TVM's thread pool starts: its x86 default is half the CPUs
    if runtime_threads() != threads:
        raise RuntimeError(f"TVM runs {runtime_threads()} threads, not {threads}: set {ENV} before running TVM")

    x = example_input(tuple(artifact.manifest.input["shape"]))
    dev = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.so_path)), dev)
    xt = tvm.runtime.tensor(x, dev)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(artifact.onnx_path), opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x}
    torch.set_num_threads(threads)
    model = create_model(model_name, input_size=tuple(x.shape[2:]))
    xp = torch.from_numpy(x)

    def run_torch():
        with torch.no_grad():
            model(xp)

    return {"tvm": lambda: vm["main"](xt), "onnxruntime": lambda: sess.run(None, feeds), "pytorch": run_torch}

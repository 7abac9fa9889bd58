"""Side-by-side latency of TVM artifacts, onnxruntime and PyTorch: alternating rounds, one input, equal threads."""

from __future__ import annotations

import time

import numpy as np


def _time_ms(fn, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e3


def side_by_side(runners: dict, rounds: int, number: int = 5) -> dict[str, float]:
    """Median over ``rounds`` of the mean of ``number`` calls of each runner (ms), alternating runners each round."""
    for fn in runners.values():
        fn()  # warm-up
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            samples[name].append(_time_ms(fn, number))
    return {name: float(np.median(v)) for name, v in samples.items()}


def runtimes(artifact, model_name: str, threads: int) -> dict:
    """Callables running one input through a TVM artifact (host), onnxruntime (its model.onnx) and PyTorch."""
    import onnxruntime as ort
    import torch
    import tvm
    from tvm import relax

    from hwface.export import example_input
    from hwface.models import create_model

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

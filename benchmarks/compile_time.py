"""Compile time of mobilefacenet and seesaw_share for host and linux-arm64, and the untuned
host latency beside onnxruntime's and PyTorch's on the same input and thread count.

Timings are measured side by side in one run, alternating between the runtimes, and
reported as medians and ratios (absolute times drift on a shared machine).

    .venv/bin/python benchmarks/compile_time.py [--models mobilefacenet seesaw_share] [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mobilefacenet", "seesaw_share"])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of latency sampling")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    import tvm
    from tvm import relax

    from hwface.compile import compile_artifact
    from hwface.export import example_input
    from hwface.models import create_model
    from hwface.targets import host_cores

    threads = host_cores()
    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="hwface-bench-"))
    targets = ["host"] + (["linux-arm64"] if shutil.which("aarch64-linux-gnu-g++") else [])
    print(f"threads: {threads} (TVM num-cores, onnxruntime intra-op, torch)")
    print(f"{'model':<16}{'target':<14}{'compile s':>10}")
    arts = {}
    for name in args.models:
        for target in targets:
            t0 = time.perf_counter()
            arts[name, target] = compile_artifact(work / f"{name}-{target}", target=target, model=name)
            print(f"{name:<16}{target:<14}{time.perf_counter() - t0:>10.1f}")

    print(f"\nuntuned host latency, median of {args.rounds} alternating rounds (ms)")
    print(f"{'model':<16}{'TVM untuned':>12}{'onnxruntime':>12}{'PyTorch':>10}{'TVM/ORT':>9}{'TVM/PT':>8}")
    for name in args.models:
        art = arts[name, "host"]
        x = example_input(tuple(art.manifest.input["shape"]))
        dev = tvm.cpu()
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(art.so_path)), dev)
        xt = tvm.runtime.tensor(x, dev)
        tvm_eval = vm.time_evaluator("main", dev, number=5, repeat=1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(art.onnx_path), opts, providers=["CPUExecutionProvider"])
        model = create_model(name)
        xp = torch.from_numpy(x)
        feeds = {sess.get_inputs()[0].name: x}
        samples = {"tvm": [], "ort": [], "torch": []}
        vm["main"](xt), sess.run(None, feeds), model(xp)  # warm-up
        for _ in range(args.rounds):
            samples["tvm"].append(tvm_eval(xt).mean * 1e3)
            samples["ort"].append(_time(lambda: sess.run(None, feeds)))
            with torch.no_grad():
                samples["torch"].append(_time(lambda: model(xp)))
        med = {k: float(np.median(v)) for k, v in samples.items()}
        print(f"{name:<16}{med['tvm']:>12.2f}{med['ort']:>12.2f}{med['torch']:>10.2f}"
              f"{med['tvm'] / med['ort']:>9.2f}{med['tvm'] / med['torch']:>8.2f}")
    shutil.rmtree(work, ignore_errors=True)


def _time(fn, number: int = 5) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e3


if __name__ == "__main__":
    main()

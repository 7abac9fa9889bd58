"""Compile time of mobilefacenet and seesaw_share for host and linux-arm64, and the untuned
host latency beside onnxruntime's and PyTorch's on the same input and thread count.

Timings are measured side by side in one run, alternating between the runtimes, and
reported as medians and ratios (absolute times drift on a shared machine).

    .venv/bin/python benchmarks/compile_time.py [--models mobilefacenet seesaw_share] [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sidebyside import close_all, median, paired_ratio, runtimes, side_by_side  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mobilefacenet", "seesaw_share"])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of latency sampling")
    args = ap.parse_args()

    from hwface.compile import compile_artifact
    from hwface.targets import host_cores

    threads = host_cores()
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
        rt = runtimes(arts[name, "host"], name, threads)
        try:
            s = side_by_side(rt, args.rounds)
        finally:
            close_all(rt)
        print(f"{name:<16}{median(s['tvm']):>12.2f}{median(s['onnxruntime']):>12.2f}{median(s['pytorch']):>10.2f}"
              f"{paired_ratio(s['tvm'], s['onnxruntime'])[0]:>9.2f}{paired_ratio(s['tvm'], s['pytorch'])[0]:>8.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

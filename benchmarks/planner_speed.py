"""How fast the kernel planner (hwface.nas.plan.plan_kernels) plans arch specs: cold and warm.

Prints, for a 20-block spec and for sampled specs of the default search space, the
median microseconds of one plan (warm: every block signature already planned once),
the first (cold) plan, and the planned kernels. Pure Python: no torch, ONNX or TVM
is imported by the planner (checked below).

    .venv/bin/python benchmarks/planner_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from hwface.nas.plan import plan_block, plan_kernels, stage_segment
from hwface.nas.spec import ArchSpec
from hwface.targets import TargetSpec

# The planner reads only the target's kind; load_target would validate the TOML with TVM (seconds of imports).
CPU = TargetSpec("host", "planner benchmark", "cpu", {"kind": "llvm"}, "host")

# A 20-block spec touching every block kind and head option of the grammar (112x112, 56 -> 7 px).
SPEC_20 = {
    "input_size": [112, 112],
    "stem": {"width": 48, "act": "prelu", "dwconv": True},
    "stages": [
        {"block": "mbconv", "width": 32, "depth": 2, "stride": 1, "kernel": 5, "expansion": 4, "se": True,
         "se_placement": "pre", "act": "swish"},
        {"block": "seesaw_share", "width": 64, "depth": 4, "stride": 2, "kernel": 3, "expansion": 2, "se": True,
         "se_placement": "pre", "act": "hardswish"},
        {"block": "frmbconv", "width": 96, "depth": 5, "stride": 2, "kernel": 7, "expansion": 4, "se": True,
         "se_placement": "post", "act": "prelu"},
        {"block": "mfn_bottleneck", "width": 128, "depth": 4, "stride": 1, "kernel": 3, "expansion": 2, "se": False,
         "act": "relu"},
        {"block": "seesaw_shuffle", "width": 160, "depth": 5, "stride": 2, "kernel": 5, "expansion": 4, "se": True,
         "se_placement": "pre", "act": "swish", "skip": "pool_conv"},
    ],
    "head": {"kind": "gdconv", "conv_width": 512, "act": "prelu", "projection": "conv"},
    "embedding": 512,
}


def _clear() -> None:
    plan_block.cache_clear()
    stage_segment.cache_clear()


def _median_us(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2000, help="timed plans per figure")
    args = ap.parse_args(argv)
    host = CPU
    spec = ArchSpec.from_dict(SPEC_20)
    assert spec.n_blocks == 20

    _clear()
    t0 = time.perf_counter()
    kernels = plan_kernels(spec, host)
    cold = (time.perf_counter() - t0) * 1e6
    warm = _median_us(lambda: plan_kernels(spec, host), args.repeats)
    print(f"20-block spec: {len(kernels)} distinct kernels, {sum(n for _, n in kernels)} calls")
    print(f"  cold (first plan, empty block cache): {cold:8.0f} us")
    print(f"  warm (median of {args.repeats}):            {warm:8.1f} us  = {warm / spec.n_blocks:.2f} us a block")
    heavy = [m for m in ("torch", "onnx", "tvm") if m in sys.modules]
    print(f"  torch / onnx / tvm imported: {heavy or 'none'}")

    try:  # sampled specs need torch for their MAdds filter; the plans themselves do not
        from hwface.nas import DEFAULT_SPACE, sample_arch
    except ImportError:
        return
    specs = [sample_arch(DEFAULT_SPACE, seed) for seed in range(50)]
    _clear()
    t0 = time.perf_counter()
    for s in specs:
        plan_kernels(s, host)
    cold_all = (time.perf_counter() - t0) * 1e6 / len(specs)
    warm = sorted(_median_us(lambda s=s: plan_kernels(s, host), max(1, args.repeats // 10)) for s in specs)
    blocks = statistics.mean(s.n_blocks for s in specs)
    print(f"50 sampled specs (mean {blocks:.1f} blocks): cold {cold_all:.0f} us a spec; warm median "
          f"{statistics.median(warm):.1f} us, range {warm[0]:.1f}-{warm[-1]:.1f} us")


if __name__ == "__main__":
    main()

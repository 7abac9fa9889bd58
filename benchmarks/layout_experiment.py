"""Would NHWC convolutions tune better than NCHW on the host? An A/B on one network's heaviest kernels.

hwface fuses networks in the ONNX layout (NCHW). onnxruntime runs convolutions in
blocked layouts and beats tuned TVM on seesaw_share (docs/performance.md). This
converts every conv2d to NHWC/OHWI (``relax.transform.ConvertLayout``, weights
folded at compile time), fuses both versions the same way, picks each version's
``--top`` kernels by FLOPs x calls, tunes them with the same ``--trials`` budget
(:func:`hwface.tune.kernel.tune_kernels`) and prints the summed best latency.
Nothing is written to the tuning logs or the latency database.

    .venv/bin/python benchmarks/layout_experiment.py [--model seesaw_share] [--top 4] [--trials 24]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter


def nhwc(mod, target):
    import tvm
    from tvm import relax

    seq = tvm.transform.Sequential([
        relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]}),
        relax.transform.Normalize(),
        relax.transform.FoldConstant(),
        relax.transform.EliminateCommonSubexpr(),
    ])
    with target, tvm.transform.PassContext(opt_level=3):
        return seq(mod)


def heaviest(fused, top: int):
    """The ``top`` PrimFuncs by estimated FLOPs x number of calls from ``main``: name -> (func, calls, flops)."""
    import tvm
    from tvm import relax
    from tvm.s_tir.analysis import estimate_tir_flops

    from hwface.measure.kernel_timing import primfuncs

    funcs = primfuncs(fused)
    calls: Counter[str] = Counter()

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.args[0], tvm.ir.GlobalVar):
            calls[expr.args[0].name_hint] += 1

    relax.analysis.post_order_visit(fused["main"], visit)
    flops = {n: estimate_tir_flops(tvm.IRModule({"main": f})) for n, f in funcs.items() if calls[n]}
    ranked = sorted(flops, key=lambda n: -flops[n] * calls[n])[:top]
    return {n: (funcs[n], calls[n], flops[n]) for n in ranked}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="seesaw_share")
    ap.add_argument("--top", type=int, default=4)
    ap.add_argument("--trials", type=int, default=24)
    args = ap.parse_args()

    from hwface.compile.network import load_network
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.rpc.embedded import device_for
    from hwface.targets import load_target
    from hwface.tune.kernel import tune_kernels

    spec = load_target("host")
    target = spec.tvm_target()
    network = load_network(args.model, None, None, None)
    imported = import_onnx(network.onnx_model)
    layouts = {"NCHW": fuse(imported, target), "NHWC": fuse(nhwc(imported, target), target)}
    with device_for(spec, None) as ep:
        for layout, fused in layouts.items():
            picked = heaviest(fused, args.top)
            t0 = time.perf_counter()
            tuned = tune_kernels({n: f for n, (f, _, _) in picked.items()}, spec, ep, args.trials)
            total_flops = sum(fl * c for _, c, fl in picked.values())
            total_us = sum(tuned[n].best_us * c for n, (_, c, _) in picked.items() if n in tuned)
            print(f"{layout}: top {len(picked)} kernels ({total_flops / 1e6:.0f} MFLOP with repeats), "
                  f"{args.trials} trials each, {time.perf_counter() - t0:.0f} s: {total_us:.0f} us "
                  f"({total_flops / total_us / 1e3:.1f} GFLOP/s)", flush=True)
            for n, (_, c, fl) in picked.items():
                if n in tuned:
                    print(f"  {n:<58} x{c}  {tuned[n].best_us:8.1f} us  {fl / tuned[n].best_us / 1e3:6.1f} GFLOP/s"
                          f"{'  (default schedule)' if tuned[n].default_is_best else ''}")


if __name__ == "__main__":
    main()

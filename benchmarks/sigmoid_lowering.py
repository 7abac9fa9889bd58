"""Swish (x * sigmoid(x)) with TVM's tir.sigmoid vs hwface's fast_exp lowering, side by side on the host.

Both kernels get the same schedule (flattened, parallel, vectorized by 16), so the
difference is the exponential alone: tir.sigmoid calls scalar libm ``expf`` per
element, ``hwface.compile.pipeline.fast_sigmoid`` a vectorizable polynomial.

    .venv/bin/python benchmarks/sigmoid_lowering.py [--elements 100352] [--rounds 7]
"""

from __future__ import annotations

import argparse

import numpy as np


def swish_kernel(n: int, lowering: str, target):
    import tvm
    from tvm import te, topi

    from hwface.compile.pipeline import fast_sigmoid

    x = te.placeholder((n,), name="x")
    s = topi.sigmoid(x) if lowering == "tir.sigmoid" else fast_sigmoid(x)
    y = te.compute((n,), lambda i: x[i] * s[i], name="y")
    sch = tvm.s_tir.Schedule(te.create_prim_func([x, y]))
    for block in sch.get_child_blocks(sch.get_sblock("root"))[:-1]:
        sch.compute_inline(block)
    outer, inner = sch.split(sch.get_loops(sch.get_sblock("y"))[0], [None, 16])
    sch.parallel(outer)
    sch.vectorize(inner)
    return tvm.compile(sch.mod, target=target).mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", type=int, default=128 * 28 * 28, help="default: a 128x28x28 feature map")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    import tvm

    from hwface.targets import load_target

    target = load_target("host").tvm_target()
    dev = tvm.cpu()
    xa = np.random.default_rng(0).uniform(-8, 8, args.elements).astype("float32")
    ref = xa / (1 + np.exp(-xa.astype("float64")))
    kernels = {name: swish_kernel(args.elements, name, target) for name in ("tir.sigmoid", "fast_exp")}
    x = tvm.runtime.tensor(xa, dev)
    out = {name: tvm.runtime.tensor(np.zeros_like(xa), dev) for name in kernels}
    samples: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(args.rounds):  # alternate the two kernels each round
        for name, lib in kernels.items():
            samples[name].append(np.median(lib.time_evaluator("main", dev, number=50, repeat=3)(x, out[name]).results))
    us = {name: 1e6 * float(np.median(v)) for name, v in samples.items()}
    for name in kernels:
        err = float(np.max(np.abs(out[name].numpy() - ref) / np.maximum(np.abs(ref), 1e-6)))
        print(f"{name:<12} {us[name]:9.1f} us  ({us[name] * 1e3 / args.elements:.2f} ns/element, max rel err {err:.1e})")
    print(f"tir.sigmoid / fast_exp = {us['tir.sigmoid'] / us['fast_exp']:.2f}")


if __name__ == "__main__":
    main()

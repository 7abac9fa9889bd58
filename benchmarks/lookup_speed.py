"""How fast the lookup API answers: LatencyModel.layers() on database hits, .network(spec) warm, the planner alone.

    python benchmarks/lookup_speed.py [--target host] [--regime default] [--fingerprint DIGEST]

Prints figures (goals of issue 14: >= 1,000,000 keys/s batched on hits; a
20-block spec under 200 us median warm, planner and predictor misses included).
Run it on a quiet machine; it takes about half a minute.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _spec_with_blocks(n_blocks: int, seed: int = 0):
    from hwface.nas.space import DEFAULT_SPACE, draw_arch

    import random

    rng = random.Random(seed)
    while True:
        spec = draw_arch(DEFAULT_SPACE, rng)
        if spec.n_blocks == n_blocks:
            return spec


def _distinct_specs(n_blocks: int, count: int, seed: int = 1) -> list:
    """``count`` different specs of ``n_blocks`` blocks: one parent and its one-block mutations."""
    import random

    from hwface.nas.search import mutate
    from hwface.nas.space import DEFAULT_SPACE

    rng = random.Random(seed)
    seen, out = set(), []
    parent = _spec_with_blocks(n_blocks, seed)
    while len(out) < count:
        child = mutate(parent, DEFAULT_SPACE, rng)
        if child.n_blocks == n_blocks and child not in seen:
            seen.add(child)
            out.append(child)
            parent = child
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="host")
    p.add_argument("--regime", default="default")
    p.add_argument("--fingerprint")
    p.add_argument("--batch", type=int, default=100_000)
    args = p.parse_args(argv)
    import numpy as np

    from hwface.nas.lookup import LatencyModel
    from hwface.nas.plan import plan_kernels

    model = LatencyModel.load(args.target, args.regime, args.fingerprint)
    hits = list(model.lookup._index)
    keys = [hits[i] for i in np.random.default_rng(0).integers(0, len(hits), args.batch)]
    model.layers(keys[:1000])
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.layers(keys)
        rates.append(len(keys) / (time.perf_counter() - t0))
    print(f"layers() on database hits, batches of {len(keys)}: median {statistics.median(rates) / 1e6:.2f} M keys/s "
          f"[{min(rates) / 1e6:.2f}-{max(rates) / 1e6:.2f}]")
    spec = _spec_with_blocks(20)
    n_kernels = len(model.kernels_of(spec)[1])
    cold0 = time.perf_counter()
    est = model.network(spec)
    cold = time.perf_counter() - cold0
    fresh = _distinct_specs(20, 2000)
    for s in fresh:  # predictions of their kernels cached; each spec is planned anew below
        model.lookup.layers([k for k, _ in plan_kernels(s, model.spec)])
    fresh_iter = iter(fresh)
    for name, fn in (("plan_kernels", lambda: plan_kernels(spec, model.spec)),
                     ("network(spec), the same spec (plan remembered)", lambda: model.network(spec)),
                     ("network(spec), a new spec each call (planned)", lambda: model.network(next(fresh_iter)))):
        times = []
        for _ in range(2000):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"{name} of a 20-block spec ({n_kernels} distinct kernels, {est.predicted_kernels} predicted): "
              f"median {statistics.median(times) * 1e6:.0f} us warm, p99 {np.percentile(times, 99) * 1e6:.0f} us")
    print(f"network(spec) cold (first call, predictor misses computed): {cold * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How far apart are two MetaSchedule searches of the same kernel at the tuned regime's budget? (issue 13)

The tuned regime's rows are each the best of ``K`` trials of one search. A
second search with another seed finds another best schedule, and that spread is
a floor under any kernel-level error of the tuned predictor: it cannot predict
which search a kernel got. This script draws ``--n`` sampler configurations (a
seeded draw over every sampler kind, as ``hwface sample`` draws them), tunes
their kernels once per ``--seeds`` seed at ``--trials`` trials a kernel, builds
one library per search and times the libraries alternately (``--rounds`` rounds,
A B, B A, ...) on the host's embedded device, so the box's drift hits every search
alike. Nothing is stored.

Prints, per kernel, the slowest search's latency over the fastest's, and over
all kernels the share whose searches agree within 5%, 10% and 20%; ``--format
json`` prints the same as JSON.

    .venv/bin/python benchmarks/tuning_spread.py [--n 12] [--trials 16] [--seeds 0 1] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

DRAW_SEED = 2027  # configurations drawn apart from the sampler's own stream (seed 0)


def build_searches(n: int, trials: int, seeds: list[int], say) -> dict:
    """``{seed: BuiltBatch}``: the same ``n`` configurations, their kernels tuned with each seed."""
    from hwface.latency.sampler import KINDS, build_batch, prior_stream
    from hwface.rpc.embedded import device_for
    from hwface.targets import load_target
    from hwface.tune.kernel import tune_kernels

    spec = load_target("host")
    stream = prior_stream(KINDS, DRAW_SEED)
    configs = [next(stream) for _ in range(n)]
    work = Path(tempfile.mkdtemp(prefix="hwface-spread-"))
    built = {}
    with device_for(spec, None) as ep:
        for seed in seeds:
            t0 = time.perf_counter()
            built[seed] = build_batch(configs, spec, work, f"s{seed}",
                                      lambda funcs, seed=seed: tune_kernels(funcs, spec, ep, trials, seed=seed))
            say(f"search seed {seed}: {len(built[seed].kernels)} kernels tuned in {time.perf_counter() - t0:.0f} s")
            if built[seed].so_path is None:
                raise SystemExit(f"search seed {seed}: no kernel ran ({built[seed].failed})")
    return built


def time_alternately(built: dict, rounds: int, say) -> dict[int, dict[str, float]]:
    """``{seed: {kernel: median over rounds of its median latency (us)}}``, libraries timed in turn."""
    from hwface.measure.kernel_timing import time_kernels
    from hwface.rpc.devices import connect
    from hwface.rpc.embedded import device_for
    from hwface.targets import load_target

    names = set.intersection(*({k.name for _, k, _ in b.kernels} for b in built.values()))
    per_seed: dict[int, dict[str, list[float]]] = {s: {n: [] for n in names} for s in built}
    with device_for(load_target("host"), None) as ep:
        session = connect(ep.tracker, ep.key, timeout_s=120, session_timeout_s=0)
        loaded: dict = {}
        for r in range(rounds):
            order = list(built) if r % 2 == 0 else list(reversed(built))  # no search always timed first
            for seed in order:
                specs = [k for _, k, _ in built[seed].kernels if k.name in names]
                for name, st in time_kernels(session, built[seed].so_path, specs, loaded=loaded).items():
                    per_seed[seed][name].append(st.median_us)
            say(f"round {r + 1}/{rounds} timed")
        loaded.clear()
        session.sess = None
    return {s: {n: float(np.median(v)) for n, v in d.items()} for s, d in per_seed.items()}


def summarize(medians: dict[int, dict[str, float]], built: dict) -> dict:
    """Per kernel the slowest search over the fastest (and whether they chose one schedule); the shares within."""
    seeds = list(medians)
    rows = []
    for name in sorted(medians[seeds[0]]):
        lat = [medians[s][name] for s in seeds]
        hashes = {built[s].schedules.get(name) for s in seeds}
        rows.append({"kernel": name, "fastest_us": min(lat), "spread": max(lat) / min(lat),
                     "same_schedule": len(hashes) == 1})
    spread = np.array([r["spread"] for r in rows])
    return {"kernels": len(rows), "seeds": seeds,
            "within_5": float(np.mean(spread <= 1.05)), "within_10": float(np.mean(spread <= 1.10)),
            "within_20": float(np.mean(spread <= 1.20)), "median_spread": float(np.median(spread)),
            "p90_spread": float(np.percentile(spread, 90)),
            "same_schedule": float(np.mean([r["same_schedule"] for r in rows])), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="sampler configurations (each one to a few kernels)")
    ap.add_argument("--trials", type=int, default=16, help="trials a kernel (the tuned regime's K)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one search per seed (two or more)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args()
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        ap.error("--seeds needs two or more distinct seeds")
    say = (lambda msg: None) if args.format == "json" else (lambda msg: print(msg, flush=True))
    built = build_searches(args.n, args.trials, args.seeds, say)
    out = summarize(time_alternately(built, args.rounds, say), built)
    if args.format == "json":
        print(json.dumps({**vars(args), **out}, indent=2))
        return
    for r in out["rows"]:
        print(f"{r['kernel']:<48}{r['fastest_us']:>10.1f} us  slowest/fastest {r['spread']:.3f}"
              f"{'  (one schedule)' if r['same_schedule'] else ''}")
    print(f"{out['kernels']} kernels, {len(args.seeds)} searches of K = {args.trials}: slowest/fastest median "
          f"{out['median_spread']:.3f}, p90 {out['p90_spread']:.3f}; within 5% {out['within_5']:.0%}, "
          f"10% {out['within_10']:.0%}, 20% {out['within_20']:.0%}; same schedule {out['same_schedule']:.0%}")


if __name__ == "__main__":
    main()

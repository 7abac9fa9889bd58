"""How noisy are hwface's latencies? (issue 6)

Two parts, both on the host's embedded device:

``kernels``
    The same 50 sampled kernels (a seeded draw over every sampler kind, TVM's
    default schedules), timed like the sampler times them, in ``--runs``
    separate processes started ``--gap-s`` seconds apart. Prints each
    process's median within-run CV, then, per kernel, the CV of its median
    latency across the processes: the median (target <= 3%) and the worst.
``zoo``
    Every zoo network profiled with the shipped tuning logs (as
    ``hwface profile``): sum(kernels) / end-to-end per model (target within
    10%). ``--store`` writes the measurements to the latency database (this is
    how the shipped zoo rows were made).

    .venv/bin/python benchmarks/measurement_noise.py kernels [--runs 3] [--gap-s 120]
    .venv/bin/python benchmarks/measurement_noise.py zoo [--models ...] [--store] [--format json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KERNELS = 50
SEED = 2026


def time_kernels_once(out: Path, n: int, repeat: int, min_repeat_ms: float) -> None:
    """One process: build the seeded kernel set, time it once on the embedded device, write JSON."""
    from hwface.latency.sampler import KINDS, build_batch, prior_stream
    from hwface.measure.kernel_timing import time_kernels
    from hwface.rpc.devices import connect
    from hwface.rpc.embedded import device_for
    from hwface.targets import load_target

    spec = load_target("host")
    stream = prior_stream(KINDS, SEED)
    built = build_batch([next(stream) for _ in range(n)], spec, Path(tempfile.mkdtemp()), "noise")
    specs = [k for _, k, _ in built.kernels][:n]
    with device_for(spec, None) as ep:
        session = connect(ep.tracker, ep.key, timeout_s=120, session_timeout_s=0)
        stats = time_kernels(session, built.so_path, specs, repeat, min_repeat_ms)
    out.write_text(json.dumps({name: {"median_us": s.median_us, "cv": s.cv} for name, s in stats.items()}))


def kernels_part(args) -> None:
    runs = []
    for i in range(args.runs):
        if i:
            print(f"  waiting {args.gap_s:.0f} s before process {i + 1}", flush=True)
            time.sleep(args.gap_s)
        out = Path(tempfile.mkdtemp()) / "run.json"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "_child", str(out), "--n", str(args.n), "--repeat", str(args.repeat),
                        "--min-repeat-ms", str(args.min_repeat_ms)], check=True)
        run = json.loads(out.read_text())
        runs.append(run)
        print(f"process {i + 1}: {len(run)} kernels in {time.perf_counter() - t0:.0f} s, median within-run CV "
              f"{100 * np.median([v['cv'] for v in run.values()]):.2f}%", flush=True)
    names = sorted(set.intersection(*(set(r) for r in runs)))
    med = np.array([[r[k]["median_us"] for r in runs] for k in names])
    cv = med.std(axis=1) / med.mean(axis=1)
    worst = int(np.argmax(cv))
    print(f"{len(names)} kernels x {len(runs)} processes {args.gap_s:.0f} s apart: across-process CV of the median "
          f"latency: median {100 * np.median(cv):.2f}% (target <= 3%), p90 {100 * np.percentile(cv, 90):.2f}%, "
          f"worst {100 * cv[worst]:.2f}% ({names[worst]}, {med[worst].mean():.1f} us)")
    small = med.mean(axis=1) < 20
    if small.any() and (~small).any():
        print(f"  kernels under 20 us: median CV {100 * np.median(cv[small]):.2f}% ({small.sum()}); "
              f"others {100 * np.median(cv[~small]):.2f}% ({(~small).sum()})")


def zoo_part(args) -> None:
    from hwface.workflows.profile import profile_model
    from hwface.models import list_models
    from hwface.targets import load_target
    from hwface.tune.logs import open_database

    spec = load_target("host")
    database, db_hash = open_database(spec)
    rows = []
    for name in args.models or list_models():
        t0 = time.perf_counter()
        r = profile_model(model=name, target=spec, database=database, tuning_db_hash=db_hash, store=args.store)
        row = {"model": name, "kernels": r.distinct_kernels, "tuned_kernels": r.tuned_kernels,
               "calls": len(r.rows), "kernel_sum_ms": round(r.kernel_sum_us / 1e3, 3),
               "end_to_end_ms": round(r.end_to_end.median_us / 1e3, 3), "e2e_cv": round(r.end_to_end.cv, 4),
               "ratio": round(r.ratio, 3), "stored": r.stored, "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        if args.format == "text":
            print(f"{name:<26}{row['tuned_kernels'] or 0:>4}/{row['kernels']:<4}{row['kernel_sum_ms']:>10.3f}"
                  f"{row['end_to_end_ms']:>10.3f}{row['ratio']:>8.3f}  ({row['seconds']:.0f} s)", flush=True)
    ratios = np.array([r["ratio"] for r in rows])
    within = np.abs(ratios - 1) <= 0.10
    summary = {"models": len(rows), "within_10pct": int(within.sum()), "median_ratio": float(np.median(ratios)),
               "worst": rows[int(np.argmax(np.abs(ratios - 1)))]["model"], "db_hash": db_hash}
    if args.format == "json":
        print(json.dumps({"summary": summary, "models": rows}, indent=2))
    else:
        print(f"sum(kernels)/end-to-end within 10% for {summary['within_10pct']}/{summary['models']} models; "
              f"median ratio {summary['median_ratio']:.3f}; furthest: {summary['worst']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    k = sub.add_parser("kernels")
    k.add_argument("--runs", type=int, default=3)
    k.add_argument("--gap-s", type=float, default=120.0)
    for p in (k, c := sub.add_parser("_child")):
        p.add_argument("--n", type=int, default=KERNELS)
        p.add_argument("--repeat", type=int, default=5, help="samples per kernel (the sampler's default)")
        p.add_argument("--min-repeat-ms", type=float, default=10.0, help="(the sampler's default)")
    c.add_argument("out", type=Path)
    z = sub.add_parser("zoo")
    z.add_argument("--models", nargs="+")
    z.add_argument("--store", action="store_true", help="write the measurements to the latency database")
    z.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args()
    if args.part == "_child":
        time_kernels_once(args.out, args.n, args.repeat, args.min_repeat_ms)
    elif args.part == "kernels":
        kernels_part(args)
    else:
        if args.format == "text":
            print(f"{'model':<26}{'tuned':>9}{'sum ms':>10}{'e2e ms':>10}{'ratio':>8}")
        zoo_part(args)


if __name__ == "__main__":
    main()

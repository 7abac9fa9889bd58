"""Tuned TVM vs untuned TVM vs onnxruntime vs PyTorch on the host, with the shipped tuning logs.

One run, alternating between the four runtimes each round, equal thread counts, the same input.
Targets (issue 5): tuned/onnxruntime <= 1.0 (aim 0.8) and untuned/tuned >= 5.

    .venv/bin/python benchmarks/tuned_vs_ort.py [--models mobilefacenet seesaw_share] [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sidebyside import close_all, median, paired_ratio, runtimes, side_by_side, tvm_runtime  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mobilefacenet", "seesaw_share"])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    from hwface.compile import compile_artifact
    from hwface.targets import host_cores, load_target
    from hwface.tune.logs import logs_dir, open_database

    spec = load_target("host")
    database, db_hash = open_database(spec)
    if database is None:
        sys.exit(f"no tuning logs for this CPU at {logs_dir(spec)}: run benchmarks/tune_shipped_logs.sh first")
    threads = host_cores()
    work = Path(tempfile.mkdtemp(prefix="hwface-bench-"))
    print(f"host {spec.target.get('mcpu')}, {threads} threads for every runtime; logs {logs_dir(spec).name} ({db_hash})")
    print(f"{'model':<15}{'kernels':>9}{'tuned':>9}{'untuned':>9}{'ORT':>8}{'PyTorch':>9}"
          f"{'tuned/ORT [min-max]':>22}{'untuned/tuned':>15}{'tuned/PT':>10}")
    print(f"(ms: medians of {args.rounds} rounds; ratios: median of the per-round ratios)")
    for name in args.models:
        tuned = compile_artifact(work / f"{name}-tuned", "host", model=name, database=database, tuning_db_hash=db_hash)
        untuned = compile_artifact(work / f"{name}-untuned", "host", model=name)
        rt = runtimes(tuned, name, threads)
        rt["untuned"] = tvm_runtime(untuned, threads)
        try:
            s = side_by_side(rt, args.rounds)
        finally:
            close_all(rt)
        m = tuned.manifest
        ort, lo, hi = paired_ratio(s["tvm"], s["onnxruntime"])
        print(f"{name:<15}{m.tuned_kernels:>4}/{m.kernels:<4}{median(s['tvm']):>9.2f}{median(s['untuned']):>9.2f}"
              f"{median(s['onnxruntime']):>8.2f}{median(s['pytorch']):>9.2f}{f'{ort:.2f} [{lo:.2f}-{hi:.2f}]':>22}"
              f"{paired_ratio(s['untuned'], s['tvm'])[0]:>15.1f}{paired_ratio(s['tvm'], s['pytorch'])[0]:>10.2f}")


if __name__ == "__main__":
    main()

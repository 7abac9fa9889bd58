"""`hwface search`: the most MAdds under a predicted latency budget, then (``--verify K``) measured on the device."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwface.cli.common import add_format
from hwface.cli.predict_cmd import FINGERPRINT_HELP, REGIMES
from hwface.errors import HwfaceError


def register(sub: argparse._SubParsersAction) -> None:
    from hwface.nas.search import STRATEGIES
    from hwface.workflows.search import SPACES

    p = sub.add_parser("search", help="latency-aware architecture search on the predictor (MAdds as capacity proxy)")
    p.add_argument("--target", default="host", help="target (default host)")
    p.add_argument("--regime", choices=REGIMES, default="default", help="default or tuned (default: default)")
    p.add_argument("--fingerprint", metavar="DIGEST", help=FINGERPRINT_HELP)
    p.add_argument("--space", choices=SPACES, default="default", help="search space (docs/nas.md)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-ms", type=float, help="predicted latency budget, milliseconds")
    budget.add_argument("--budget-model", metavar="M", help="budget = the predicted latency of zoo network M")
    p.add_argument("--strategy", choices=STRATEGIES, default="evolution")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify", type=int, default=0, metavar="K", help="build and measure the best K on the device")
    p.add_argument("--out", metavar="DIR", help="write the Pareto front's and the best specs as JSON files")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run)


def _row(rank: int, c) -> dict:
    return {"rank": rank, "latency_ms": c.latency_us / 1e3, "low_ms": c.low_us / 1e3, "high_ms": c.high_us / 1e3,
            "madds_m": c.madds / 1e6, "blocks": c.spec.n_blocks,
            "stages": " ".join(f"{s.block}:{s.width}x{s.depth}k{s.kernel}" for s in c.spec.stages),
            "predicted_kernels": c.predicted_kernels}


def run(args: argparse.Namespace) -> int:
    from hwface.cli.output import emit
    from hwface.workflows.search import run_search

    r = run_search(args.target, args.regime, args.budget_ms, args.budget_model, args.space, args.strategy,
                   args.population, args.generations, args.seed, args.verify, args.fingerprint,
                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    res = r.result
    if args.out:
        _write_specs(Path(args.out), res)
    if args.format == "json":
        print(json.dumps({"target": r.target, "regime": r.regime, "fingerprint": r.fingerprint,
                          "budget_ms": r.budget_us / 1e3, "strategy": res.strategy, "evaluated": res.evaluated,
                          "within_budget": res.within_budget, "seconds": res.seconds,
                          "front": [{**_row(i, c), "spec": c.spec.to_dict()} for i, c in enumerate(res.front, 1)],
                          "best": [{**_row(i, c), "spec": c.spec.to_dict()} for i, c in enumerate(res.best, 1)],
                          "verified": [{**v.__dict__, "error": v.error} for v in r.verified],
                          "verify_failed": r.verify_failed}, indent=2))
        return 0
    print(f"{res.strategy}: {res.evaluated} specs answered in {res.seconds:.1f} s, {res.within_budget} within "
          f"{r.budget_us / 1e3:.2f} ms on {r.target}/{r.regime} (fingerprint {r.fingerprint}); "
          "MAdds are a capacity proxy, not accuracy")
    cols = ("rank", "latency_ms", "low_ms", "high_ms", "madds_m", "blocks", "predicted_kernels", "stages")
    emit([_row(i, c) for i, c in enumerate(res.front, 1)], "table", columns=cols,
         title="Pareto front: predicted latency vs MAdds")
    emit([_row(i, c) for i, c in enumerate(res.best, 1)], "table", columns=cols, title="best within budget")
    if r.verified:
        emit([{"name": v.name, "predicted_ms": v.predicted_us / 1e3, "low_ms": v.low_us / 1e3,
               "high_ms": v.high_us / 1e3, "measured_ms": (v.measured_us or float("nan")) / 1e3,
               "error_pct": (v.error if v.error is not None else float("nan")) * 100} for v in r.verified],
             "table", title="verified on the device: predicted vs measured end to end")
    for f in r.verify_failed:
        print(f"verify failed: {f}")
    return 0


def _write_specs(folder: Path, res) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for kind, cands in (("front", res.front), ("best", res.best)):
            for i, c in enumerate(cands, 1):
                (folder / f"{kind}-{i:02d}.json").write_text(c.spec.to_json())
    except OSError as exc:
        raise HwfaceError(f"cannot write specs to {folder}: {exc.strerror}") from None

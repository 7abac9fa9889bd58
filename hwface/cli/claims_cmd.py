"""`hwface claims`: the papers' efficiency claims checked on measured and predicted latency (a report)."""

from __future__ import annotations

import argparse
import json

from hwface.cli.common import add_format
from hwface.cli.predict_cmd import FINGERPRINT_HELP

FORMATS = ("table", "json", "md")  # md: the whole report on stdout


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("claims", help="check the papers' efficiency claims: claims.md, claims.json and charts")
    p.add_argument("--target", default="host", help="target (default host)")
    p.add_argument("--fingerprint", metavar="DIGEST", help=FINGERPRINT_HELP)
    p.add_argument("--budget", type=int, metavar="K", help="trials per kernel of the tuned zoo (default the tuned "
                   "regime's)")
    p.add_argument("--out", default="claims", metavar="DIR", help="folder for the report (default ./claims)")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    add_format(p, FORMATS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwface.claims.report import claims_json
    from hwface.cli.output import emit
    from hwface.workflows.claims import run_claims

    r = run_claims(args.target, args.out, args.fingerprint, args.budget, charts=not args.no_charts)
    if args.format == "json":
        print(json.dumps(claims_json(r.data, r.claims), indent=2, default=float))
        return 0
    if args.format == "md":
        print((r.out / "claims.md").read_text(), end="")
        return 0
    emit([{"claim": c.id, "TVM tuned": c.verdict.text(), "onnxruntime": c.verdict_onnxruntime.text(),
           "predicted": c.verdict_predicted.text()} for c in r.claims], "table",
         title=f"{r.data.device}, K = {r.data.budget}")
    if r.missing:
        print(f"not measured yet: {', '.join(r.missing)}")
    print(f"wrote {', '.join(str(p) for p in r.files)} in {r.seconds:.1f} s")
    return 0

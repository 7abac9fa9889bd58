"""`hwface serve`: the latency lookup service over HTTP (JSON; OpenAPI docs at /docs)."""

from __future__ import annotations

import argparse
import sys

from hwface.cli.predict_cmd import FINGERPRINT_HELP, REGIMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve latency lookups over HTTP (loopback unless told otherwise)")
    p.add_argument("--target", default="host", help="target (default host)")
    p.add_argument("--regime", choices=REGIMES, default="default", help="default or tuned (default: default)")
    p.add_argument("--fingerprint", metavar="DIGEST", help=FINGERPRINT_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8470, help="port (default 8470; 0 picks a free one)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from hwface.errors import HwfaceError
    from hwface.nas.lookup import LatencyModel
    from hwface.service import create_app, is_loopback, serve

    if not 0 <= args.port <= 65535:
        raise HwfaceError(f"--port {args.port}: not a port (0-65535)")
    model = LatencyModel.load(args.target, args.regime, args.fingerprint)
    if not is_loopback(args.host):
        print(f"hwface: warning: {args.host} is not loopback: other machines can query this service "
              "(it has no authentication)", file=sys.stderr)
    info = model.info()

    def ready(url: str) -> None:
        print(f"serving {info.target}/{info.regime} (fingerprint {info.fingerprint}, {info.training_rows} rows) "
              f"on {url} (docs at {url}/docs); Ctrl-C stops", flush=True)

    serve(create_app(model), args.host, args.port, on_ready=ready)
    return 0

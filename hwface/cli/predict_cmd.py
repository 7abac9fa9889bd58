"""`hwface predictor train|eval|heldout|networks` (the XGBoost latency model) and `hwface predict`."""

from __future__ import annotations

import argparse
import json
import sys

from hwface.cli.common import add_format
from hwface.errors import HwfaceError

REGIMES = ("default", "tuned")
FINGERPRINT_HELP = "another device's data: a digest (or prefix) from `hwface db stats` (default: today's)"
PREDICT_COLUMNS = ("key", "calls", "source", "latency_us", "low_us", "high_us")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictor", help="the latency predictor: train, evaluate on held-out networks, measure them")
    psub = p.add_subparsers(dest="predictor_command", metavar="SUBCOMMAND")
    psub.required = True

    def common(q, fingerprint: bool = True):
        q.add_argument("--target", default="host", help="target (default host)")
        q.add_argument("--regime", choices=REGIMES, default="default", help="default or tuned (default: default)")
        if fingerprint:
            q.add_argument("--fingerprint", metavar="DIGEST", help=FINGERPRINT_HELP)

    q = psub.add_parser("train", help="train on today's current rows (held-out networks never)")
    common(q)
    q.add_argument("--mode", choices=("global", "per_kind"), help="default: the better on a held-back fifth")
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_train)

    q = psub.add_parser("eval", help="kernel- and network-level accuracy on the held-out networks, with baselines")
    common(q)
    q.add_argument("--plot", metavar="FILE.png", help="predicted vs measured (log-log) with the ±10%% band")
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_eval)

    q = psub.add_parser("heldout", help="= `networks --split heldout`: random arch specs measured end to end, never trained on")
    common(q, fingerprint=False)
    q.add_argument("--n", type=int, default=100, help="held-out networks wanted in total (default 100)")
    q.set_defaults(func=run_heldout, split="heldout")

    q = psub.add_parser("networks", help="measure random arch specs end to end, held out or for training (resumable)")
    common(q, fingerprint=False)
    q.add_argument("--split", choices=("heldout", "train"), required=True,
                   help="heldout: never trained on; train: their kernels train, their end-to-end runs fit the "
                        "per-call overhead (the tuned regime's zoo is held out, so it needs these)")
    q.add_argument("--n", type=int, default=100, help="networks of the split wanted in total (default 100)")
    q.set_defaults(func=run_heldout)

    p = sub.add_parser("predict", help="a network's latency on a target: per kernel measured or predicted, and total")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name (see `hwface models`)")
    src.add_argument("--arch", metavar="SPEC.json", help="arch spec (docs/nas.md)")
    src.add_argument("--onnx", help="ONNX file")
    p.add_argument("--target", default="host", help="target (default host)")
    p.add_argument("--regime", choices=REGIMES, default="default", help="default or tuned (default: default)")
    p.add_argument("--fingerprint", metavar="DIGEST", help=FINGERPRINT_HELP)
    add_format(p)
    p.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    from hwface.workflows.predict import train

    r = train(args.target, args.regime, mode=args.mode, fingerprint=args.fingerprint)
    if args.format == "json":
        print(json.dumps(r.__dict__, indent=2))
        return 0
    scores = ", ".join(f"{m} {v:.3f}" for m, v in r.mode_rmspe.items())
    print(f"trained {r.target}/{r.regime} ({r.mode}) on {r.rows} current rows ({r.distinct_keys} layer keys, "
          f"{r.networks} training networks for the overhead) in {r.seconds:.1f} s; left out {r.skipped_stale} "
          f"row(s) of other fingerprints (stale or other devices) and {r.skipped_drifted} row(s) and "
          f"{r.skipped_drifted_networks} network(s) kept drifted by the drift guard; RMSPE on a held-back fifth: "
          f"{scores or 'mode given'}; saved to {r.path}")
    return 0


def _metric_rows(block: dict[str, dict[str, float]], level: str) -> list[dict]:
    return [{"level": level, "model": name, **{k: m[k] for k in ("n", "rmse", "rmspe", "within_5", "within_10",
                                                                  "within_15", "kendall_tau")}}
            for name, m in block.items()]


def run_eval(args: argparse.Namespace) -> int:
    from hwface.workflows.predict import evaluate, plot_eval

    r = evaluate(args.target, args.regime, fingerprint=args.fingerprint)
    if args.plot:
        try:
            plot_eval(r, args.plot)
        except OSError as exc:
            raise HwfaceError(f"cannot write the plot {args.plot}: {exc.strerror}") from None
    if args.format == "json":
        print(json.dumps(r.__dict__, indent=2))
        return 0
    from hwface.cli.output import emit

    rows = _metric_rows(r.kernel, "kernel") + _metric_rows(r.network, "network")
    emit(rows, "table", title=f"{r.target}/{r.regime}: {r.heldout_networks} held-out networks "
                              f"(fingerprint {r.fingerprint}); rmse in us")
    print(f"p10-p90 interval covers {r.interval_coverage:.0%} of the held-out networks")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


def run_heldout(args: argparse.Namespace) -> int:
    from hwface.workflows.heldout import measure_random_networks

    if args.n < 1:
        raise HwfaceError("--n must be at least 1")
    r = measure_random_networks(args.target, args.regime, n=args.n, split=args.split,
                                progress=lambda m: print(m, file=sys.stderr, flush=True))
    what = "held-out" if args.split == "heldout" else "training"
    print(f"{r.measured} {what} network(s) measured, {r.already_done} already done, {len(r.failed)} failed; "
          f"drift guard: {r.redone_batches} re-measured, {r.drifted_batches} kept drifted")
    for f in r.failed[:5]:
        print(f"  failed: {f}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from hwface.workflows.predict import predict

    name, est, pred = predict(args.target, args.regime, model=args.model, arch=args.arch, onnx=args.onnx,
                              fingerprint=args.fingerprint)
    if args.format == "json":
        print(json.dumps({"network": name, "target": args.target, "regime": args.regime,
                          "fingerprint": pred.fingerprint, **est.to_dict()}, indent=2))
        return 0
    from hwface.cli.output import emit

    rows = [k.__dict__ for k in est.kernels]
    emit(rows, args.format, columns=PREDICT_COLUMNS,
         title=f"{name} on {args.target} ({args.regime}): {est.measured_kernels} kernels measured, "
               f"{est.predicted_kernels} predicted; us per call")
    if args.format == "table":
        print(f"total {est.total_us / 1e3:.3f} ms (p10-p90 {est.low_us / 1e3:.3f}-{est.high_us / 1e3:.3f} ms) = "
              f"{est.kernel_calls} kernel calls {est.kernel_sum_us / 1e3:.3f} ms + overhead "
              f"{est.overhead_us / 1e3:.3f} ms")
    return 0

"""`hwface profile` (per-kernel + end-to-end latency on a device) and `hwface sample` (kernel sampler)."""

from __future__ import annotations

import argparse
import json
import sys

from hwface.cli.common import (add_format, add_input_shape, add_input_size, check_network_source, input_shape,
                               input_size, positive_int)
from hwface.errors import HwfaceError

PROFILE_COLUMNS = ("index", "kernel", "layers", "op", "input_shapes", "output_shape", "madds", "median_us", "p10_us",
                   "p90_us", "cv", "share", "tuned")


def register(sub: argparse._SubParsersAction) -> None:
    from hwface.tune.kernel import DEFAULT_TRIALS

    p = sub.add_parser("profile", help="time every fused kernel of a network on a device, and the whole artifact")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name (see `hwface models`)")
    src.add_argument("--onnx", help="ONNX file made elsewhere")
    p.add_argument("--target", default="host", help="target name (see `hwface targets`; default host)")
    p.add_argument("--tracker", help="RPC tracker HOST:PORT (default: the target's; host: an embedded one)")
    p.add_argument("--key", help="device key at the tracker (default: the target's rpc_key)")
    p.add_argument("--untuned", action="store_true", help="ignore the target's tuning logs")
    add_input_size(p)
    add_input_shape(p, "full input shape for --onnx")
    p.add_argument("--repeat", type=int, default=10, help="time_evaluator samples per kernel (default 10)")
    p.add_argument("--min-repeat-ms", type=float, default=20, help="minimum length of one sample in ms (default 20)")
    p.add_argument("--no-store", action="store_true", help="do not write the measurements to the latency database")
    add_format(p)
    p.set_defaults(func=run_profile)

    p = sub.add_parser("sample", help="sample layer configurations beyond the zoo, measure their kernels, store them")
    p.add_argument("--target", default="host", help="target name (default host)")
    p.add_argument("--kinds", nargs="+", help="kinds to sample (default: all)")
    p.add_argument("--n", type=int, required=True, help="configurations wanted in total (a rerun resumes)")
    p.add_argument("--regime", choices=("default", "tuned"), default="default",
                   help="default: TVM's untuned schedule; tuned: each kernel tuned with --trials candidates first")
    p.add_argument("--tracker", help="RPC tracker HOST:PORT")
    p.add_argument("--key", help="device key (default: the target's rpc_key); all servers under it are used")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior stream (keep it to resume; default 0)")
    p.add_argument("--batch", type=int, default=16, help="configurations compiled and timed together (default 16)")
    p.add_argument("--adaptive", type=float, default=0.3, help="share of --n chosen by adaptive densification (0.3)")
    p.add_argument("--repeat", type=int, default=5, help="samples per kernel (default 5)")
    p.add_argument("--min-repeat-ms", type=float, default=10, help="minimum sample length in ms (default 10)")
    p.add_argument("--trials", type=positive_int, default=DEFAULT_TRIALS,
                   help=f"tuning trials per kernel in the tuned regime (default {DEFAULT_TRIALS})")
    p.add_argument("--db", help="latency database file (default latency_db/<target>.sqlite)")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_sample)


def _database(args: argparse.Namespace, spec):
    """Tuning records for the target (None with --untuned or without logs)."""
    from hwface.tune.logs import open_database

    if args.untuned:
        return None, None
    return open_database(spec)


def run_profile(args: argparse.Namespace) -> int:
    from hwface.workflows.profile import profile_model
    from hwface.targets import load_target

    check_network_source(args)
    if args.repeat < 1 or args.min_repeat_ms <= 0:
        raise HwfaceError("--repeat must be >= 1 and --min-repeat-ms > 0")
    spec = load_target(args.target)
    database, db_hash = _database(args, spec)
    quiet = args.format != "table"
    if database is None and not args.untuned and not quiet:
        print(f"- no tuning logs for {spec.name}: profiling TVM's default schedules", file=sys.stderr)
    result = _with_progress(quiet, lambda say: profile_model(
        model=args.model, target=spec, tracker=args.tracker, key=args.key, database=database,
        tuning_db_hash=db_hash, onnx_path=args.onnx, input_size=input_size(args),
        input_shape=input_shape(args), repeat=args.repeat,
        min_repeat_ms=args.min_repeat_ms, store=not args.no_store, progress=say))
    rows = [{**r.__dict__, "layers": layer_span(r.layers), "onnx_ops": "+".join(r.onnx_ops)} for r in result.rows]
    if args.format == "json":
        print(json.dumps({"summary": result.summary(), "kernels": [
            {**r.__dict__} for r in result.rows]}, indent=2, default=str))
        return 0
    from hwface.cli.output import emit

    emit(rows, args.format, columns=PROFILE_COLUMNS,
         title=f"{result.model} on {result.device} ("
               f"{f'{result.tuned_kernels}/{result.distinct_kernels} kernels tuned' if result.tuned else 'untuned'}"
               "), latencies in us")
    if args.format == "table":
        e = result.end_to_end
        print(f"end-to-end: median {e.median_us / 1e3:.3f} ms (p10 {e.p10_us / 1e3:.3f}, p90 {e.p90_us / 1e3:.3f}, "
              f"cv {e.cv:.3f}); {len(result.rows)} kernel calls, {result.distinct_kernels} distinct kernels")
        print(result.gap_note)
        if result.stored is not None:
            print(f"stored {result.stored} new measurement(s) in {result.db_path} (fingerprint {result.fingerprint})")
        if result.guard:
            print(f"drift guard: {result.guard['redone']} re-measurement(s), {result.guard['drifted']} kept drifted")
    else:
        print(f"# {result.gap_note}", file=sys.stderr)
    return 0


def layer_span(layers: list[str]) -> str:
    """A kernel's modules on one table line: ``first..last`` (the full list is in the JSON output)."""
    return f"{layers[0]}..{layers[-1]}" if len(layers) > 1 else "".join(layers)


def _with_progress(quiet: bool, fn):
    """Run ``fn(say)`` with a rich status line (stderr) unless quiet."""
    if quiet:
        return fn(lambda msg: None)
    from rich.console import Console

    console = Console(file=sys.stderr)
    with console.status("profiling") as status:
        def say(msg: str) -> None:
            status.update(msg)
            if not msg.startswith("kernel "):
                console.log(msg)

        return fn(say)


def run_sample(args: argparse.Namespace) -> int:
    from hwface.latency.sampler import KINDS, sample

    kinds = tuple(args.kinds) if args.kinds else KINDS
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise HwfaceError(f"unknown kind(s) {', '.join(bad)} (known: {', '.join(KINDS)})")
    quiet = args.format == "json"

    def call(progress):
        return sample(target=args.target, kinds=kinds, n=args.n, regime=args.regime, tracker=args.tracker,
                      key=args.key, seed=args.seed, batch=args.batch, adaptive_fraction=args.adaptive,
                      repeat=args.repeat, min_repeat_ms=args.min_repeat_ms, trials_per_kernel=args.trials,
                      db_path=args.db, progress=progress)

    if quiet:
        report = call(None)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.description}"), transient=False) as bar:
            task = bar.add_task("", total=args.n)

            def progress(done, total, msg):
                bar.update(task, completed=done, total=total, description=msg)

            report = call(progress)
    d = report.__dict__
    if quiet:
        print(json.dumps(d, indent=2))
    else:
        print(f"{report.measured_configs} configurations measured ({report.prior_configs} from the prior, "
              f"{report.adaptive_configs} adaptive), {report.failed_configs} failed, {report.stored_kernels} kernels "
              f"stored in {report.db_path}; {report.already_done} were already done, {report.wanted} wanted; "
              f"{report.devices} device(s) under {report.device_key!r}; drift guard: {report.redone_batches} "
              f"batch(es) re-measured, {report.drifted_batches} kept drifted; fingerprint {report.fingerprint}")
        for e in report.errors[:5]:
            print(f"  failed: {e}")
    return 0

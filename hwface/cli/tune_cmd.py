"""`hwface tune`: tune a network's kernels on a device; records go to the target's shared logs."""

from __future__ import annotations

import argparse
import json
import sys

from hwface.cli.common import (add_format, add_input_shape, add_input_size, check_network_source, input_shape,
                               input_size, positive_int)
from hwface.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune a zoo network or an ONNX file with MetaSchedule over TVM RPC")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name (see `hwface models`)")
    src.add_argument("--onnx", help="ONNX file made elsewhere")
    p.add_argument("--target", default="host", help="target name (see `hwface targets`; default host)")
    p.add_argument("--trials", type=positive_int, default=64, help="trial budget of this run (default 64)")
    p.add_argument("--trials-per-kernel", type=positive_int,
                   help="records after which a kernel counts as tuned and is reused (default: trials / kernels)")
    p.add_argument("--top-kernels", type=positive_int, metavar="N",
                   help="tune only the N kernels with the largest share of the network's time (default: all)")
    p.add_argument("--tracker", help="RPC tracker HOST:PORT (host target: default is an embedded private device)")
    p.add_argument("--key", help="device key at the tracker (default: the target's rpc_key); --key arm64-qemu "
                                 "rehearses on the emulated AArch64 device (started by hwface without --tracker)")
    p.add_argument("--logs", metavar="DIR", help="tuning database folder (default: the target's logs; a rehearsal's "
                                                  "own folder under them)")
    add_input_size(p)
    add_input_shape(p, "full input shape for --onnx")
    p.add_argument("--no-baseline", action="store_true", help="skip measuring the untuned kernels (speedup column)")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    from hwface.tune.tuner import tune

    check_network_source(args)
    report = tune(
        model=args.model, onnx_path=args.onnx, target=args.target, trials=args.trials,
        trials_per_kernel=args.trials_per_kernel, tracker=args.tracker, key=args.key,
        input_size=input_size(args), input_shape=input_shape(args),
        measure_baseline=not args.no_baseline, top_kernels=args.top_kernels, logs_path=args.logs,
    )
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
        if report.stopped:
            print(f"hwface: tune stopped early: {report.stopped}", file=sys.stderr)
        return 0 if report.stopped is None else 1
    emit(report.rows(), "table", title=f"{report.network} on {report.target} ({report.device})")
    est = report.estimated_network_us()
    reused = sum(1 for k in report.kernels if k.reused)
    left_out = sum(1 for k in report.kernels if k.left_out)
    tuned = sum(1 for k in report.kernels if k.trials_this_run)
    waiting = len(report.kernels) - reused - left_out - tuned
    print(f"{len(report.kernels)} distinct kernels: {reused} reused from the logs, {tuned} tuned this run "
          f"({report.trials_run} trials in {report.elapsed_s:.0f} s, up to {report.trials_per_kernel} per kernel)"
          + (f", {left_out} left out (--top-kernels)" if left_out else "")
          + (f", {waiting} not reached within --trials" if waiting else ""))
    if est["kernels_counted"]:
        print(f"sum of kernel latencies: {est['tuned'] / 1e3:.2f} ms tuned vs {est['untuned'] / 1e3:.2f} ms untuned "
              f"({est['untuned'] / max(est['tuned'], 1e-9):.1f}x)")
    print(f"records: {report.logs_dir} (hash {report.db_hash})")
    if report.emulated:
        print(f"rehearsal on an emulated device: its timings mean nothing and are never stored as latency data; "
              f"`hwface compile --logs {report.logs_dir}` applies these records")
    if report.stopped:
        print(f"hwface: tune stopped early: {report.stopped}", file=sys.stderr)
        return 1
    return 0

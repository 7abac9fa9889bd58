"""`hwface export`, `hwface compile`, `hwface run`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from hwface.cli.common import (add_format, add_input_shape, add_input_size, check_network_source, input_shape,
                               input_size)
from hwface.errors import HwfaceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a zoo network to ONNX (checker + onnxruntime parity)")
    p.add_argument("--model", required=True, help="zoo name (see `hwface models`)")
    p.add_argument("-o", "--output", help="output .onnx file (default: <model>.onnx)")
    add_input_size(p)
    p.set_defaults(func=run_export)

    p = sub.add_parser("compile", help="compile a zoo network or an ONNX file into a deployable artifact directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name")
    src.add_argument("--onnx", help="ONNX file made elsewhere (dynamic dims are made static, shape subgraphs folded)")
    p.add_argument("--target", default="host", help="target name (see `hwface targets`; default host)")
    p.add_argument("-o", "--output", help="artifact directory (default: artifacts/<model>-<target>)")
    add_input_size(p)
    add_input_shape(p, "full input shape for --onnx (default: the file's, dynamic dims = 1)")
    p.add_argument("--untuned", action="store_true", help="ignore the target's tuning logs")
    p.add_argument("--logs", metavar="DIR", help="apply the tuning database in DIR instead of the target's logs")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_compile)

    p = sub.add_parser("run", help="run an artifact here, or on a device over RPC")
    p.add_argument("artifact", help="artifact directory made by `hwface compile`")
    p.add_argument("--input", help=".npy input (default: a reproducible random face-crop-like input)")
    p.add_argument("--tracker", help="RPC tracker HOST:PORT: run on a device instead of here")
    p.add_argument("--key", help="device key at the tracker (default: the artifact target's rpc_key); without "
                                 "--tracker, hwface starts the device itself where it can (host, arm64-qemu)")
    p.add_argument("--rpc", action="store_true",
                   help="run over RPC even without --tracker/--key: through the embedded device of the artifact's target")
    p.add_argument("--check", action="store_true", help="compare the output with PyTorch (zoo) or onnxruntime")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a device (default 120)")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_run)


def run_export(args: argparse.Namespace) -> int:
    from hwface.export import export_model

    out = args.output or f"{args.model}.onnx"
    res = export_model(args.model, out, input_size=input_size(args))
    print(f"wrote {res.path} (input {res.input.name} {list(res.input.shape)}, output {list(res.output_shape)})")
    print(f"onnx.checker: ok; onnxruntime vs PyTorch max abs diff: {res.max_abs_diff:.3e}")
    return 0


def run_compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwface.compile import compile_artifact

    check_network_source(args)
    name = args.model or Path(args.onnx).stem
    out = args.output or f"artifacts/{name}-{args.target}"
    start = time.perf_counter()
    quiet = args.format == "json"
    database, db_hash = None, None
    if args.logs and not Path(args.logs).is_dir():
        raise HwfaceError(f"--logs {args.logs}: no such folder (a tuning database made by `hwface tune`)")
    if not args.untuned:
        from hwface.targets import load_target
        from hwface.tune.logs import open_database, status

        spec = load_target(args.target)
        database, db_hash = open_database(spec, path=args.logs)
        if database is None and not quiet:
            st = status(spec, args.logs)
            other = f"; logs exist for other CPUs ({', '.join(st.other_cpus)}) and are not applied" if st.other_cpus else ""
            print(f"- no tuning logs for {spec.name} at {st.path}: building untuned{other}", file=sys.stderr)
    artifact = compile_artifact(
        out, target=args.target, model=args.model, onnx_path=args.onnx, database=database, tuning_db_hash=db_hash,
        input_size=input_size(args), input_shape=input_shape(args),
        progress=None if quiet else (lambda msg: print(f"- {msg}", file=sys.stderr)),
    )
    m = artifact.manifest
    elapsed = time.perf_counter() - start
    if quiet:
        print(json.dumps({"artifact": str(artifact.directory), "compile_s": round(elapsed, 2), **vars(m)}, indent=2))
    else:
        print(f"wrote {artifact.directory}/ ({m.so}, {m.onnx}, manifest.json) for {m.target_name} in {elapsed:.1f} s")
        outs = ", ".join(f"{o['name']} {o['shape']}" if len(m.outputs) > 1 else f"{o['shape']}" for o in m.outputs)
        print(f"input {m.input['name']} {m.input['shape']} {m.input['dtype']} -> output{'s' * (len(m.outputs) > 1)} "
              f"{outs}; {m.kernels} kernels, {m.tuned_kernels} tuned; sha256 {m.so_sha256[:16]}...")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from hwface.compile.artifact import load_artifact
    from hwface.measure.local_run import output_summary, run_local

    names = [o.get("name") for o in load_artifact(args.artifact).manifest.output_specs]
    if args.tracker:
        from hwface.measure.remote_run import run_remote

        result = run_remote(args.artifact, tracker=args.tracker, key=args.key, input_path=args.input,
                            timeout_s=args.timeout)
    elif args.key or args.rpc:
        result = _run_on_started_device(args)
    else:
        result = run_local(args.artifact, args.input)
    outputs = [output_summary(y, names[i] if i < len(names) else None) for i, y in enumerate(result.outputs)]
    report = {"device": result.device, "emulated": result.emulated, "output": outputs[0], "outputs": outputs}
    if result.latency is not None and not result.emulated:
        report["latency_ms"] = {"median": result.latency.median_us / 1e3, "p10": result.latency.p10_us / 1e3,
                                "p90": result.latency.p90_us / 1e3, "samples": result.latency.samples}
    if args.check:
        from hwface.workflows.run import check_outputs

        report["check"] = check_outputs(args.artifact, args.input, result.outputs)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        _print_run(report, result.emulated)
    return 0 if report.get("check", {}).get("match", True) else 1


def _print_run(report: dict, emulated: bool) -> None:
    """``hwface run``'s text report: one line per output, latency, check (per output when several)."""
    outs = report["outputs"]
    for o in outs:
        what = f"output {o['name']} {o['shape']}" if len(outs) > 1 else f"output {o['shape']}"
        print(f"ran on {report['device']}: {what}, L2 norm {o['l2_norm']:.4f}, first {o['first']}")
    if "latency_ms" in report:
        lat = report["latency_ms"]
        print(f"latency: median {lat['median']:.3f} ms (p10 {lat['p10']:.3f}, p90 {lat['p90']:.3f}, "
              f"{lat['samples']} samples)")
    elif emulated:
        from hwface.measure.remote_run import EMULATED_NOTE

        print(f"latency: {EMULATED_NOTE}")
    if "check" in report:
        c = report["check"]
        rows = c["outputs"] if len(c["outputs"]) > 1 else [{**c, "name": None}]
        for r in rows:
            what = f" output {r['name']}" if r["name"] else ""
            print(f"check{what} vs {c['reference']}: max abs diff {r['max_abs_diff']:.3e} -> "
                  f"{'match' if r['match'] else 'MISMATCH'}")


def _run_on_started_device(args: argparse.Namespace):
    """Run on a device hwface starts itself: the embedded host device or the emulated AArch64 one."""
    from hwface.compile.artifact import load_artifact
    from hwface.rpc.embedded import device_for
    from hwface.measure.remote_run import run_remote
    from hwface.targets import load_target, target_for_key

    spec = target_for_key(args.key) if args.key else load_target(load_artifact(args.artifact).manifest.target_name)
    if not (spec.is_host or spec.emulated):
        raise HwfaceError(f"hwface cannot start a {spec.rpc_key!r} device: pass --tracker HOST:PORT")
    print(f"- starting a private {spec.rpc_key!r} device on 127.0.0.1", file=sys.stderr)
    with device_for(spec, None) as ep:
        return run_remote(args.artifact, tracker=f"{ep.tracker_host}:{ep.tracker_port}", key=ep.key,
                          input_path=args.input, timeout_s=args.timeout)

"""`hwface export`, `hwface compile`, `hwface run`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from hwface.cli.common import add_input_size, input_size
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
    p.add_argument("--input-shape", nargs="+", type=int, metavar="D",
                   help="full input shape for --onnx, e.g. 1 3 224 224 (default: the file's, dynamic dims = 1)")
    p.add_argument("--untuned", action="store_true", help="ignore the target's tuning logs")
    p.add_argument("--format", choices=("text", "json"), default="text")
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
    p.add_argument("--format", choices=("text", "json"), default="text")
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

    if args.input_shape and not args.onnx:
        raise HwfaceError("--input-shape goes with --onnx; use --input-size H W for a zoo model")
    if args.input_size and args.onnx:
        raise HwfaceError("--input-size goes with --model; use --input-shape for --onnx")
    name = args.model or Path(args.onnx).stem
    out = args.output or f"artifacts/{name}-{args.target}"
    start = time.perf_counter()
    quiet = args.format == "json"
    database, db_hash = None, None
    if not args.untuned:
        from hwface.targets import load_target
        from hwface.tune.logs import open_database, status

        spec = load_target(args.target)
        database, db_hash = open_database(spec)
        if database is None and not quiet:
            st = status(spec)
            other = f"; logs exist for other CPUs ({', '.join(st.other_cpus)}) and are not applied" if st.other_cpus else ""
            print(f"- no tuning logs for {spec.name} at {st.path}: building untuned{other}", file=sys.stderr)
    artifact = compile_artifact(
        out, target=args.target, model=args.model, onnx_path=args.onnx, database=database, tuning_db_hash=db_hash,
        input_size=input_size(args), input_shape=tuple(args.input_shape) if args.input_shape else None,
        progress=None if quiet else (lambda msg: print(f"- {msg}", file=sys.stderr)),
    )
    m = artifact.manifest
    elapsed = time.perf_counter() - start
    if quiet:
        print(json.dumps({"artifact": str(artifact.directory), "compile_s": round(elapsed, 2), **vars(m)}, indent=2))
    else:
        print(f"wrote {artifact.directory}/ ({m.so}, {m.onnx}, manifest.json) for {m.target_name} in {elapsed:.1f} s")
        print(f"input {m.input['name']} {m.input['shape']} {m.input['dtype']} -> output {m.output['shape']}; "
              f"{m.kernels} kernels, {m.tuned_kernels} tuned; sha256 {m.so_sha256[:16]}...")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from hwface.measure.local_run import output_summary, run_local

    if args.tracker:
        from hwface.rpc.remote import run_remote

        result = run_remote(args.artifact, tracker=args.tracker, key=args.key, input_path=args.input,
                            timeout_s=args.timeout)
    elif args.key or args.rpc:
        result = _run_on_started_device(args)
    else:
        result = run_local(args.artifact, args.input)
    report = {"device": result.device, "emulated": result.emulated, "output": output_summary(result.output)}
    if result.latency is not None and not result.emulated:
        report["latency_ms"] = {"median": result.latency.median_us / 1e3, "p10": result.latency.p10_us / 1e3,
                                "p90": result.latency.p90_us / 1e3, "samples": result.latency.samples}
    if args.check:
        report["check"] = check_output(args.artifact, args.input, result.output)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        o = report["output"]
        print(f"ran on {result.device}: output {o['shape']}, L2 norm {o['l2_norm']:.4f}, first {o['first']}")
        if "latency_ms" in report:
            lat = report["latency_ms"]
            print(f"latency: median {lat['median']:.3f} ms (p10 {lat['p10']:.3f}, p90 {lat['p90']:.3f}, "
                  f"{lat['samples']} samples)")
        elif result.emulated:
            from hwface.rpc.remote import EMULATED_NOTE

            print(f"latency: {EMULATED_NOTE}")
        if "check" in report:
            c = report["check"]
            print(f"check vs {c['reference']}: max abs diff {c['max_abs_diff']:.3e} -> {'match' if c['match'] else 'MISMATCH'}")
    return 0 if report.get("check", {}).get("match", True) else 1


def _run_on_started_device(args: argparse.Namespace):
    """Run on a device hwface starts itself: the embedded host device or the emulated AArch64 one."""
    from hwface.compile.artifact import load_artifact
    from hwface.rpc.embedded import device_for
    from hwface.rpc.remote import run_remote
    from hwface.targets import load_target, target_for_key

    spec = target_for_key(args.key) if args.key else load_target(load_artifact(args.artifact).manifest.target_name)
    if not (spec.is_host or spec.emulated):
        raise HwfaceError(f"hwface cannot start a {spec.rpc_key!r} device: pass --tracker HOST:PORT")
    print(f"- starting a private {spec.rpc_key!r} device on 127.0.0.1", file=sys.stderr)
    with device_for(spec, None) as ep:
        return run_remote(args.artifact, tracker=f"{ep.tracker_host}:{ep.tracker_port}", key=ep.key,
                          input_path=args.input, timeout_s=args.timeout)


def check_output(artifact_dir: str, input_path: str | None, output) -> dict:
    """Compare an artifact's output with PyTorch (zoo models) or onnxruntime (ONNX files)."""
    import numpy as np

    from hwface.compile.artifact import load_artifact
    from hwface.export import outputs_match, parity_tolerance, run_onnxruntime
    from hwface.measure.local_run import load_input

    artifact = load_artifact(artifact_dir)
    x = load_input(artifact, input_path)
    onnx_ref = run_onnxruntime(artifact.onnx_path, x)
    if artifact.manifest.model:
        import torch

        from hwface.models import create_model

        size = tuple(artifact.manifest.input["shape"][2:])
        with torch.no_grad():
            ref = create_model(artifact.manifest.model, input_size=size)(torch.from_numpy(x)).numpy()
        if not outputs_match(onnx_ref, ref):
            raise HwfaceError(
                f"{artifact_dir} was built from another definition of {artifact.manifest.model} than this hwface's "
                "(its model.onnx disagrees with PyTorch): recompile it"
            )
        reference = "PyTorch"
    else:
        ref, reference = onnx_ref, "onnxruntime"
    diff = float(np.abs(np.asarray(output) - ref).max())
    return {"reference": reference, "max_abs_diff": diff, "tolerance": parity_tolerance(ref),
            "match": outputs_match(output, ref)}


"""`hwface models`, `hwface inspect`, `hwface targets`: the registries, for people and scripts."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from hwface.cli.common import add_format, add_input_size, input_size
from hwface.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the zoo: params, MAdds and size beside the paper's figures")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_models)

    p = sub.add_parser("inspect", help="per-layer table of a zoo network")
    p.add_argument("model", help="zoo name (see `hwface models`)")
    add_input_size(p)
    add_format(p)
    p.set_defaults(func=run_inspect)

    p = sub.add_parser("targets", help="list the target files under targets/")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run_targets)


def run_models(args: argparse.Namespace) -> int:
    from hwface.analysis import summarize
    from hwface.models import list_models

    rows = [summarize(name).to_dict() for name in list_models()]
    if args.format == "table":
        for r in rows:
            r["params_dev_%"] = _dev(r["params"], r["paper_params"])
            r["madds_dev_%"] = _dev(r["madds"], r["paper_madds"])
            r["input_size"] = "x".join(map(str, r["input_size"]))
        emit(rows, "table", ["name", "input_size", "embedding_dim", "params", "paper_params", "params_dev_%",
                             "madds", "paper_madds", "madds_dev_%", "size_mb"], title="hwface zoo")
    else:
        emit(rows, "json")
    return 0


def _dev(value: float, paper: float | None) -> float | None:
    return None if not paper else round(100.0 * (value - paper) / paper, 1)


def run_inspect(args: argparse.Namespace) -> int:
    from hwface.analysis import layer_table
    from hwface.models import create_model, get_model_info
    from hwface.models.registry import check_input_size

    info = get_model_info(args.model)
    size = check_input_size(info, input_size(args) or info.input_size)
    rows = [asdict(r) for r in layer_table(create_model(args.model, input_size=size), size)]
    if args.format != "json":
        for r in rows:
            for k in ("input_shape", "output_shape", "kernel", "stride"):
                r[k] = "x".join(map(str, r[k])) if r[k] else None
    total_p, total_m = sum(r["params"] for r in rows), sum(r["madds"] for r in rows)
    emit(rows, args.format, title=f"{args.model} {size[0]}x{size[1]}: {total_p:,} params, {total_m:,} MAdds")
    return 0


def run_targets(args: argparse.Namespace) -> int:
    from hwface.targets import list_targets, load_target

    rows = [load_target(n).to_dict() for n in list_targets()]
    emit(rows, args.format, ["name", "kind", "rpc_key", "cross_compiler", "description"])
    return 0

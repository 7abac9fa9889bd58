"""Argument helpers shared by the commands: choices come from the registries."""

from __future__ import annotations

import argparse

from hwface.cli.output import FORMATS


def add_format(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS, default: str = "table") -> None:
    p.add_argument("--format", choices=formats, default=default, help=f"output format (default {default})")


def add_input_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="input height and width in pixels (default: the paper's)")


def input_size(args: argparse.Namespace) -> tuple[int, int] | None:
    return tuple(args.input_size) if getattr(args, "input_size", None) else None

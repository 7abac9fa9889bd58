"""Argument helpers shared by the commands: choices come from the registries."""

from __future__ import annotations

import argparse

from hwface.cli.output import FORMATS
from hwface.errors import HwfaceError


def add_format(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS, default: str = "table") -> None:
    p.add_argument("--format", choices=formats, default=default, help=f"output format (default {default})")


def add_input_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="input height and width in pixels (default: the paper's)")


def input_size(args: argparse.Namespace) -> tuple[int, int] | None:
    return tuple(args.input_size) if getattr(args, "input_size", None) else None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count or a budget)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def shape_dims(text: str) -> tuple[int, ...]:
    """argparse type: one or more dimensions, ``224`` or the comma form ``1,3,224,224``; each >= 1."""
    parts = [p.strip() for p in text.split(",")]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers, as in 1 3 224 224 or 1,3,224,224, got {text!r}") from None
    if any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"every dimension must be at least 1, got {text!r}")
    return dims


def add_input_shape(p: argparse.ArgumentParser, help: str) -> None:
    """``--input-shape D [D ...]`` for ``--onnx``; also takes the comma form ``1,3,224,224``."""
    p.add_argument("--input-shape", nargs="+", type=shape_dims, metavar="D",
                   help=f"{help}, e.g. 1 3 224 224 or 1,3,224,224")


def input_shape(args: argparse.Namespace) -> tuple[int, ...] | None:
    """The ``--input-shape`` dimensions as one tuple (None when not given)."""
    tokens = getattr(args, "input_shape", None)
    return tuple(d for dims in tokens for d in dims) if tokens else None


def check_network_source(args: argparse.Namespace) -> None:
    """Refuse a shape option that does not go with the network source (``--model`` or ``--onnx``).

    Raises
    ------
    HwfaceError
        ``--input-shape`` without ``--onnx``, or ``--input-size`` with it.
    """
    if getattr(args, "input_shape", None) and not args.onnx:
        raise HwfaceError("--input-shape goes with --onnx; use --input-size H W for a zoo model")
    if getattr(args, "input_size", None) and args.onnx:
        raise HwfaceError("--input-size goes with --model; use --input-shape for --onnx")

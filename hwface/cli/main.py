"""The ``hwface`` command: parses arguments, calls the Python API, maps errors to exit codes.

Each command lives in a module of this package exposing ``register(subparsers)``;
heavy libraries (torch, tvm, xgboost) are imported inside the commands so that
``hwface --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hwface import __version__
from hwface.errors import HwfaceError

COMMAND_MODULES = (
    "hwface.cli.models_cmd",
    "hwface.cli.compile_cmd",
    "hwface.cli.tune_cmd",
    "hwface.cli.rpc_cmd",
    "hwface.cli.device_cmd",
    "hwface.cli.profile_cmd",
    "hwface.cli.db_cmd",
    "hwface.cli.predict_cmd",
    "hwface.cli.serve_cmd",
    "hwface.cli.search_cmd",
    "hwface.cli.claims_cmd",
)

EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse whose refusals are one line (``hwface CMD: error: ...``, exit 2), not the usage block too.

    Subcommand parsers inherit the class (``add_subparsers`` makes parsers of its parent's type).
    """

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hwface",
        description="Hardware-aware compiler and latency models for lightweight face-recognition CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"hwface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except HwfaceError as exc:
        print(f"hwface: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("hwface: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        from hwface.cli.output import stdout_reader_gone

        if not stdout_reader_gone():
            raise  # another pipe or socket broke: a bug where it was written
        # the reader went away (`hwface ... | head`): stop quietly, with the status of a tool killed by SIGPIPE
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 128 + 13


if __name__ == "__main__":
    sys.exit(main())

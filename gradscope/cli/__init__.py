"""The `gradscope` command: thin subcommands over the library.

Each subcommand lives in its own module exposing ``register(subparsers)`` (adds its parser and
sets ``func``). User errors (:class:`gradscope.GradscopeError`) print one line and exit 2; with
``--debug`` the traceback is shown too.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from gradscope._version import __version__
from gradscope.errors import GradscopeError

# Subcommand modules, in the order `gradscope --help` lists them.
SUBCOMMANDS = ("record", "landscape", "plot", "report", "trace")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradscope",
        description="Gradient-dynamics diagnostics for sharpness-aware training.",
    )
    parser.add_argument("--version", action="version", version=f"gradscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"gradscope.cli.{name}")
        except ModuleNotFoundError as exc:  # subcommand not built yet
            if exc.name != f"gradscope.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["record"]  # the main job: GraphSAM on the built-in demo data
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except GradscopeError as exc:
        if debug:
            raise
        print(f"gradscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradscope: interrupted", file=sys.stderr)
        return 130


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every subcommand takes."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, only results")

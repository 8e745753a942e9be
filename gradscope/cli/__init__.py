"""The `gradscope` command: thin subcommands over the library.

Each subcommand lives in its own module exposing ``register(subparsers)`` (adds its parser and
sets ``func``). User errors (:class:`gradscope.GradscopeError`) print one line and exit 2; so do
failed reads and writes of the file system (a full disk, a read-only place: see
:func:`gradscope.outputs.file_system_error`). With ``--debug`` the traceback is shown too.

Streams (docs/record.md): results (tables, the files written, the next commands) go to stdout;
progress, log lines, warnings and errors go to stderr. Warnings are one line each,
``gradscope: warning: …``, without Python's source lines (:func:`one_line_warnings`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

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
    """The `gradscope` command (``argv`` None: ``sys.argv``, and the process is the command's own)."""
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    with one_line_warnings(enabled=not debug):
        parser = build_parser()
        args = parser.parse_args(argv or ["record"])  # no argument: the main job, GraphSAM on the demo data
        return _run(args, debug, own_process)


def _run(args: argparse.Namespace, debug: bool, own_process: bool = False) -> int:
    """The subcommand; user errors and file-system failures as one line and exit status 2."""
    from gradscope.outputs import file_system_error, hdf5_write_failed

    try:
        return int(args.func(args) or 0)
    except GradscopeError as exc:
        if debug:
            raise
        print(f"gradscope: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        message = file_system_error(exc)
        if message is None or debug:  # anything else is a bug of gradscope: keep its traceback
            raise
        print(f"gradscope: error: {message}", file=sys.stderr)
        if own_process and hdf5_write_failed(exc):  # HDF5 would crash the interpreter at exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("gradscope: interrupted", file=sys.stderr)
        return 130


@contextmanager
def one_line_warnings(enabled: bool = True) -> Iterator[None]:
    """Show warnings (e.g. skipped rows of a data file) as one line each on stderr, without the
    Python source line that ``warnings`` adds; every subcommand runs inside it (``--debug``: Python's)."""
    if not enabled:
        yield
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"gradscope: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every subcommand takes."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, only results")

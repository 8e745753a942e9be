"""``gradscope trace summary|validate|repair|export FILE``: the trace files themselves.

Thin over :mod:`gradscope.trace`: :func:`~gradscope.trace.summary.summarize`,
:func:`~gradscope.trace.validate.validate`, :func:`~gradscope.trace.repair.repair` and
:func:`~gradscope.trace.export.export`. FILE is a ``trace.h5`` or a run directory holding one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gradscope.errors import GradscopeError

EXAMPLES = """\
examples:
  gradscope trace summary runs/bbbp-sam                 # rows, columns, config, writer state
  gradscope trace summary runs/bbbp-sam/trace.h5 --json
  gradscope trace validate runs/bbbp-sam/trace.h5       # exit 0 valid, 2 invalid (with the reasons)
  gradscope trace repair runs/bbbp-sam                  # after a killed run: plain HDF5 tools open it again
  gradscope trace export runs/bbbp-sam --to tables/ --format parquet   # steps, epochs, layers
"""


def register(sub: argparse._SubParsersAction) -> None:
    from gradscope.cli import add_common_flags

    p = sub.add_parser(
        "trace", help="summarize, validate, repair or export a trace file",
        description="Work on trace files (trace.h5): summarize them, check them against the schema "
                    "(docs/trace-format.md), repair one a killed run left flagged, export its tables.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, func) -> argparse.ArgumentParser:  # noqa: A002
        a = actions.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("file", metavar="FILE", type=Path, help="a trace.h5, or a run directory holding one")
        add_common_flags(a)
        a.set_defaults(func=func)
        return a

    s = action("summary", "rows, columns, run config, optimizer, and whether a writer left the file open", summary)
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    action("validate", "check the file against the trace schema; exit 0 if valid, 2 if not", validate)
    action("repair", "make a trace left flagged by a killed writer openable by every HDF5 tool, "
                     "keeping every complete row", repair)
    e = action("export", "write the steps, epochs and layers tables as CSV or Parquet files", export)
    e.add_argument("--to", required=True, type=Path, metavar="DIR", help="directory for <table>.<format> files")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)")
    e.add_argument("--overwrite", action="store_true", help="replace tables already in DIR")


def trace_file(path: Path) -> Path:
    """FILE itself, or DIR/trace.h5 for a run directory."""
    if path.is_dir():
        inner = path / "trace.h5"
        if not inner.exists():
            raise GradscopeError(f"{path} is a directory without a trace.h5")
        return inner
    return path


def summary(args: argparse.Namespace) -> int:
    from gradscope.trace.summary import summarize

    result = summarize(trace_file(args.file))
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else result.to_text())
    return 0


def validate(args: argparse.Namespace) -> int:
    from gradscope.trace.validate import validate as check

    path = trace_file(args.file)
    problems = check(path)
    if not problems:
        if not args.quiet:
            print(f"{path}: valid gradscope trace")
        return 0
    for problem in problems:  # messages about the whole file name it already
        print(problem if problem.startswith(str(path)) else f"{path}: {problem}")
    print(f"gradscope: error: {path} is not a valid gradscope trace ({len(problems)} problem"
          f"{'s' if len(problems) > 1 else ''})", file=sys.stderr)
    return 2


def repair(args: argparse.Namespace) -> int:
    from gradscope.trace.repair import repair as fix

    result = fix(trace_file(args.file))
    if args.quiet:
        return 0
    rows = ", ".join(f"{name} {n}" for name, n in result.rows.items())
    if not result.repaired:
        print(f"{result.path}: not flagged by a writer; nothing to repair ({rows} rows)")
        return 0
    dropped = ", ".join(f"{name} {n}" for name, n in result.dropped_incomplete.items())
    print(f"repaired {result.path}: kept every complete row ({rows})"
          + (f"; dropped half-written rows ({dropped})" if dropped else ""))
    return 0


def export(args: argparse.Namespace) -> int:
    from gradscope.outputs import check_out
    from gradscope.trace import open_trace
    from gradscope.trace.export import export as write

    check_out(args.to, directory=True, flag="--to")  # the --out rule of every command
    written = write(open_trace(trace_file(args.file)), args.to, args.format, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0

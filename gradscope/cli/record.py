"""`gradscope record`: train a molecular graph transformer and record its gradient dynamics.

The parser is built from two sources and copies nothing by hand: the fields of
:class:`~gradscope.train.config.RecordConfig` (each field with a help text is the flag of the same
name, ``max_atoms`` ↔ ``--max-atoms``; its metadata gives help, group and choices) and the
optimizer registry (each method's settings, with their defaults and meanings, and the ρ
schedule's). Every flag's default is None, so ``config_from_args`` passes only what was given and
the dataclasses fill in their own defaults; a method setting given for a method that does not
use it is an error.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

from gradscope.cli import add_common_flags
from gradscope.errors import GradscopeError
from gradscope.outputs import check_out

EXAMPLES = """\
examples:
  gradscope record                                   # GraphSAM on the built-in demo data, a few epochs
  gradscope record --dataset bbbp --data bbbp.csv --optimizer sam --epochs 30 --out runs/bbbp-sam
  gradscope record --data my.csv --targets logS --task regression --optimizer graphsam \\
                   --probe-exact-every 10 --layers --out runs/mine
  gradscope record --resume runs/mine --epochs 60    # continue (and extend) a run
  torchrun --nproc_per_node 2 -m gradscope record --dataset bbbp --data bbbp.csv --out runs/ddp

then:
  gradscope plot obs1 RUN --out obs1.png      gradscope report RUN --out report.html
  gradscope landscape RUN --dim 1 --out RUN/landscape
"""
METHOD_GROUP = "optimizer settings (each flag applies to the optimizers in [brackets]; given for another, an error)"


def register(sub: argparse._SubParsersAction) -> None:
    from gradscope.train.config import GROUPS

    p = sub.add_parser(
        "record", help="train with an instrumented optimizer and write trace.h5 + checkpoints",
        description="Train a molecular graph transformer with an instrumented (sharpness-aware) optimizer and "
                    "record ε_t, ω_t, their norms, changes and cosines to DIR/trace.h5.",
        epilog=_optimizer_list() + "\n" + EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {name: p.add_argument_group(name) for name in GROUPS[:2]}
    method_group = p.add_argument_group(METHOD_GROUP)
    groups.update({name: p.add_argument_group(name) for name in GROUPS[2:]})
    _add_config_flags(groups)
    _add_method_flags(method_group)
    r = groups["model, device, output"]
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/<dataset>-<optimizer>)")
    r.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    r.add_argument("--folds", type=int, metavar="K",
                   help="the paper's protocol: K runs with seeds --seed … --seed+K-1 (each its own random split and "
                        "initialisation) in DIR/fold-1 … fold-K, and DIR/folds.json with their mean ± std; "
                        "run it again to continue unfinished folds")
    add_common_flags(p)
    p.set_defaults(func=run, deprecated_flags=())


# -- the parser, from RecordConfig and the registry -------------------------------------------------
def _add_config_flags(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """One flag per RecordConfig field with a help text (see gradscope.train.config.flag)."""
    from gradscope.optim.registry import method_names
    from gradscope.train.config import RecordConfig, cli_fields

    hints = typing.get_type_hints(RecordConfig)
    for f in cli_fields():
        meta, kind = f.metadata, _scalar(hints[f.name])
        text = meta["help"]
        if f.name == "optimizer":
            text += ": " + ", ".join(method_names())
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": _escape(_with_default(text, f.default))}
        if kind is bool:
            kw.update(action="store_true", default=False)
        else:
            kw.update(type=meta["parse"] or kind, choices=meta["choices"], metavar=meta["metavar"])
        groups[meta["group"]].add_argument("--" + f.name.replace("_", "-"), **kw)


def _add_method_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per optimizer setting (shared by every method that has a setting of that flag)."""
    for flag, uses in _method_options().items():
        option = uses[0][1]
        kw: dict[str, Any] = {"dest": option.dest, "default": None, "help": _escape(_method_help(uses))}
        if option.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif option.choices:
            kw.update(type=option.type, choices=option.choices)
        else:
            kw.update(type=option.type, metavar=option.flag.lstrip("-").upper().replace("-", "_"))
        try:
            group.add_argument(flag, **kw)
            for old in option.deprecated_flags:
                group.add_argument(old, dest=option.dest, default=None, help=argparse.SUPPRESS,
                                   action=_Deprecated, replacement=flag, nargs=None if option.type is bool else 1,
                                   type=option.type)
        except argparse.ArgumentError as exc:  # a plugin's flag that is taken: say so, keep the CLI working
            warnings.warn(f"optimizer setting {flag} is not shown on the command line: {exc}", stacklevel=2)


def _method_options() -> dict[str, list]:
    """flag → [(method, option)] over every registered method, in registry order."""
    from gradscope.optim.registry import methods

    by_flag: dict[str, list] = {}
    for method in methods():
        for option in method.options():
            by_flag.setdefault(option.flag, []).append((method, option))
    return by_flag


def _method_help(uses: list) -> str:
    """The meaning of a flag for each group of methods that share it, with their defaults."""
    from gradscope.optim.registry import methods

    by_text: dict[str, list] = {}
    for method, option in uses:
        by_text.setdefault(option.help or "(no description)", []).append((method.name, option.default))
    everyone = [m.name for m in methods() if not m.plain]
    parts = []
    for text, pairs in by_text.items():
        names = [name for name, _ in pairs]
        who = "every sharpness-aware optimizer" if names == everyone else ", ".join(names)
        defaults: dict[str, list[str]] = {}
        for name, default in pairs:
            defaults.setdefault(_show(default), []).append(name)
        if len(defaults) == 1:
            said = f"default {next(iter(defaults))}"
        else:
            said = "default " + "; ".join(f"{d} for {', '.join(ns)}" for d, ns in defaults.items())
        parts.append(f"{text} [{who}; {said}]")
    return " | ".join(parts)


class _Deprecated(argparse.Action):
    """A former spelling of a flag: stores into the new flag's setting and is announced by ``run``."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, **kw)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        setattr(namespace, self.dest, values[0] if isinstance(values, list) else values)
        namespace.deprecated_flags = (*namespace.deprecated_flags, (option_string, self.replacement))


def _optimizer_list() -> str:
    from gradscope.optim.registry import methods

    lines = ["optimizers (--optimizer NAME; docs/optimizers.md):"]
    lines += [f"  {m.name:<18} {m.summary}" for m in methods()]
    return "\n".join(lines) + "\n"


def _scalar(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) is not tuple:
        return _scalar(args[0]) if len(args) == 1 else hint
    return hint


def _with_default(text: str, default: Any) -> str:
    return text if default is None or default is False or "default" in text else f"{text} (default {_show(default)})"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _escape(text: str) -> str:
    return text.replace("%", "%%")


# -- from the flags to a RecordConfig ---------------------------------------------------------------
def config_from_args(args: argparse.Namespace):
    """The validated RecordConfig the flags describe (flags not applying to the optimizer are errors)."""
    from gradscope.optim.registry import get_method
    from gradscope.train.config import RecordConfig, cli_fields

    values = {f.name: getattr(args, f.name) for f in cli_fields()
              if getattr(args, f.name) is not None and getattr(args, f.name) is not False}
    method = get_method(values.get("optimizer", RecordConfig.optimizer))
    given = {flag: getattr(args, uses[0][1].dest) for flag, uses in _method_options().items()}
    settings, schedule = method.split_flags(given)
    from gradscope.train.recipe import recipe_values

    values = recipe_values(values, progress=sys.stderr.isatty())
    return RecordConfig(**values, optimizer_settings=settings, rho_schedule=schedule or None)


# flags that --resume accepts besides --epochs: the rest comes from the run's own config.json
_RESUME_FLAGS = ("resume", "epochs", "out", "quiet", "debug", "func", "command", "deprecated_flags")


def run(args: argparse.Namespace) -> int:
    from gradscope.train.loop import record

    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise GradscopeError("--resume DIR continues the run in DIR; do not give a different --out")
        _check_resume_flags(args)
        from gradscope.train.config import RecordConfig

        # only --epochs may change on resume; the rest comes from the run's own config
        config = RecordConfig(epochs=args.epochs if args.epochs is not None else 1)
        out = Path(args.resume)
    else:
        config = config_from_args(args)
        out = Path(args.out) if args.out else Path("runs") / f"{_data_label(config)}-{config.optimizer}"
        check_out(out, directory=True)  # the --out rule of gradscope.outputs, before any work
    for old, new in args.deprecated_flags:  # (after the settings were accepted: an error stays one line)
        print(f"gradscope: warning: {old} is deprecated; use {new} (same setting)", file=sys.stderr)
    if args.folds is not None:
        return _run_folds(args, config, out)
    result = record(config, out, resume=bool(args.resume), overwrite=args.overwrite, quiet=args.quiet)
    if not result.is_main:  # another rank of a torchrun job: rank 0 reports
        return 130 if result.interrupted else 0
    if result.history:
        print(result.summary())
    if result.interrupted:
        print(f"gradscope: interrupted after step {result.steps}; the trace and checkpoints/last.pt are saved. "
              f"Continue with: gradscope record --resume {out}")
        return 130
    print(f"wrote {out}/config.json, {out}/trace.h5 ({result.steps} steps), {out}/checkpoints/"
          f"{{last,best}}.pt")
    if not args.quiet:  # commands to paste into a shell: paths quoted where they need it
        q = shlex.quote
        code = f"import gradscope; t = gradscope.open_trace({json.dumps(str(out / 'trace.h5'))}); print(t)"
        print("next:")
        print(f"  gradscope plot obs1 {q(str(out))} --out {q(str(out / 'obs1.png'))}     # Observation 1: how ε and ω change")
        print(f"  gradscope report {q(str(out))} --out {q(str(out / 'report.html'))}      # every figure and table in one page")
        print(f"  gradscope landscape {q(str(out))} --dim 1                    # loss landscape around the best checkpoint")
        print(f"  python -c {q(code)}")
    return 0


def _run_folds(args: argparse.Namespace, config, out: Path) -> int:
    """``--folds K``: every fold a run in ``out/fold-k``, then the per-fold table and mean ± std."""
    from gradscope.train.folds import SUMMARY_NAME, format_folds, record_folds

    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    summary = record_folds(config, out, args.folds, overwrite=args.overwrite, quiet=args.quiet, log=log)
    print(format_folds(summary))
    if not summary["complete"]:
        print(f"gradscope: interrupted; continue with the same command (finished folds are kept)")
        return 130
    print(f"wrote {out}/fold-1 … fold-{args.folds} and {out}/{SUMMARY_NAME}")
    return 0


def _check_resume_flags(args: argparse.Namespace) -> None:
    """--resume continues a run as it was configured: any other setting given is an error."""
    defaults = _defaults()
    changed = sorted(name for name, value in vars(args).items()
                     if name not in _RESUME_FLAGS and value != defaults.get(name))
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise GradscopeError(f"--resume continues the run with its own configuration; {flags} cannot change "
                             "(only --epochs can)")
    if args.epochs is not None and args.epochs < 1:
        raise GradscopeError(f"--epochs must be positive, got {args.epochs}")


def _defaults() -> dict:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return vars(parser.parse_args(["record"]))


def _data_label(config) -> str:
    if config.dataset:
        return config.dataset
    return Path(config.data).stem.lower() if config.data else "demo"

"""`gradscope record`: train a molecular graph transformer and record its gradient dynamics."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gradscope.cli import add_common_flags
from gradscope.errors import GradscopeError

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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="train with an instrumented optimizer and write trace.h5 + checkpoints",
        description="Train a molecular graph transformer with an instrumented (sharpness-aware) optimizer and "
                    "record ε_t, ω_t, their norms, changes and cosines to DIR/trace.h5.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="FILE", help="a CSV file (any file with a SMILES column); with --dataset NAME, "
                   "a local copy of that MoleculeNet dataset")
    d.add_argument("--dataset", metavar="NAME", help="a MoleculeNet dataset (bbbp, tox21, sider, clintox, esol, "
                   "lipophilicity, bace, freesolv, qm7, qm8) or demo; downloaded when not cached")
    d.add_argument("--smiles-column", metavar="COL")
    d.add_argument("--targets", metavar="A,B", help="label columns (default: inferred)")
    d.add_argument("--task", choices=("classification", "regression"))
    d.add_argument("--split", choices=("random", "scaffold"), default="random")
    d.add_argument("--max-atoms", type=int, default=100, help="skip larger molecules (default 100)")
    o = p.add_argument_group("optimization")
    o.add_argument("--optimizer", default="graphsam", help="adam, sam, asam, graphsam, graphsam-released, sam-one, "
                   "sam-k, looksam, ae-sam, rst (default graphsam)")
    o.add_argument("--base-optimizer", default="adam", choices=("adam", "adamw", "sgd"))
    o.add_argument("--lr", type=float, default=1e-3, help="learning rate of the base optimizer (default 1e-3)")
    o.add_argument("--weight-decay", type=float, default=0.0)
    o.add_argument("--lr-schedule", choices=("constant", "noam"), default="constant",
                   help="noam: linear warm-up, then 1/sqrt(step) decay (stepped every optimizer step)")
    o.add_argument("--warmup-epochs", type=float, default=2.0, help="Noam warm-up length (default 2)")
    o.add_argument("--rho", type=float, help="perturbation radius ρ (default 0.05; asam 0.5, as its ρ scales with |θ|; every optimizer but adam)")
    o.add_argument("--beta", type=float, help="moving-average β of ε (default 0.99; graphsam, graphsam-released)")
    o.add_argument("--gamma", type=float, help="ρ decay γ per --rho-step epochs (default 0.5; all but adam)")
    o.add_argument("--rho-step", type=int, help="λ: epochs between ρ decays (default 1; all but adam)")
    o.add_argument("--anchor-every", type=int,
                   help="K: re-anchor ε (exact gradient) every K epochs, GraphSAM-K (default 1; graphsam, sam-one)")
    o.add_argument("--k", type=int, help="steps between exact ε: sam-k (default 8), looksam (default 5)")
    o.add_argument("--epochs", type=int, default=None, help="default 4 (demo-sized); with --resume, extend to N")
    o.add_argument("--batch-size", type=int, default=32, help="the global batch, split over torchrun ranks (default 32)")
    o.add_argument("--early-stopping", type=int, metavar="N", help="stop after N epochs without a better val metric")
    r = p.add_argument_group("model, device, output")
    r.add_argument("--model", choices=("tiny", "small", "compt"), default="small")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    r.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: forward passes under autocast (CPU and GPU); weights and optimizer stay fp32")
    r.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: 1 for the tiny and small models, torch's default for compt)")
    r.add_argument("--out", metavar="DIR", help="run directory (default runs/<dataset>-<optimizer>)")
    r.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    t = p.add_argument_group("recording")
    t.add_argument("--layers", action="store_true", help="also record per-tensor ‖ε‖ and ‖ω‖")
    t.add_argument("--probe-exact-every", type=int, metavar="M",
                   help="every M steps compare ε with the exact gradient (one extra pass)")
    t.add_argument("--save-vectors-every", type=int, metavar="K", help="store full ε_t and ω_t every K steps")
    t.add_argument("--flush-every", type=int, default=64, help="steps between trace writes (default 64)")
    add_common_flags(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The validated RecordConfig the flags describe (flags not applying to the optimizer are errors)."""
    from gradscope.train.config import resolve_optimizer_settings

    optimizer = args.optimizer.lower()
    given = {"rho": args.rho, "beta": args.beta, "gamma": args.gamma, "rho_step": args.rho_step,
             "anchor_every": args.anchor_every, "k": args.k, "probe_exact_every": args.probe_exact_every}
    settings = resolve_optimizer_settings(optimizer, given) if optimizer in _known_optimizers() else given
    return _config(args, optimizer, settings)


def _known_optimizers() -> tuple[str, ...]:
    from gradscope.train.config import OPTIMIZERS

    return OPTIMIZERS


def _config(args, optimizer, settings):
    from gradscope.train.config import RecordConfig

    kw = {k: v for k, v in settings.items() if v is not None}
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip()) if args.targets else None
    return RecordConfig(
        data=args.data, dataset=args.dataset, smiles_column=args.smiles_column, targets=targets, task=args.task,
        max_atoms=args.max_atoms, optimizer=optimizer, base_optimizer=args.base_optimizer, lr=args.lr,
        weight_decay=args.weight_decay, lr_schedule=args.lr_schedule, warmup_epochs=args.warmup_epochs,
        epochs=args.epochs if args.epochs is not None else 4, batch_size=args.batch_size,
        early_stopping=args.early_stopping, model=args.model, split=args.split, seed=args.seed,
        device=args.device, precision=args.precision, threads=args.threads, layers=args.layers,
        save_vectors_every=args.save_vectors_every, flush_every=args.flush_every, **kw)


# flags that --resume accepts besides --epochs: the rest comes from the run's own config.json
_RESUME_FLAGS = ("resume", "epochs", "out", "quiet", "debug", "func", "command")


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
    with _one_line_warnings(enabled=not args.debug):
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


@contextmanager
def _one_line_warnings(enabled: bool = True) -> Iterator[None]:
    """Show warnings (e.g. skipped rows of a data file) as one line each, without source lines."""
    if not enabled:
        yield
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"gradscope: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


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

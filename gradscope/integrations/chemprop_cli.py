"""``python -m gradscope.integrations.chemprop train|landscape``: the chemprop equivalent of
``gradscope record`` and ``gradscope landscape``.

``train`` fits chemprop's default regression MPNN on a CSV with a gradscope optimizer and writes
``OUT/trace.h5`` (the trace schema of docs/trace-format.md), ``OUT/model.pt`` (chemprop's model
file, loadable by ``chemprop.models.load_model`` and ``chemprop predict``) and ``OUT/run.json``
(data, columns, split indices, settings). ``landscape`` rebuilds the split from ``run.json`` and
writes a gradscope landscape file of the model's training loss (``gradscope.landscape`` file
format, plotted by ``gradscope.landscape.save_plots``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from gradscope.errors import GradscopeError
from gradscope.optim import OPTIMIZERS

RUN_FILE = "run.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gradscope.integrations.chemprop",
                                description="Train a chemprop MPNN with a recorded gradscope optimizer; draw its landscape.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and record (writes OUT/trace.h5, OUT/model.pt, OUT/run.json)")
    t.add_argument("--data", required=True, help="CSV file with a SMILES column and target columns")
    t.add_argument("--smiles-column", default="smiles")
    t.add_argument("--targets", nargs="+", required=True, help="target column(s) (regression)")
    t.add_argument("--optimizer", default="graphsam", choices=["adam", *OPTIMIZERS])
    t.add_argument("--rho", type=float, default=None)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=50)
    t.add_argument("--hidden", type=int, default=300)
    t.add_argument("--depth", type=int, default=3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--probe-exact-every", type=int, default=None)
    t.add_argument("--tensorboard", default=None, metavar="DIR", help="also write TensorBoard scalars to DIR")
    t.add_argument("--out", required=True)
    t.add_argument("--overwrite", action="store_true")
    la = sub.add_parser("landscape", help="1-D/2-D loss landscape of a trained model")
    la.add_argument("run", help="a directory written by `train`")
    la.add_argument("--split", default="train", choices=["train", "val", "test"])
    la.add_argument("--dims", type=int, default=1, choices=[1, 2])
    la.add_argument("--points", type=int, default=21)
    la.add_argument("--range", type=float, default=1.0)
    la.add_argument("--seed", type=int, default=0)
    la.add_argument("--out", default=None, help="landscape file (default RUN/landscape/chemprop_<dims>d.h5)")
    la.add_argument("--overwrite", action="store_true")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _datasets(run: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The split datasets of a run (targets scaled with the train split's scaler) and the scaler."""
    from chemprop import data as cdata
    from chemprop import featurizers as cf

    from gradscope.integrations.chemprop import read_csv

    points, _ = read_csv(run["data"], run["smiles_column"], run["targets"])
    featurizer = cf.SimpleMoleculeMolGraphFeaturizer()
    sets = {name: cdata.MoleculeDataset([points[i] for i in idx], featurizer) for name, idx in run["split"].items()}
    scaler = sets["train"].normalize_targets()
    for name in ("val", "test"):
        sets[name].normalize_targets(scaler)
    return sets, scaler


def train(args: argparse.Namespace) -> int:
    import lightning.pytorch as L
    import torch
    from chemprop import data as cdata

    from gradscope.integrations.chemprop import MPNN_TRACE, default_mpnn, read_csv, save_mpnn
    from gradscope.integrations.lightning import GradscopeCallback
    from gradscope.integrations.sinks import TensorBoardSink

    out = Path(args.out)
    if (out / "trace.h5").exists() and not args.overwrite:
        raise GradscopeError(f"{out} already holds a run; pass --overwrite to replace it")
    points, skipped = read_csv(args.data, args.smiles_column, args.targets)
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    train_idx, val_idx, test_idx = cdata.make_split_indices(points, "random", (0.8, 0.1, 0.1), seed=args.seed)
    run = {"data": str(Path(args.data).resolve()), "smiles_column": args.smiles_column, "targets": args.targets,
           "split": {name: [int(i) for i in idx[0]] for name, idx in zip(("train", "val", "test"), (train_idx, val_idx, test_idx))},
           "settings": {k: v for k, v in vars(args).items() if k not in ("data", "out", "overwrite", "debug")}}
    sets, scaler = _datasets(run)
    loaders = {name: cdata.build_dataloader(ds, batch_size=args.batch_size, seed=args.seed, shuffle=name == "train")
               for name, ds in sets.items()}
    L.seed_everything(args.seed, verbose=False)
    model = default_mpnn(len(args.targets), hidden=args.hidden, depth=args.depth, scaler=scaler,
                         optimizer=args.optimizer, rho=args.rho)
    out.mkdir(parents=True, exist_ok=True)
    sinks = [TensorBoardSink(args.tensorboard)] if args.tensorboard else []
    callback = GradscopeCallback(out / "trace.h5", probe_exact_every=args.probe_exact_every, sinks=sinks,
                                 config=run["settings"], overwrite=args.overwrite, **MPNN_TRACE)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu" if not torch.cuda.is_available() else "auto",
                        devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    trainer.fit(model, loaders["train"], loaders["val"])
    save_mpnn(out / "model.pt", model)
    (out / RUN_FILE).write_text(json.dumps(run, indent=1) + "\n")
    print(f"wrote {out / 'trace.h5'}, {out / 'model.pt'}, {out / RUN_FILE}")
    return 0


def landscape(args: argparse.Namespace) -> int:
    from chemprop import data as cdata

    from gradscope.integrations.chemprop import compute_mpnn_landscape, load_mpnn
    from gradscope.landscape import LandscapeSettings

    folder = Path(args.run)
    if not (folder / RUN_FILE).is_file():
        raise GradscopeError(f"{folder} is not a run written by `python -m gradscope.integrations.chemprop train`")
    run = json.loads((folder / RUN_FILE).read_text())
    sets, _ = _datasets(run)
    loader = cdata.build_dataloader(sets[args.split], batch_size=run["settings"]["batch_size"], shuffle=False)
    model = load_mpnn(folder / "model.pt")
    out = Path(args.out) if args.out else folder / "landscape" / f"chemprop_{args.dims}d.h5"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = LandscapeSettings(dims=args.dims, points_x=args.points, range_x=args.range, seed=args.seed,
                                 mode="loop")  # chemprop's scatter ops do not batch under vmap
    ls = compute_mpnn_landscape(model, loader, settings, out_path=out, overwrite=args.overwrite, progress=False,
                                label=run["settings"]["optimizer"], checkpoint=str(folder / "model.pt"))
    centre = ls.loss[tuple(s // 2 for s in ls.loss.shape)]
    print(f"wrote {out}; centre loss {centre:.6g} ({args.split} split, {len(sets[args.split])} molecules)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"train": train, "landscape": landscape}[args.command](args)
    except GradscopeError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2

"""Data at scale: featurize and load 10k, 100k and 1M molecules; memory, speed, one training epoch.

The molecules are generated from molecules that ship with the project's data and with RDKit
(no downloads): the SMILES of the MoleculeNet CSVs (``$GRADSCOPE_MOLECULENET`` or
``../shared/data/moleculenet``, when present) and RDKit's bundled files (``RDConfig.RDDataDir``:
``NCI/first_5K.smi``, ``Pains/test_data/wehi_mols.csv``), parsed, deduplicated by canonical
SMILES and kept when they have at most 100 heavy atoms. Taking the base molecules round-robin,
each round labels one more symmetry class of atoms of each molecule with a heavier isotope and
writes the result as a randomized SMILES (``Chem.MolToRandomSmilesVect``, seeded). Isotopes are
not features, so every molecule featurizes like its base molecule, but each row is a distinct
molecule: a million copies of 30k molecules would make the loader's duplicate report (which
re-parses repeated molecules) the main cost, which real data does not have. The label is the
base molecule's Crippen logP.

For each size and worker count, a fresh process loads the CSV with an empty cache and reports
wall time (CSV reading, parsing, featurization, cache writing), molecules/s and memory; then
another fresh process reloads it from the disk cache (memory-mapped). Memory, per molecule:

* **kept**: the bytes of the arrays the dataset holds (``dataset.nbytes``: the store's code,
  bond, offset, SMILES and key arrays, labels, row numbers);
* **base**: the process's RSS just before loading, after imports and one load and batch of 4
  molecules (what a process allocates once: RDKit's tables, lazily imported modules, torch's
  first operations);
* **after**: RSS when ``load_dataset`` has returned, minus base; **peak**: the highest RSS
  until then (``VmHWM``), minus base. (A first batch is built afterwards, to check the data.) Both are also reported as ratios to kept
  (``after_over_kept``, ``peak_over_kept``; the target is ``peak_over_kept`` ≤ 2).

A reload maps the arrays from disk, so its after/peak count only the pages read (the CSV is
still read for its labels and checksum). Worker processes (``--workers``) are not included. One training measurement on the 100k set: ``small`` model,
GraphSAM, batch 32, 3 warm-up steps and ``--train-steps`` timed steps (collation included; one
epoch at most) with random batches and with ``--bucket-batches 50``, extrapolated to one epoch of
the 80 % training split from the median step; when the steps make the whole epoch (2,500 steps for
100k molecules), its measured time is reported as well.

Usage: ``python -m benchmarks.scale [--quick] [--sizes 10000,100000,1000000] [--workers 1,2]
[--train-steps 60] [--workdir DIR]``. Results: benchmarks/results/scale.json (merged by size and
workers with earlier runs, so that the sizes can be measured one at a time).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from benchmarks.common import REPO, log, machine_info, median, moleculenet_dir, write_result

MAX_ATOMS = 100
SEED = 0
WARM_UP = ["CCO", "c1ccccc1O", "CC(=O)[O-].[Na+]", "C[C@H](N)C(=O)O"]


# -- the molecules ------------------------------------------------------------------------------------
def source_smiles() -> Iterator[str]:
    """First field of each line of the shipped molecule files (headers and comments fail to parse)."""
    from rdkit import RDConfig

    files = sorted(moleculenet_dir().glob("*.csv")) if moleculenet_dir().is_dir() else []
    files += [Path(RDConfig.RDDataDir, "NCI", "first_5K.smi"),
              Path(RDConfig.RDDataDir, "Pains", "test_data", "wehi_mols.csv")]
    for path in files:
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            reader = csv.reader(fh) if path.suffix == ".csv" else ([line.split()[0]] for line in fh if line.split())
            header = next(reader, None)
            col = _smiles_column(header)
            if col is None:  # no header: the first line is data
                col = 0
                yield header[0] if header else ""
            for row in reader:
                if len(row) > col:
                    yield row[col]


def _smiles_column(header: list[str] | None) -> int | None:
    for i, name in enumerate(header or []):
        if "smiles" in name.lower() or name.lower() in ("mol",):
            return i
    return None


def base_molecules(limit: int | None = None) -> list[tuple[Any, list[list[int]], float]]:
    """Distinct parseable molecules (≤ 100 heavy atoms): (mol, atom symmetry classes, Crippen logP)."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    from gradscope.chem._rdkit import parse_smiles, quiet_rdkit

    seen, out = set(), []
    for s in source_smiles():
        mol = parse_smiles(s.strip().strip('"'))
        if mol is None or not 0 < mol.GetNumAtoms() <= MAX_ATOMS:
            continue
        with quiet_rdkit():
            key = Chem.MolToSmiles(mol)
        if key in seen:
            continue
        seen.add(key)
        ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
        classes: dict[int, list[int]] = {}
        for atom, rank in enumerate(ranks):
            classes.setdefault(rank, []).append(atom)
        out.append((mol, [classes[r] for r in sorted(classes)], Crippen.MolLogP(mol)))
        if len(out) == limit:
            break
    return out


def generated_rows(n: int, bases: list) -> Iterator[tuple[str, float]]:
    """``n`` rows (randomized SMILES of isotope-labelled base molecules, logP), round-robin."""
    from rdkit import Chem

    done, rnd = 0, 0
    while True:
        for k, (mol, classes, logp) in enumerate(bases):
            if done == n:
                return
            variant = Chem.Mol(mol)
            if rnd > 0:  # round 0: the base molecule itself
                cls = classes[(rnd - 1) % len(classes)]
                extra = 1 + (rnd - 1) // len(classes)
                for atom in cls[:1]:
                    a = variant.GetAtomWithIdx(atom)
                    a.SetIsotope(int(round(a.GetMass())) + extra)
            seed = 1 + SEED + 7919 * rnd + k  # RDKit reads 0 as "unseeded"
            smiles = Chem.MolToRandomSmilesVect(variant, 1, randomSeed=seed)[0]
            yield smiles, logp
            done += 1
        rnd += 1


def write_csv(path: Path, n: int, bases: list) -> Path:
    if path.is_file():
        return path
    tmp = path.with_suffix(".part")
    with tmp.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["smiles", "logp"])
        for smiles, logp in generated_rows(n, bases):
            out.writerow([smiles, f"{logp:.4f}"])
    tmp.replace(path)
    return path


# -- one measurement per fresh process ----------------------------------------------------------------
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _kept_bytes(ds: Any) -> int:
    """Bytes of the arrays a dataset keeps (datasets of gradscope ≤ 0.1 kept dense MolGraphs)."""
    if hasattr(ds, "nbytes"):
        return int(ds.nbytes)
    total = ds.labels.nbytes + ds.rows.nbytes
    for g in ds.graphs:
        total += sum(t.numel() * t.element_size() for t in (g.atoms, g.edge_index, g.edge_attr, g.distances))
    return int(total)


def warm_up() -> None:
    """Load and batch the :data:`WARM_UP` molecules once (no cache): what is allocated once per
    process (RDKit's ~40 MiB of tables, lazily imported modules, torch's first operations) is
    then in the base RSS, not counted per molecule."""
    import gc
    import warnings

    from gradscope.chem import load_dataset

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp, "warm-up.csv")
        path.write_text("smiles,logp\n" + "".join(f"{s},{k / 3:.3f}\n" for k, s in enumerate(WARM_UP)))
        ds = load_dataset(path, use_cache=False, progress=False)
        ds.batch(list(range(len(ds))))
    del ds
    gc.collect()


def child_load(csv_path: str, cache: str, workers: int) -> dict[str, Any]:
    """Load ``csv_path`` once in this (fresh) process and report time and memory."""
    import warnings

    import torch  # noqa: F401  (imports and RDKit's lazily built tables count in the baseline)
    from gradscope.chem import load_dataset

    warm_up()
    base_kib = _status_kib("VmRSS")
    kwargs: dict[str, Any] = {"cache_dir": cache, "progress": True}
    if workers != 1:
        kwargs["workers"] = workers
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(csv_path, **kwargs)
    seconds = time.perf_counter() - t0
    after_kib, peak_kib = _status_kib("VmRSS"), _status_kib("VmHWM")  # loading only, not the batch below
    first = ds.batch(list(range(min(32, len(ds)))))  # the data is usable
    assert len(first) == min(32, len(ds))
    kept = _kept_bytes(ds)
    out = {"molecules": len(ds), "seconds": seconds, "mol_per_s": len(ds) / seconds, "kept_bytes": kept,
           "kept_bytes_per_mol": kept / len(ds), "rss_base_mib": base_kib / 1024,
           "rss_after_mib": after_kib / 1024, "rss_peak_mib": peak_kib / 1024}
    out["peak_over_base_per_mol"] = (out["rss_peak_mib"] - out["rss_base_mib"]) * 2**20 / len(ds)
    out["after_over_base_per_mol"] = (out["rss_after_mib"] - out["rss_base_mib"]) * 2**20 / len(ds)
    out["peak_over_kept"] = (out["rss_peak_mib"] - out["rss_base_mib"]) * 2**20 / kept
    out["after_over_kept"] = (out["rss_after_mib"] - out["rss_base_mib"]) * 2**20 / kept
    if hasattr(ds, "store"):
        out["arrays"] = {name: int(a.nbytes) for name, a in ds.store.arrays().items()}
    return out


def child_train(csv_path: str, cache: str, steps: int, bucket: int | None) -> dict[str, Any]:
    """Time ``steps`` GraphSAM steps of the ``small`` model (collation included) on ``csv_path``."""
    import warnings

    import numpy as np
    import torch

    from gradscope.chem import load_dataset, make_split
    from gradscope.chem.batch import bucket_order
    from gradscope.train.build import build_model_for, build_optimizer
    from gradscope.train.config import RecordConfig
    from gradscope.train.objective import masked_loss
    from gradscope.train.trainer import epoch_order

    torch.set_num_threads(1)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(csv_path, cache_dir=cache, progress=False)
    split = make_split(ds, "random", seed=0)
    train = split["train"]
    std = ds.fit_standardizer(train)
    config = RecordConfig(data=csv_path, model="small", optimizer="graphsam", batch_size=32, bucket_batches=bucket)
    model = build_model_for(config, ds).train()
    steps_per_epoch = math.ceil(len(train) / 32)
    optimizer, _ = build_optimizer(config, model, steps_per_epoch)
    perm = epoch_order(0, 0, len(train)).numpy()
    if bucket:
        perm = bucket_order(perm, ds.n_atoms[train], 32, bucket, seed=0, epoch=0)
    order = train[perm]
    optimizer.anchor()
    collate_s, step_s, cpu, real, slots = [], [], [], 0, 0
    run_cpu, run_wall = time.process_time(), time.perf_counter()
    steps_run = min(steps + 3, steps_per_epoch)  # 3 warm-up steps, then timed ones; one epoch at most
    for k in range(steps_run):
        c0, t0 = time.process_time(), time.perf_counter()
        batch = ds.batch(order[k * 32:(k + 1) * 32], standardizer=std)
        t1 = time.perf_counter()

        def closure(batch=batch) -> torch.Tensor:
            loss = masked_loss(model(batch), batch, ds.task)
            loss.backward()
            return loss.detach()

        optimizer.step(closure)
        if k >= 3:  # the first steps warm up
            collate_s.append(t1 - t0)
            step_s.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            real += int(batch.mask.sum())
            slots += batch.mask.numel()
    out = {"train_molecules": len(train), "steps_per_epoch": steps_per_epoch, "steps_timed": len(cpu),
           "bucket_batches": bucket, "step_wall_s": median(step_s), "step_cpu_s": median(cpu),
           "collate_wall_s": median(collate_s), "real_atom_fraction": real / slots,
           "epoch_cpu_s_extrapolated": median(cpu) * steps_per_epoch,
           "epoch_wall_s_extrapolated": median(step_s) * steps_per_epoch}
    if steps_run == steps_per_epoch:  # the whole epoch ran: its measured time (warm-up steps included)
        out["epoch_cpu_s"] = time.process_time() - run_cpu
        out["epoch_wall_s"] = time.perf_counter() - run_wall
    return out


def _spawn(args: list[str], env_path: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env_path, str(REPO), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--child", *args], capture_output=True,
                          text=True, env=env, cwd=REPO)
    progress = [line for line in done.stderr.splitlines() if line.startswith("featurizing")]
    for line in progress[-1:]:
        log(f"    {line}")
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["progress_lines"] = len(progress)
    return result


# -- the run -------------------------------------------------------------------------------------------
def run(sizes: list[int], workers: list[int], train_steps: int, workdir: Path,
        gradscope_path: str | None = None, result_name: str = "scale", command: str | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    bases = base_molecules()
    log(f"  {len(bases)} base molecules ({time.perf_counter() - t0:.0f} s)")
    loads = []
    for n in sizes:
        t0 = time.perf_counter()
        path = write_csv(workdir / f"scale-{n}.csv", n, bases)
        log(f"  {n:,} molecules: {path.stat().st_size / 2**20:.0f} MiB CSV ({time.perf_counter() - t0:.0f} s)")
        for w in workers:
            cache = workdir / f"cache-{n}-{w}"
            shutil.rmtree(cache, ignore_errors=True)  # cold: featurize
            cold = _spawn(["load", str(path), str(cache), str(w)], gradscope_path)
            warm = _spawn(["load", str(path), str(cache), "1"], gradscope_path)
            loads.append({"size": n, "workers": w, "cold": cold, "reload": warm})
            log(f"    workers {w}: {cold['mol_per_s']:,.0f} mol/s, kept {cold['kept_bytes_per_mol']:.0f} B/mol, "
                f"peak {cold['peak_over_base_per_mol']:.0f} B/mol over {cold['rss_base_mib']:.0f} MiB base; "
                f"reload {warm['seconds']:.2f} s")
    training = []
    train_size = 100_000 if 100_000 in sizes else max(sizes)
    if train_steps:
        path, cache = workdir / f"scale-{train_size}.csv", workdir / f"cache-{train_size}-{workers[0]}"
        for bucket in (None, 50):
            r = _spawn(["train", str(path), str(cache), str(train_steps), str(bucket or 0)], gradscope_path)
            r["size"] = train_size
            training.append(r)
            log(f"  training {train_size:,} (bucket {bucket}): {r['step_cpu_s'] * 1e3:.0f} ms CPU/step, "
                f"collate {r['collate_wall_s'] * 1e3:.1f} ms, epoch ≈ {r['epoch_cpu_s_extrapolated'] / 60:.0f} min")
    machine = machine_info()
    machine["command"] = command or machine["command"]
    result = {"machine": machine, "base_molecules": len(bases), "loads": loads, "training": training,
              "note": "fresh process per measurement; RSS from /proc/self/status (VmRSS, VmHWM); kept: bytes of "
                      "the arrays the dataset holds (dataset.nbytes); base: RSS after imports and loading and batching 4 "
                      "molecules (one-time allocations); after/peak: RSS after loading / VmHWM, minus base, per molecule "
                      "and as ratios to kept; reload: arrays memory-mapped from the disk cache; worker processes "
                      "not included; training: median step, extrapolated"}
    return merge_result(result_name, result)


def merge_result(name: str, new: dict[str, Any]) -> dict[str, Any]:
    """Write ``new`` into benchmarks/results/<name>.json, keeping the entries of earlier runs for
    other (size, workers) and (size, bucket) pairs, so that sizes can be measured in separate runs
    (each entry records its date and command)."""
    from benchmarks.common import RESULTS_DIR

    path = RESULTS_DIR / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {"loads": [], "training": []}
    date, command = new["machine"]["date"], new["machine"]["command"]
    for entry in new["loads"] + new["training"]:
        entry["date"], entry["command"] = date, command
    loads = {(x["size"], x["workers"]): x for x in old.get("loads", []) + new["loads"]}
    training = {(x["size"], x["bucket_batches"]): x for x in old.get("training", []) + new["training"]}
    merged = {**new, "loads": [loads[k] for k in sorted(loads)],
              "training": [training[k] for k in sorted(training, key=lambda k: (k[0], k[1] or 0))]}
    write_result(name, merged)
    return merged


def print_table(r: dict[str, Any]) -> None:
    print("\nsize       workers  mol/s   kept B/mol  after B/mol  peak B/mol  after/kept  peak/kept  "
          "reload s  reload peak B/mol")
    for x in r["loads"]:
        c, w = x["cold"], x["reload"]
        after_kept = c.get("after_over_kept", c["after_over_base_per_mol"] / c["kept_bytes_per_mol"])
        print(f"{x['size']:>9,} {x['workers']:>7} {c['mol_per_s']:>7,.0f} {c['kept_bytes_per_mol']:>10,.0f} "
              f"{c['after_over_base_per_mol']:>12,.0f} {c['peak_over_base_per_mol']:>11,.0f} {after_kept:>11.2f} "
              f"{c['peak_over_kept']:>10.2f} {w['seconds']:>9.2f} {w['peak_over_base_per_mol']:>18,.0f}")
    for t in r["training"]:
        print(f"training {t['size']:,} bucket={t['bucket_batches']}: {t['step_cpu_s'] * 1e3:.0f} ms/step CPU, "
              f"epoch of {t['steps_per_epoch']} steps ≈ {t['epoch_cpu_s_extrapolated'] / 60:.1f} min"
              + (f" (measured: {t['epoch_cpu_s'] / 60:.1f} min CPU, {t['epoch_wall_s'] / 60:.1f} min wall)"
                 if "epoch_cpu_s" in t else "") + f"; {t['real_atom_fraction']:.0%} of padded slots are atoms")


def recorded_command(argv: list[str]) -> str:
    """The command line as recorded in the results: this module, without the options that name
    folders of this machine (``--workdir``, ``--gradscope-path``)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workdir", "--gradscope-path"):
            skip = True
        elif not arg.startswith(("--workdir=", "--gradscope-path=")):
            kept.append(arg)
    return " ".join(["python", "-m", "benchmarks.scale", *kept])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k molecules, 1 worker, 20 training steps")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--workdir", help="where the CSVs and caches go (default: a temporary folder)")
    parser.add_argument("--result", default="scale", help="results file name (default: scale; entries of other "
                        "sizes from earlier runs are kept)")
    parser.add_argument("--gradscope-path", help=argparse.SUPPRESS)  # compare another checkout's gradscope
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "load":
            out = child_load(rest[0], rest[1], int(rest[2]))
        else:
            out = child_train(rest[0], rest[1], int(rest[2]), int(rest[3]) or None)
        print(json.dumps(out))
        return 0
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    workers = [1] if args.quick else [int(w) for w in args.workers.split(",")]
    steps = 20 if args.quick else args.train_steps
    command = recorded_command(argv if argv is not None else sys.argv[1:])
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        print_table(run(sizes, workers, steps, Path(args.workdir), args.gradscope_path, args.result, command))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print_table(run(sizes, workers, steps, Path(tmp), args.gradscope_path, args.result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

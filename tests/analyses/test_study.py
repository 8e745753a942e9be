"""The reproduction study's runner (analyses.study) and its summaries (analyses.reproduction)."""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace

import h5py
import numpy as np
import pytest

from analyses import reproduction, study


def test_plan_covers_every_dataset_optimizer_and_seed() -> None:
    size = study.SIZES["cpu"]
    runs = study.plan(size)
    assert len(runs) == len(size.seeds) * len(size.datasets) * len(study.ENTRIES)
    assert len({r.name for r in runs}) == len(runs)
    assert runs[0].seed == size.seeds[0] and runs[-1].seed == size.seeds[-1]  # seed by seed


def test_entries_flag_selects_the_planned_runs_and_rejects_unknown_names(tmp_path, capsys) -> None:
    assert study.main(["list", str(tmp_path), "--size", "cpu-compt", "--seeds", "0", "--entries", "adam,sam-k"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["bbbp-adam-s0", "bbbp-sam-k-s0"]
    with pytest.raises(SystemExit) as exc:
        study.main(["list", str(tmp_path), "--entries", "adam,sharp"])
    assert exc.value.code == 2 and "unknown study entries sharp" in capsys.readouterr().err


def test_reproduction_of_an_empty_study_is_a_one_line_error(tmp_path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    assert reproduction.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no study runs" in err[0] and "Traceback" not in err[0]


def test_record_flags_follow_the_paper_and_the_probe_skips_adam(tmp_path, monkeypatch) -> None:
    size = study.SIZES["cpu"]
    monkeypatch.delenv("GRADSCOPE_MOLECULENET", raising=False)
    adam = study.record_args(study.StudyRun("bbbp", "adam", 0), size, tmp_path / "a")
    assert "--probe-exact-every" not in adam and "--data" not in adam and "--rho" not in adam
    sam = study.record_args(study.StudyRun("bbbp", "sam", 1), size, tmp_path / "s")
    # the paper's SAM baseline has GraphSAM's ρ scheduler (its Table 8 "scheduler" rows = Table 1's SAM)
    assert [_flag(sam, f) for f in ("--optimizer", "--rho", "--gamma", "--rho-step")] == ["sam", "0.05", "0.5", "1"]
    assert _flag(sam, "--seed") == "1"
    assert _flag(sam, "--probe-exact-every") == str(size.probe_every) and _flag(sam, "--threads") == "1"
    constant = study.record_args(study.StudyRun("bbbp", "sam-constant-rho", 1), size, tmp_path / "c")
    assert _flag(constant, "--optimizer") == "sam" and _flag(constant, "--gamma") == "1"
    graphsam = study.record_args(study.StudyRun("esol", "graphsam", 0), size, tmp_path / "g")
    assert [_flag(graphsam, f) for f in ("--rho", "--beta", "--gamma", "--rho-step")] == ["0.05", "0.99", "0.5", "1"]
    assert _flag(study.record_args(study.StudyRun("esol", "sam-one", 0), size, tmp_path / "o"), "--optimizer") \
        == "sam-one"  # the paper's SAM-One: ε once for the whole run
    (tmp_path / "esol.csv").write_text("smiles,y\nCCO,1\n")
    monkeypatch.setenv("GRADSCOPE_MOLECULENET", str(tmp_path))
    local = study.record_args(study.StudyRun("esol", "sam-k", 0), size, tmp_path / "k")
    assert _flag(local, "--data") == str(tmp_path / "esol.csv") and _flag(local, "--k") == "8"
    missing = study.record_args(study.StudyRun("bbbp", "sam-k", 0), size, tmp_path / "k")
    assert "--data" not in missing  # no local copy: the registry downloads or uses its cache


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_entries_read_their_names_from_the_registry_and_their_identity_from_the_run() -> None:
    names = {label: e.display_name for label, e in study.ENTRIES.items()}
    assert names == {"adam": "Adam", "sam": "SAM", "sam-constant-rho": "SAM (constant ρ)", "graphsam": "GraphSAM",
                     "sam-one": "SAM-One", "sam-k": "SAM-k", "graphsam-released": "GraphSAM (released code)"}
    assert reproduction.OPTIMIZERS == names
    for entry in study.ENTRIES.values():  # each entry's flags give a configuration only it matches
        assert study.entry_of(entry.config().to_dict()) is entry
    sam = study.ENTRIES["sam"].config()
    assert (sam.rho_schedule.gamma, study.ENTRIES["sam-constant-rho"].config().rho_schedule.gamma) == (0.5, 1.0)
    assert study.entry_of(sam.replace(optimizer_settings={"rho": 0.1}).to_dict()) is None
    assert study.entry_of({"optimizer": "nonexistent"}) is None


def test_a_run_directory_with_other_settings_is_not_taken_for_done(tmp_path) -> None:
    """An older study's constant-ρ SAM run in runs/<dataset>-sam-s0 is not the paper's SAM: refused."""
    import json as json_

    from gradscope.train.config import RecordConfig

    size = replace(study.SIZES["cpu"], epochs=1)
    run = study.StudyRun("bbbp", "sam", 0)
    run_dir = tmp_path / "runs" / run.name
    run_dir.mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    old = RecordConfig(optimizer="sam", rho_schedule={"gamma": 1.0}).to_dict()
    (run_dir / "config.json").write_text(json_.dumps(old))
    _, outcome, _ = study.train(run, size, tmp_path)
    assert outcome.startswith("failed") and "SAM (constant ρ)" in outcome


def test_epochs_done_is_zero_for_missing_or_broken_traces(tmp_path) -> None:
    assert study.epochs_done(tmp_path / "nothing") == 0
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "trace.h5").write_bytes(b"not hdf5")
    assert study.epochs_done(tmp_path / "broken") == 0


def test_mean_std_is_the_sample_statistics() -> None:
    values = [0.81, 0.86, float("nan"), 0.84]
    mean, std, n = reproduction.mean_std(values)
    assert n == 3 and mean == pytest.approx(statistics.mean([0.81, 0.86, 0.84]))
    assert std == pytest.approx(statistics.stdev([0.81, 0.86, 0.84]))
    one = reproduction.mean_std([2.0])
    assert one[0] == 2.0 and math.isnan(one[1])
    assert reproduction.pm(1.23456, float("nan")) == "1.235" and reproduction.pm(float("nan"), 1.0) == "—"


@pytest.mark.slow
def test_study_trains_resumes_draws_landscapes_and_summarises(tmp_path, monkeypatch, capsys) -> None:
    """A one-seed study on the built-in demo data with the tiny model: every optimizer's flags
    are accepted by `gradscope record`, an extended study resumes its runs, and the summary's
    numbers equal the same quantities computed straight from the HDF5 files."""
    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path / "cache"))
    size = replace(study.SIZES["cpu"], name="test", model="tiny", epochs=1, seeds=(0,), datasets=("demo",),
                   probe_every=2, landscape_points=5, landscape_samples=24)
    root = tmp_path / "study"
    assert study.run_study(root, size, jobs=2) == 0
    extended = replace(size, epochs=2)
    assert study.run_study(root, extended, jobs=2) == 0  # resumes every run to 2 epochs
    out = capsys.readouterr().out
    assert out.count("trained in") == 2 * len(study.ENTRIES) and "landscape demo-s0: drawn" in out
    for run in study.plan(extended):
        assert study.epochs_done(root / "runs" / run.name) == 2
        assert "--resume" in (root / "logs" / f"{run.name}.log").read_text()
    assert study.run_study(root, extended, jobs=1) == 0
    assert capsys.readouterr().out.count("done before") == len(study.ENTRIES) + 1  # the runs and the landscape

    written = reproduction.write_reproduction(root, tmp_path / "out")
    assert {p.name for p in written} >= {"results.json", "tables.md", "entropy.png", "observation1_demo.png",
                                          "observation2_demo.png", "landscape_demo.png", "released_demo.png"}
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    runs = {r["optimizer"]: r for r in results["runs"]}
    assert set(runs) == set(study.ENTRIES)
    assert runs["sam-constant-rho"]["rho_last"] == pytest.approx(runs["sam-constant-rho"]["rho_first"])
    assert runs["sam"]["rho_last"] == pytest.approx(0.5 * runs["sam"]["rho_first"])  # scheduled, 2 epochs
    with h5py.File(root / "runs" / "demo-sam-s0" / "trace.h5", "r") as f:
        cos = f["steps/cos_eps_prev_omega"][:]
        omega, eps_hat = f["steps/omega_norm"][:], f["steps/eps_hat_norm"][:]
        evals = f["steps/grad_evals"][:]
        val, test = f["epochs/val_rmse"][:], f["epochs/test_rmse"][:]
        entropy = f["epochs/attention_entropy"][:]
    sam = runs["sam"]
    cos = cos[np.isfinite(cos)]
    assert sam["consistent_pct"] == pytest.approx(100.0 * np.mean(cos >= 0))
    assert sam["perturbation_norm_ratio"] == pytest.approx(float(np.median(omega / eps_hat)), rel=1e-6)
    assert sam["passes_per_step"] == pytest.approx(evals.mean()) and evals.mean() == 2.0
    best = int(np.argmin(val))
    assert sam["test_metric"] == pytest.approx(test[best]) and sam["entropy"] == pytest.approx(entropy[best])
    assert runs["adam"]["passes_per_step"] == 1.0 and math.isnan(runs["adam"]["consistent_pct"])
    assert runs["graphsam"]["exact_count"] > 0 and runs["sam"]["exact_count"] == 0  # SAM's ε is exact
    assert {(r["optimizer"], r["seed"]) for r in results["landscapes"]} == {(o, 0) for o in study.LANDSCAPE_OPTIMIZERS}
    tables = (tmp_path / "out" / "tables.md").read_text()
    assert "67.45" in tables and "72.46" in tables and "| demo | SAM |" in tables

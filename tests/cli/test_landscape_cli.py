"""`gradscope landscape` end to end on tiny recorded runs, against plain evaluations of the checkpoints."""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.cli import main
from gradscope.landscape import open_landscape
from gradscope.train.build import load_run
from gradscope.train.objective import masked_loss

pytestmark = pytest.mark.slow


def _record(out: Path, optimizer: str, *extra: str) -> Path:
    args = ["record", "--optimizer", optimizer, "--model", "tiny", "--epochs", "1", "--batch-size", "64",
            "--out", str(out), "--quiet", *extra]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("landscape_runs")
    return {
        "adam": _record(base / "adam", "adam"),
        "sam": _record(base / "sam", "sam", "--save-vectors-every", "4"),
    }


def _copy(run: Path, where: Path) -> Path:
    """A private copy of a fixture run (tests that write into RUN/landscape must not share one)."""
    shutil.copytree(run, where)
    return where


def _sample(n: int, samples: int, seed: int) -> np.ndarray:
    """The documented --samples rule, spelled out: a uniform draw without replacement, in stored order."""
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def _plain_loss(run_dir: Path, samples: int, seed: int = 0) -> float:
    """Reference: the checkpoint's mean loss on the --samples draw of the train split, one molecule at a time."""
    run = load_run(run_dir)
    split = run.data.split["train"]
    idx = split[_sample(len(split), samples, seed)]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(len(idx)):
            batch = run.data.dataset.batch(idx[i:i + 1], standardizer=run.data.standardizer)
            n = int(batch.y_mask.sum())
            total += float(masked_loss(run.model(batch), batch, run.data.task)) * n
            count += n
    return total / count


def test_centre_is_the_plain_loss_and_files_are_written(runs, tmp_path, capsys) -> None:
    out = tmp_path / "ls"
    code = main(["landscape", str(runs["adam"]), str(runs["sam"]), "--points", "5", "--samples", "40",
                 "--out", str(out), "--quiet", "--hessian"])
    assert code == 0
    for label in ("adam", "sam"):
        ls = open_landscape(out / f"{label}_random_1d.h5")
        assert ls.complete and ls.loss.shape == (5,)
        assert ls.centre_loss == pytest.approx(_plain_loss(runs[label], 40), rel=1e-5)
    assert (out / "landscape_random_1d.png").is_file() and (out / "landscape_random_1d.html").is_file()
    summary = json.loads((out / "sharpness.json").read_text())
    assert set(summary) == {"adam", "sam"}
    for entry in summary.values():
        assert entry["lambda_max"] >= entry["lambda_min"]
        assert entry["top_eigenvalues"] == sorted(entry["top_eigenvalues"], reverse=True)
        assert entry["top_eigenvalues"][0] == entry["lambda_max"]
        assert np.isfinite([entry["trace"], entry["rho_sharpness"], entry["mean_increase"]]).all()
        assert (out / entry["run"]).resolve() in {runs["adam"].resolve(), runs["sam"].resolve()}
    assert (out / "sharpness.h5").is_file() and (out / "sharpness_density.png").is_file()
    assert "λ_max" in capsys.readouterr().out


def test_several_runs_write_into_their_own_folders(runs, tmp_path, capsys) -> None:
    from analyses.landscapes import sharpness_table
    from analyses.report import build_report
    from analyses.runs import load_runs

    adam, sam = _copy(runs["adam"], tmp_path / "adam"), _copy(runs["sam"], tmp_path / "sam")
    assert main(["landscape", str(adam), str(sam), "--points", "3", "--samples", "20", "--hessian",
                 "--trace-probes", "2"]) == 0
    for run, label in ((adam, "adam"), (sam, "sam")):
        assert sorted(p.name for p in (run / "landscape").glob("*.h5")) == [f"{label}_random_1d.h5", "sharpness.h5"]
        assert set(json.loads((run / "landscape" / "sharpness.json").read_text())) == {label}
    printed = capsys.readouterr().out
    assert shlex.join(["gradscope", "report", str(adam), str(sam), "--out", "report.html"]) in printed
    loaded = load_runs([adam, sam])
    rows = sharpness_table(loaded)  # each run credited with its own numbers
    assert [r["run"] for r in rows] == ["Adam", "SAM"]
    for row, run, label in zip(rows, (adam, sam), ("adam", "sam")):
        assert row["lambda_max"] == json.loads((run / "landscape" / "sharpness.json").read_text())[label]["lambda_max"]
    assert [len(r.landscapes) for r in loaded] == [1, 1]
    result = build_report(loaded, tmp_path / "r.html", kinds=["landscape"])
    section = result.sections[0]
    assert section.figures == 1 and section.tables == 1 and section.notes == []
    assert "λ_max" in (tmp_path / "r.html").read_text()


def test_1d_and_2d_landscapes_of_a_run_do_not_collide(runs, tmp_path) -> None:
    sam = _copy(runs["sam"], tmp_path / "sam")
    for dim in ("1", "2"):
        assert main(["landscape", str(sam), "--dim", dim, "--points", "3", "--samples", "10", "--quiet"]) == 0
    one, two = open_landscape(sam / "landscape" / "sam_random_1d.h5"), open_landscape(sam / "landscape" / "sam_random_2d.h5")
    assert one.dims == 1 and two.dims == 2 and one.complete and two.complete


def test_the_suggested_landscape_command_can_be_run_again(tmp_path, capsys) -> None:
    """`gradscope record` prints a landscape command; pasted into a shell (a path with a space),
    it runs, and runs again; a changed grid then needs --overwrite."""
    run = tmp_path / "my runs" / "demo"
    assert main(["record", "--optimizer", "adam", "--model", "tiny", "--epochs", "1", "--out", str(run)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.strip().startswith("gradscope landscape"))
    argv = shlex.split(line.split("#")[0])[1:] + ["--points", "3", "--samples", "10", "--quiet"]
    assert argv[1] == str(run)
    assert main(argv) == 0
    first = open_landscape(run / "landscape" / "adam_random_1d.h5")
    assert main(argv) == 0  # again: the finished file is kept and re-drawn
    again = open_landscape(run / "landscape" / "adam_random_1d.h5")
    np.testing.assert_array_equal(first.loss, again.loss)
    assert main([*argv[:-5], "--points", "5", "--samples", "10"]) == 2
    assert "replace it with --overwrite" in capsys.readouterr().err
    assert main([*argv[:-5], "--points", "5", "--samples", "10", "--overwrite", "--quiet"]) == 0
    assert open_landscape(run / "landscape" / "adam_random_1d.h5").loss.shape == (5,)


def test_interpolation_ends_are_the_two_checkpoints(runs, tmp_path) -> None:
    out = tmp_path / "interp"
    assert main(["landscape", str(runs["adam"]), str(runs["sam"]), "--directions", "interpolate", "--points", "5",
                 "--samples", "40", "--out", str(out), "--quiet"]) == 0
    files = list(out.glob("*.h5"))
    assert [f.name for f in files] == ["adam_sam_interpolate_1d.h5"]
    ls = open_landscape(files[0])
    x = np.asarray(ls.x)
    assert x[0] == pytest.approx(-0.5) and x[-1] == pytest.approx(1.5)
    at = lambda a: float(ls.loss[int(np.argmin(abs(x - a)))])  # noqa: E731
    assert at(0.0) == pytest.approx(_plain_loss(runs["adam"], 40), rel=1e-5)
    # α = 1 is θ_adam + (θ_sam − θ_adam): the SAM weights up to float rounding, on the same data
    assert at(1.0) == pytest.approx(_plain_loss(runs["sam"], 40), rel=1e-4)


def test_eps_omega_directions_from_saved_vectors(runs, tmp_path) -> None:
    out = tmp_path / "eo"
    assert main(["landscape", str(runs["sam"]), "--directions", "eps-omega", "--dim", "2", "--points", "3",
                 "--samples", "20", "--out", str(out), "--quiet"]) == 0
    ls = open_landscape(out / "sam_eps-omega_2d.h5")
    assert ls.loss.shape == (3, 3) and np.isfinite(ls.loss).all()


def test_eps_omega_without_snapshots_creates_nothing(runs, tmp_path, capsys) -> None:
    adam = _copy(runs["adam"], tmp_path / "adam")
    assert main(["landscape", str(adam), "--directions", "eps-omega"]) == 2
    assert "no ε/ω snapshots" in capsys.readouterr().err
    assert not (adam / "landscape").exists()
    assert main(["landscape", str(runs["sam"]), str(adam), "--directions", "eps-omega", "--out",
                 str(tmp_path / "both")]) == 2  # the first run has snapshots: still nothing is written
    assert not (tmp_path / "both").exists()


@pytest.mark.parametrize("argv, message", [
    (["landscape", "nowhere"], "no such run directory"),
    (["landscape", "{adam}", "--directions", "eps-omega"], "no ε/ω snapshots"),
    (["landscape", "{adam}", "--directions", "interpolate"], "exactly two"),
    (["landscape", "{adam}", "--points", "4"], "odd count"),
    (["landscape", "{adam}", "--points", "1"], "--points must be at least 3"),
    (["landscape", "{adam}", "--dim", "2", "--points", "2"], "--points must be at least 3"),
    (["landscape", "{adam}", "--range", "0"], "range"),
    (["landscape", "{adam}", "--samples", "0"], "--samples must be positive"),
])
def test_user_errors_exit_2(runs, tmp_path, capsys, argv, message) -> None:
    argv = [a.format(adam=runs["adam"]) for a in argv] + ["--out", str(tmp_path / "x")]
    assert main(argv) == 2
    # one error line; before it at most the data's warnings, one line each (the demo has a duplicate)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gradscope: error:") and message in err[-1]
    assert all(line.startswith("gradscope: warning: ") for line in err[:-1]), err
    assert not (tmp_path / "x").exists()


def test_a_checkpoint_of_another_model_is_an_error(runs, tmp_path, capsys) -> None:
    other = _record(tmp_path / "small", "adam", "--model", "small")
    assert main(["landscape", str(runs["adam"]), str(other), "--out", str(tmp_path / "y")]) == 2
    assert "another model" in capsys.readouterr().err


def test_unreadable_checkpoint_is_an_error(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["landscape", str(bad), "--out", str(tmp_path / "z")]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_runs_of_one_dataset_load_it_once(runs, monkeypatch) -> None:
    """Comparing several runs of one dataset loads (and reports) the dataset once; each run still
    gets its own split and standardizer."""
    import gradscope.train.build as build
    from gradscope.landscape.runs import RunLandscapeSettings, _load

    calls = []
    real = build.load_dataset
    monkeypatch.setattr(build, "load_dataset", lambda *a, **k: calls.append(a) or real(*a, **k))
    loaded = _load([runs["adam"], runs["sam"]], RunLandscapeSettings())
    assert len(calls) == 1 and loaded[0].data.dataset is loaded[1].data.dataset
    for run, path in zip(loaded, (runs["adam"], runs["sam"])):
        alone = load_run(path)
        assert all(np.array_equal(run.data.split[k], alone.data.split[k]) for k in ("train", "val", "test"))

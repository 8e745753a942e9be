"""The reproduction summary reads who each run is from its trace, not from its folder's name."""
from __future__ import annotations

import json

import numpy as np
import pytest
from kit.traces import sam_like, write_landscape, write_trace

from analyses import reproduction
from analyses.names import OPTIMIZER_NAMES, display_name
from analyses.runs import run_identity
from gradscope.optim.registry import OPTIMIZERS
from gradscope.trace import open_trace

EPOCHS = {"epoch": np.arange(2), "val_rmse": [1.0, 0.8], "test_rmse": [1.1, 0.9], "graphs_per_s": [10.0, 12.0],
          "attention_entropy": [2.0, 2.2]}


def _run(root, folder, optimizer, dataset="esol", seed=0, epochs=2):
    config = {"optimizer": optimizer, "dataset": dataset, "seed": seed, "epochs": epochs}
    cols = sam_like(20, seed)
    cols.update(rho=np.full(20, 0.05), eps_hat_norm=np.full(20, 0.05))
    write_trace(root / "runs" / folder / "trace.h5", cols, EPOCHS, optimizer=optimizer.upper(), config=config)
    return root / "runs" / folder


def test_display_names_cover_every_recordable_optimizer():
    assert OPTIMIZER_NAMES == ("adam", *OPTIMIZERS)
    names = [display_name(o) for o in OPTIMIZER_NAMES]
    assert len(set(names)) == len(names) and all(n != o for n, o in zip(names, OPTIMIZER_NAMES))
    assert display_name("sam-one") == "SAM-One" and display_name("my-method") == "my-method"


def test_run_identity_from_the_config(tmp_path):
    run = _run(tmp_path, "bbbp-adam-s9", "sam-one", dataset="bace", seed=4)  # the folder name says otherwise
    who = run_identity(open_trace(run / "trace.h5"))
    assert (who.optimizer, who.dataset, who.seed) == ("sam-one", "bace", 4)
    bare = write_trace(tmp_path / "own.h5", sam_like(5), optimizer="SAMOne", config={"data": "x/My_Data.csv"})
    who = run_identity(open_trace(bare))  # a user's own loop: the optimizer class, the data file's stem
    assert (who.optimizer, who.dataset, who.seed) == ("SAMOne", "My_Data", None)


def test_study_runs_and_landscapes_are_identified_by_their_traces(tmp_path, capsys):
    root = tmp_path / "study"
    sam = _run(root, "first", "sam")
    graphsam = _run(root, "second", "graphsam", seed=1)
    _run(root, "third", "adam", epochs=5)  # 2 of 5 epochs: not finished
    found = reproduction.study_runs(root)
    assert [(r.path.name, r.optimizer, r.dataset, r.seed) for r in found] == [
        ("first", "sam", "esol", 0), ("second", "graphsam", "esol", 1)]
    assert "left out third: not finished" in capsys.readouterr().err
    folder = root / "landscapes" / "anything"
    x = np.linspace(-1, 1, 5)
    write_landscape(folder / "a.h5", x, 1.0 + x**2)
    entries = {"sam": {"run": "../../runs/first", "landscapes": ["a.h5"], "loss": 1.0, "lambda_max": 5.0,
                       "lambda_min": -0.5, "mean_increase": 0.1, "max_increase": 0.2},
               "other label": {"run": "../../runs/second", "landscapes": [], "loss": 2.0, "lambda_max": 3.0}}
    (folder / "sharpness.json").write_text(json.dumps(entries))
    rows = reproduction.landscape_results(root)
    assert [(r["optimizer"], r["seed"], r["dataset"]) for r in rows] == [("sam", 0, "esol"), ("graphsam", 1, "esol")]
    assert rows[0]["lambda_max"] == 5.0 and rows[0]["rise_at_1"] == pytest.approx(1.0)
    assert np.isnan(rows[1]["rise_at_1"]) and np.isnan(rows[1]["trace"])
    written = reproduction.write_reproduction(root, tmp_path / "out")
    assert {p.name for p in written} >= {"results.json", "tables.md", "observation1_esol.png", "landscape_esol.png"}
    tables = (tmp_path / "out" / "tables.md").read_text()
    assert "| esol | SAM |" in tables and "| esol | GraphSAM |" in tables and "| λ_min |" in tables
    assert graphsam.is_dir() and sam.is_dir()


def test_the_paper_numbers_stand_beside_ours_in_the_test_metric_table():
    runs = [{"dataset": "bbbp", "optimizer": o, "seed": 0, "metric": "roc_auc", "test_metric": t,
             "graphs_per_s": g, "passes_per_step": p}
            for o, t, g, p in (("adam", 0.94, 13.0, 1.0), ("sam", 0.95, 6.5, 2.0), ("sam-one", 0.93, 12.0, 1.0),
                               ("sam-constant-rho", 0.95, 6.4, 2.0))]
    agg = reproduction.aggregate(runs, ["test_metric", "graphs_per_s", "passes_per_step"])
    rows = {r["optimizer"]: r for r in reproduction._throughput_rows(runs, agg)}
    # Table 1 with its std (Adam 0.948 ± 0.025, SAM 0.962 ± 0.033); Table 2 only a mean for SAM-One
    assert rows["Adam"]["paper (CoMPT)"] == "0.948 ± 0.025" and rows["SAM"]["paper (CoMPT)"] == "0.962 ± 0.033"
    assert rows["SAM-One"]["paper (CoMPT)"] == "0.922" and rows["SAM-One"]["paper × SAM"] == f"{199 / 112:.2f}"
    assert rows["SAM (constant ρ)"]["paper (CoMPT)"] == "—"  # the paper's SAM row has the ρ scheduler
    assert rows["SAM"]["× Adam"] == "0.50" and rows["SAM"]["paper × SAM"] == "1.00"
    assert "(no rows)" in reproduction.tables_markdown(runs[:1], [])  # Adam alone: no ε, no Observation rows

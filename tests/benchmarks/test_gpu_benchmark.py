"""benchmarks/gpu.py on CPU: everything but the CUDA calls.

One tiny run (the ``tiny`` model, Adam and SAM, SAM's three recordings, Adam in bf16, on the
BBBP excerpt of tests/data) goes through the command line once; the tests read its printed table
and its JSON. The sync counter is tested with the warning torch's sync debug mode emits, injected
where a sync would be; on a CUDA machine also with a real device-to-host read.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import statistics
import warnings
from pathlib import Path

import pytest
import torch

import benchmarks.common as common
from benchmarks import gpu
from benchmarks.throughput import Trainer
from gradscope.errors import ConfigError

LABELS = ["adam", "sam", "sam+scalars", "sam+layers", "sam+probe10", "adam@bf16"]
TINY = ["--device", "cpu", "--models", "tiny", "--optimizers", "adam,sam", "--record-with", "sam", "--bf16", "adam",
        "--rounds", "3", "--steps", "1", "--warmup", "1", "--sync-steps", "2", "--memory-steps", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    """(printed table, the JSON written, its path) of one tiny run on CPU."""
    tmp = tmp_path_factory.mktemp("gpu-bench")
    data = Path(__file__).resolve().parents[1] / "data" / "moleculenet" / "bbbp.csv"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADSCOPE_CACHE", str(tmp / "cache"))
        mp.setattr(common, "RESULTS_DIR", tmp / "results")
        with contextlib.redirect_stdout(out):
            assert gpu.main(TINY + ["--data", str(data)]) == 0
    path = tmp / "results" / "gpu.json"
    return out.getvalue(), json.loads(path.read_text()), path


def rows_of(result: dict) -> dict[str, dict]:
    (block,) = result["models"]
    return block["rows"]


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> gpu.Workload:
    data = Path(__file__).resolve().parents[1] / "data" / "moleculenet" / "bbbp.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        cfg = gpu.GpuBenchConfig(device="cpu", models=("tiny",), optimizers=("adam", "sam", "graphsam"),
                                 data=str(data), dataset="bbbp", record_with="graphsam", autocast=())
        return gpu.load_workload(cfg, torch.device("cpu"))


# -- the run: table, ratios, JSON --------------------------------------------------------------
def test_the_table_has_a_row_for_every_variant(tiny_run):
    table, result, _ = tiny_run
    assert list(rows_of(result)) == LABELS
    lines = table.splitlines()
    header = lines[1].split()
    assert header[:3] == ["model", "variant", "graphs/s"]
    body = [line.split() for line in lines[2:2 + len(LABELS)]]
    assert [cells[:2] for cells in body] == [["tiny", label] for label in LABELS]
    assert result["data"]["name"] == "bbbp" and result["data"]["batch_size"] == 32
    assert result["config"]["data"] == "bbbp.csv"  # the file name, not this machine's path


def test_ratios_agree_with_graphs_per_s(tiny_run):
    table, result, _ = tiny_run
    rows = rows_of(result)
    adam, sam = rows["adam"]["graphs_per_s"], rows["sam"]["graphs_per_s"]
    for label, row in rows.items():
        assert row["graphs_per_s"] == pytest.approx(statistics.median(row["rounds_graphs_per_s"]), rel=1e-12)
        assert len(row["rounds_graphs_per_s"]) == 3
        assert row["vs_adam"] == pytest.approx(row["graphs_per_s"] / adam, rel=1e-12)
        assert row["vs_sam"] == pytest.approx(row["graphs_per_s"] / sam, rel=1e-12)
        base = {"sam+scalars": "sam", "sam+layers": "sam", "sam+probe10": "sam", "adam@bf16": "adam"}.get(label)
        assert row["baseline"] == base
        if base is None:
            assert row["time_vs_baseline"] is None
        else:
            assert row["time_vs_baseline"] == pytest.approx(row["step_s"] / rows[base]["step_s"], rel=1e-12)
    assert rows["adam"]["vs_adam"] == 1.0 and rows["sam"]["vs_sam"] == 1.0
    assert rows["adam"]["passes_per_step"] == 1.0 and rows["sam"]["passes_per_step"] == 2.0
    # the printed cells are the JSON's numbers
    printed = {cells[1]: cells for cells in (line.split() for line in table.splitlines()[2:2 + len(LABELS)])}
    for label, row in rows.items():
        assert printed[label][2] == f"{row['graphs_per_s']:.1f}"
        assert printed[label][3] == f"{row['graphs_per_s'] / adam:.3f}"
        assert printed[label][4] == f"{row['graphs_per_s'] / sam:.3f}"


def test_the_json_round_trips_to_the_same_table(tiny_run):
    table, result, path = tiny_run
    assert gpu.format_table(result) == table.rstrip("\n")
    assert json.loads(json.dumps(result)) == result
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()  # strict JSON
    assert result["config"]["models"] == ["tiny"] and result["config"]["optimizers"] == ["adam", "sam"]
    assert result["machine"]["device"] == "cpu" and result["wall_s"] > 0


def test_on_cpu_memory_and_syncs_are_reported_as_not_applicable(tiny_run):
    table, result, _ = tiny_run
    assert result["syncs"] == gpu.NOT_ON_CPU and result["memory"] == gpu.NOT_ON_CPU
    for row in rows_of(result).values():
        assert row["peak_mib"] is None and row["syncs"] is None
    for line in table.splitlines()[2:2 + len(LABELS)]:
        assert line.count(gpu.NOT_ON_CPU) == 3  # peak MiB, syncs/step, fwd-bwd syncs/step


# -- sync counting -----------------------------------------------------------------------------
def fake_sync() -> None:
    """What torch does at a synchronizing CUDA operation under set_sync_debug_mode("warn")."""
    warnings.warn(gpu.SYNC_WARNING, UserWarning)


def test_the_tally_counts_every_sync_warning_and_splits_off_the_closures():
    tally = gpu.SyncTally(torch.device("cpu"))
    with tally.watching():
        for _ in range(2):
            fake_sync()  # the same code location twice: both counted
        warnings.warn("something else", UserWarning)  # not a sync
        with tally.closure():
            fake_sync()
    assert (tally.total, tally.in_closure) == (3, 1)
    (where,) = tally.locations()
    assert where.startswith(Path(__file__).name + ":") and tally.locations()[where] == 3
    if torch.cuda.is_available():  # the real thing: a device-to-host read
        x = torch.ones(3, device="cuda")
        real = gpu.SyncTally(torch.device("cuda"))
        with real.watching():
            x.sum().item()
        assert real.total >= 1
        assert torch.cuda.get_sync_debug_mode() == 0  # restored


@pytest.mark.filterwarnings("ignore:called a synchronizing")  # the fakes outside the counted window
def test_measure_syncs_attributes_step_closure_and_flush(workload, tmp_path):
    variant = gpu.Variant("graphsam", recording="probe10")
    trainer = gpu.make_trainer(workload, variant, "tiny", tmp_path)
    try:
        trainer.run(3)  # the recorder's next step (3) is not a probe step: measure_syncs must align
        model, step, flush = trainer.model, trainer.optimizer.step, trainer.recorder.flush

        def forward(batch):
            fake_sync()  # one per forward-backward pass
            return model(batch)

        def stepping(closure=None):
            fake_sync()  # one per optimizer step, outside its closures
            return step(closure)

        def flushing():
            fake_sync()
            flush()

        trainer.model, trainer.optimizer.step, trainer.recorder.flush = forward, stepping, flushing
        counted = gpu.measure_syncs(trainer, 2)
    finally:
        trainer.close()
    # 2 steps: anchored GraphSAM (2 passes) + 1 pass, and the exact-ε probe's pass on the first
    assert counted["per_step"] == 1.0
    assert counted["fwd_bwd_per_step"] == (2 + 1 + 1) / 2
    assert counted["flush"] == 1 and counted["steps"] == 2
    assert sum(counted["locations"].values()) == 2 + 4 + 1


def test_no_recorder_no_flush_count_and_cpu_cross_checks_are_none(workload, tmp_path):
    trainer = gpu.make_trainer(workload, gpu.Variant("adam"), "tiny", tmp_path)
    counted = gpu.measure_syncs(trainer, 2)
    assert counted["flush"] is None and counted["per_step"] == 0 and counted["fwd_bwd_per_step"] == 0
    assert gpu.raises_in_error_mode(trainer) is None and gpu.sync_report(trainer, 2) is None
    built = []
    assert gpu.peak_memory_mib(lambda: built.append(1), 1, torch.device("cpu")) is None and built == []


@pytest.mark.parametrize("name", ["adam", "sam"])
def test_the_counted_steps_train_like_the_timed_ones(workload, tmp_path, name):
    """train_steps (the sync window's loop) against benchmarks.throughput.Trainer.run (the timed one)."""
    timed, counted = (gpu.make_trainer(workload, gpu.Variant(name), "tiny", tmp_path) for _ in range(2))
    for a, b in zip(timed.model.parameters(), counted.model.parameters()):
        assert torch.equal(a, b)  # the same initial weights
    timed.run(3)
    gpu.train_steps(counted, 3)
    assert counted.step_no == timed.step_no == 3
    for a, b in zip(timed.model.parameters(), counted.model.parameters()):
        assert torch.equal(a, b)


def test_the_bf16_row_runs_its_forward_under_autocast(workload, tmp_path):
    trainer = gpu.make_trainer(workload, gpu.Variant("adam", precision="bf16"), "tiny", tmp_path)
    assert isinstance(trainer.model, gpu.Autocast)
    seen = []

    def hook(module, inputs, output):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)

    trainer.model.model.register_forward_hook(hook)
    trainer.run(1)
    assert seen == [torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


# -- pieces --------------------------------------------------------------------------------------
def test_variants_and_their_baselines():
    cfg = gpu.GpuBenchConfig(device="cpu", optimizers=("adam", "sam", "graphsam"))
    labels = [v.label for v in gpu.variants(cfg)]
    assert labels == ["adam", "sam", "graphsam", "graphsam+scalars", "graphsam+layers", "graphsam+probe10",
                      "adam@bf16", "sam@bf16", "graphsam@bf16"]
    assert gpu.Variant("sam").baseline is None
    assert gpu.Variant("sam", precision="bf16").baseline == gpu.Variant("sam")
    from gradscope.optim import OPTIMIZERS

    assert gpu.GpuBenchConfig().optimizers == ("adam", *OPTIMIZERS)  # every registered optimizer


def test_ratios_without_a_sam_row_are_none():
    rows = {"adam": {"graphs_per_s": 100.0, "step_s": 0.32, "baseline": None},
            "adam@bf16": {"graphs_per_s": 200.0, "step_s": 0.16, "baseline": "adam"}}
    gpu.add_ratios(rows)
    assert rows["adam@bf16"]["vs_adam"] == 2.0 and rows["adam@bf16"]["vs_sam"] is None
    assert rows["adam@bf16"]["time_vs_baseline"] == 0.5 and rows["adam"]["time_vs_baseline"] is None


def cuda_like(result: dict) -> dict:
    """The tiny run's result as a CUDA run would fill it (sync counts, memory)."""
    out = json.loads(json.dumps(result))
    out["syncs"], out["machine"]["gpu"] = "counted", "A GPU"
    for label, row in rows_of(out).items():
        row["peak_mib"] = 12.5
        flush = 1 if "+" in label else None
        row["syncs"] = {"steps": 20, "per_step": 0.0, "fwd_bwd_per_step": 0.0, "flush": flush, "locations": {},
                        "error_mode_raised": False}
    return out


def test_the_table_shows_cuda_counts_and_the_error_mode_cross_check(tiny_run):
    result = cuda_like(tiny_run[1])
    rows_of(result)["sam"]["syncs"].update(per_step=1.0, error_mode_raised=True)  # like AE-SAM
    table = gpu.format_table(result)
    assert gpu.NOT_ON_CPU not in table and "A GPU" in table
    cells = {line.split()[1]: line for line in table.splitlines()[2:2 + len(LABELS)]}
    assert cells["sam"].split()[-2:] == ["1", "0"] and cells["sam+scalars"].split()[-3:] == ["0", "+1/flush", "0"]
    assert cells["adam"].split()[-3:] == ["12.5", "0", "0"]
    assert table.splitlines()[-1].endswith("agrees with the counts: yes")
    rows_of(result)["adam"]["syncs"]["error_mode_raised"] = True  # raised, yet nothing counted
    assert gpu.error_mode_disagreements(result) == ["tiny/adam"]
    assert gpu.format_table(result).splitlines()[-1].endswith("NO: tiny/adam")


@pytest.mark.parametrize("change, message", [
    ({"optimizers": ("adam", "nope")}, "unknown optimizer"),
    ({"models": ("huge",)}, "unknown model"),
    ({"recordings": ("everything",)}, "unknown recording"),
    ({"optimizers": ("adam", "sam")}, "--record-with graphsam"),
    ({"autocast": ("rst",), "optimizers": ("adam", "graphsam")}, "--bf16"),
    ({"sync_steps": 256}, "--sync-steps"),
    ({"rounds": 0}, "--rounds"),
    ({"steps": 0}, "--steps"),
    ({"warmup": -1}, "--warmup"),
])
def test_bad_settings_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        gpu.GpuBenchConfig(device="cpu", **change)


def test_the_command_line_reports_user_errors_in_one_line(monkeypatch, capsys):
    assert gpu.main(["--device", "cpu", "--optimizers", "adam,nope", "--data", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown optimizer 'nope'") and err.count("\n") == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_data_defaults_to_the_shared_bbbp_else_the_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADSCOPE_MOLECULENET", str(tmp_path))  # no bbbp.csv there
    assert gpu.config_from_args(gpu.parse_args(["--device", "cpu"])).data is None
    (tmp_path / "bbbp.csv").write_text("smiles,p_np\nCCO,1\n")
    cfg = gpu.config_from_args(gpu.parse_args(["--device", "cpu"]))
    assert (cfg.data, cfg.dataset) == (str(tmp_path / "bbbp.csv"), "bbbp")
    assert gpu.config_from_args(gpu.parse_args(["--device", "cpu", "--data", "demo"])).data is None
    quick = gpu.config_from_args(gpu.parse_args(["--device", "cpu", "--quick", "--rounds", "4"]))
    assert (quick.rounds, quick.steps, quick.warmup) == (4, gpu.QUICK["steps"], gpu.QUICK["warmup"])
    assert quick.models == gpu.QUICK["models"]
    full = gpu.config_from_args(gpu.parse_args(["--device", "cpu", "--models", "tiny,compt"]))
    assert (full.models, full.rounds, full.steps) == (("tiny", "compt"), 5, None)


def test_the_demo_molecules_make_a_workload():
    wl = gpu.load_workload(gpu.GpuBenchConfig(device="cpu", models=("tiny",)), torch.device("cpu"))
    assert wl.data.dataset.name == "demo" and wl.steps_per_epoch == len(wl.batches) > 1
    assert all(len(b.index) == 32 for b in wl.batches[:-1])


def test_python_m_benchmarks_knows_gpu_but_runs_it_only_when_named():
    from benchmarks import __main__ as bench

    assert "gpu" in bench.ALL and "gpu" not in bench.DEFAULT
    assert set(bench.DEFAULT) | {"gpu"} == set(bench.ALL)

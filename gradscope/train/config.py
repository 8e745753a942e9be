"""The resolved configuration of a `gradscope record` run.

One frozen dataclass holds every choice a run makes; it validates itself on construction and is
saved as ``config.json`` beside the trace (and inside each checkpoint), so a run can always be
reproduced or resumed from its own directory.

Each field is also a ``gradscope record`` flag of the same name (``max_atoms`` ↔ ``--max-atoms``):
its help text, group and choices are the field's metadata, which :mod:`gradscope.cli.record`
turns into the parser. The optimizer's own hyperparameters are ``optimizer_settings``, the
settings dataclass its registry entry declares (:mod:`gradscope.optim.registry`), and
``rho_schedule`` is the :class:`~gradscope.optim.StepRhoConfig` of methods whose ρ decays over
epochs (None for the others); their flags come from the registry.

Configurations written before the registry kept the optimizer's settings as flat keys (``rho``,
``beta``, ``gamma``, ``rho_step``, ``anchor_every``, ``k``) and an ``extra`` dict that nothing
read: :meth:`RecordConfig.from_dict` still reads them (see :func:`from_flat_keys`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from gradscope.chem.duplicates import POLICIES as DUPLICATE_POLICIES
from gradscope.errors import ConfigError
from gradscope.models.recipes import recipe_names
from gradscope.models.registry import model_names
from gradscope.optim.core import BASE_OPTIMIZERS
from gradscope.optim.registry import get_method, method_by_former_name
from gradscope.optim.schedules import StepRhoConfig
from gradscope.probes.settings import RecorderSettings
from gradscope.train.schedules import LR_SCHEDULES

SPLITS = ("random", "scaffold")
PRECISIONS = ("fp32", "bf16", "fp16")
TASKS = ("classification", "regression")
#: The flag groups of `gradscope record --help`, in order (the optimizer's settings follow "optimization").
GROUPS = ("data", "optimization", "model, device, output", "recording")

#: Flat optimizer keys of configurations written before the registry (each was its flag's name).
FLAT_OPTIMIZER_KEYS = ("rho", "beta", "gamma", "rho_step", "anchor_every", "k")
#: Recorder keyword → RecordConfig field, where the names differ: the one renaming between the run's
#: settings (flags, config.json) and :class:`gradscope.probes.Recorder` (see :func:`recorder_settings`).
RECORDER_NAMES = {"vectors_every": "save_vectors_every"}


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip()) or None


def flag(default: Any, help: str, group: str, *, choices: tuple[str, ...] | None = None,
         metavar: str | None = None, parse: Callable[[str], Any] | None = None) -> Any:
    """A RecordConfig field that `gradscope record` shows as ``--field-name`` (see the module doc)."""
    meta = {"help": help, "group": group, "choices": choices, "metavar": metavar, "parse": parse}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RecordConfig:
    """Everything a recorded training run depends on.

    Defaults follow the GraphSAM paper (Wang et al. 2024, §5): GraphSAM with ρ=0.05, β=0.99,
    γ=0.5, λ=1 on Adam, random 0.8/0.1/0.1 split. With no data given the built-in demo dataset
    is used. ``optimizer_settings`` and ``rho_schedule`` accept None (the method's defaults), a
    mapping of field → value, or the settings dataclass itself.
    """

    # data: --dataset NAME, --data FILE, or both (a named dataset read from a local copy)
    data: str | None = flag(None, "a CSV file (any file with a SMILES column); with --dataset NAME, a local copy "
                            "of that MoleculeNet dataset", "data", metavar="FILE")
    dataset: str | None = flag(None, "a MoleculeNet dataset (bbbp, tox21, sider, clintox, esol, lipophilicity, bace, "
                               "freesolv, qm7, qm8) or demo (default); downloaded when not cached", "data",
                               metavar="NAME")
    smiles_column: str | None = flag(None, "the column holding SMILES (default: inferred)", "data", metavar="COL")
    targets: tuple[str, ...] | None = flag(None, "label columns (default: inferred)", "data", metavar="A,B",
                                           parse=_comma_list)
    task: str | None = flag(None, "classification or regression (default: inferred)", "data", choices=TASKS)
    max_atoms: int = flag(100, "skip larger molecules", "data")
    duplicates: str = flag("keep", "a molecule in several rows (same canonical SMILES): keep every copy (reported), "
                           "or keep the first copy only (copies with conflicting labels are all skipped)", "data",
                           choices=DUPLICATE_POLICIES)
    split: str = flag("random", "random (seeded by --seed) or scaffold split", "data", choices=SPLITS)
    workers: int = flag(1, "processes that featurize the dataset in parallel (a cached dataset needs none)", "data",
                        metavar="N")
    split_sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    # optimization
    optimizer: str = flag("graphsam", "the optimizer's registry name (the list below)", "optimization",
                          metavar="NAME")
    optimizer_settings: Any = None
    rho_schedule: StepRhoConfig | None = None
    base_optimizer: str = flag("adam", "the base step of every method; for --optimizer adam, the optimizer itself",
                               "optimization", choices=tuple(BASE_OPTIMIZERS))
    lr: float = flag(1e-3, "learning rate of the base optimizer", "optimization")
    weight_decay: float = flag(0.0, "weight decay of the base optimizer", "optimization")
    lr_schedule: str = flag("constant", "noam: linear warm-up, then 1/sqrt(step) decay (stepped every optimizer step)",
                            "optimization", choices=LR_SCHEDULES)
    warmup_epochs: float = flag(2.0, "Noam warm-up length in epochs", "optimization")
    epochs: int = flag(4, "epochs to train; with --resume, extend the run to N",
                       "optimization")
    batch_size: int = flag(32, "the global batch, split over torchrun ranks", "optimization")
    bucket_batches: int | None = flag(None, "batches of molecules of similar size: every K consecutive batches of the "
                                      "epoch's random order are sorted by atom count and cut again, and the batches "
                                      "shuffled (less padding; a different, equally random SGD trajectory)",
                                      "optimization", metavar="K")
    early_stopping: int | None = flag(None, "stop after N epochs without a better validation metric",
                                      "optimization", metavar="N")
    # model and data handling
    recipe: str | None = flag(None, "a released training recipe that sets the model, epochs, batch size, Noam "
                              "warm-up and peak learning rate, early stopping and weight decay for --dataset; "
                              "flags you give win (compt-paper: CoMPT as the GraphSAM paper ran it; docs/models.md)",
                              "model, device, output", choices=recipe_names())
    model: str = flag("small", "the model: tiny, small, gt-large (gradscope's graph transformer; gt-large was "
                      "called compt before), compt (the faithful CoMPT of Chen et al. 2021, sized per dataset as "
                      "released), compt-tiny (docs/models.md)", "model, device, output", choices=model_names())
    pack_atoms: bool = flag(False, "run the model's per-atom layers on real atoms only, not on padding (same "
                            "outputs and gradients to float rounding, faster on random batches; docs/models.md)",
                            "model, device, output")
    seed: int = flag(0, "seed of the split, the initialisation and the epochs' batch orders",
                     "model, device, output")
    device: str = flag("auto", "auto (CUDA when present), cpu, cuda, cuda:N", "model, device, output")
    precision: str = flag("fp32", "bf16 or fp16: forward passes under autocast (CPU and GPU); weights and optimizer "
                          "stay fp32; fp16 scales the loss with torch.amp.GradScaler and skips steps with inf/NaN "
                          "gradients", "model, device, output", choices=PRECISIONS)
    threads: int | None = flag(None, "CPU threads for torch (default: 1 for the tiny and small models, torch's "
                               "default for the others)", "model, device, output", metavar="N")
    # recording (the Recorder's settings; see recorder_settings)
    layers: bool = flag(False, "also record per-tensor ‖ε‖ and ‖ω‖", "recording")
    probe_exact_every: int | None = flag(None, "every M steps compare ε with the exact gradient (one extra pass; "
                                         "not for adam, not under torchrun)", "recording", metavar="M")
    save_vectors_every: int | None = flag(None, "store full ε_t and ω_t every K steps (the trace's vectors group)",
                                          "recording", metavar="K")
    flush_every: int = flag(64, "steps between trace writes", "recording")
    tensorboard: str | None = flag(None, "also write the recorded scalars as TensorBoard events into DIR, at every "
                                   "trace flush (pip install 'gradscope[tensorboard]')", "recording", metavar="DIR")

    def __post_init__(self) -> None:
        method = get_method(self.optimizer)
        object.__setattr__(self, "optimizer", method.name)
        object.__setattr__(self, "optimizer_settings", method.make_settings(self.optimizer_settings))
        object.__setattr__(self, "rho_schedule", method.make_schedule(self.rho_schedule))
        self._check_choices()
        self._check_numbers()
        if method.plain and self.probe_exact_every is not None:
            raise ConfigError(f"--probe-exact-every does not apply to optimizer {method.name!r} "
                              "(a plain optimizer has no ε to compare with the exact gradient)")
        try:
            RecorderSettings(**recorder_settings(self))
        except ConfigError as exc:  # name the flag, not the Recorder's keyword
            word = str(exc).split(" ", 1)[0]
            raise ConfigError(f"--{RECORDER_NAMES.get(word, word).replace('_', '-')} {str(exc).split(' ', 1)[1]}") \
                from None

    def _check_choices(self) -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise ConfigError(f"unknown {f.name.replace('_', '-')} {value!r}; choose from {', '.join(choices)}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")

    def _check_numbers(self) -> None:
        positive = {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size, "max_atoms": self.max_atoms}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value!r}")
        for name in ("early_stopping", "threads", "bucket_batches", "workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if len(self.split_sizes) != 3 or abs(sum(self.split_sizes) - 1.0) > 1e-6 or min(self.split_sizes) <= 0:
            raise ConfigError(f"split sizes must be three positive fractions summing to 1, got {self.split_sizes!r}")

    # -- (de)serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("targets", "split_sizes"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RecordConfig":
        """A configuration from ``to_dict`` output, or from a config.json / checkpoint of an older version."""
        data = dict(data)
        if any(key in data for key in (*FLAT_OPTIMIZER_KEYS, "extra")):
            data = from_flat_keys(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        for key in ("targets", "split_sizes"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, **changes: Any) -> "RecordConfig":
        return dataclasses.replace(self, **changes)


def from_flat_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A configuration of the layout written before the optimizer registry, in today's layout.

    Those kept every optimizer setting as a flat key, whether the optimizer used it or not (the
    run ignored the others, and so does this), and an ``extra`` dict that nothing read
    (dropped). Each flat key was the name of its flag, so it is read as that flag. Their
    ``sam-one`` anchored every epoch: it reads as ``sam-one-epoch`` (``Method.former_names``), and
    their ``compt`` model was the graph-transformer preset now called ``gt-large`` (``compt`` is now
    the faithful CoMPT).
    """
    data = dict(data)
    data.pop("extra", None)
    if data.get("model") == "compt":
        data["model"] = "gt-large"
    flat = {key: data.pop(key) for key in FLAT_OPTIMIZER_KEYS if key in data}
    if "optimizer_settings" in data or "rho_schedule" in data:
        raise ConfigError("a configuration holds both the flat optimizer keys of older versions "
                          f"({', '.join(sorted(flat))}) and optimizer_settings; keep one")
    method = method_by_former_name(data.get("optimizer", RecordConfig.optimizer))
    given = {"--" + key.replace("_", "-"): value for key, value in flat.items()}
    settings, schedule = method.split_flags(given, ignore_others=True)
    data.update(optimizer=method.name, optimizer_settings=settings, rho_schedule=schedule or None)
    return data


def recorder_settings(config: RecordConfig) -> dict[str, Any]:
    """The :class:`~gradscope.probes.Recorder` keywords of a run's recording settings.

    The one place where a run setting changes its name on the way down: the run's
    ``save_vectors_every`` (``--save-vectors-every``) is the Recorder's ``vectors_every``
    (:data:`RECORDER_NAMES`). Validated once, by :class:`~gradscope.probes.settings.RecorderSettings`.
    """
    names = ("flush_every", "layers", "probe_exact_every", "vectors_every")
    return {name: getattr(config, RECORDER_NAMES.get(name, name)) for name in names}


def cli_fields() -> tuple[dataclasses.Field, ...]:
    """The RecordConfig fields that are `gradscope record` flags (those with a help text)."""
    return tuple(f for f in fields(RecordConfig) if "help" in f.metadata)

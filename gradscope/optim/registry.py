"""The optimizer registry: every method declares itself once, in its own module.

A :class:`Method` holds what `gradscope record`, the training loop, the study and the analyses
need to know about an optimizer, so that none of them names a method:

- ``name`` (the CLI spelling, ``"graphsam-released"``) and ``display_name`` (``"GraphSAM (released
  code)"``, for tables and plots);
- the optimizer class and its *settings*: a frozen dataclass of hyperparameters with their
  defaults and validation. Each field becomes a ``gradscope record`` flag (``--field-name``, or the
  name the declaration's ``flags`` gives), its meaning comes from ``help`` (or the field's
  ``metadata["help"]``), the allowed values of a text setting from ``choices``;
- what it needs at epoch boundaries: ``anchor`` (``"none"``: the method decides where ε is exact;
  ``"epochs"``: ``anchor()`` at the first step of every K-th epoch, K the settings'
  ``anchor_every_epochs``, 1 when absent; ``"once"``: only the run's first step), ``rho_schedule``
  (ρ follows :class:`~gradscope.optim.schedules.StepRho` over epochs) and ``epoch_step``
  (``optimizer.epoch_step(epoch)`` at every epoch start, the released GraphSAM's own schedule);
- what the run supplies (``from_run``: AE-SAM's ``total_steps``);
- ``former_names``: names under which configurations written before the registry (flat keys
  ``rho``, ``beta``, ...) stored this method, when its name then meant it (``sam-one-epoch``
  was ``sam-one``).

Built-in methods register at the end of their module (``gradscope.optim.sam`` ...), which
``gradscope.optim`` imports; the listing order is that import order. Other packages join through
the entry-point group ``gradscope.optimizers`` (each entry point names a :class:`Method`, a list
of them, a function returning them, or a module that calls :func:`register`), read lazily the
first time a name is not found or all names are listed. docs/optimizers.md has a worked example.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import re
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, Callable, Iterable, Literal

import torch

from gradscope.errors import ConfigError
from gradscope.optim.checks import check_positive_int
from gradscope.optim.core import SharpnessAware, resolve_base_optimizer
from gradscope.optim.schedules import StepRho, StepRhoConfig

#: The entry-point group third-party optimizers register under.
ENTRY_POINT_GROUP = "gradscope.optimizers"

AnchorPolicy = Literal["none", "epochs", "once"]
ANCHOR_POLICIES: tuple[str, ...] = ("none", "epochs", "once")

#: Meanings shared by several methods' settings (a declaration's ``help`` overrides them).
COMMON_HELP: dict[str, str] = {
    "rho": "radius ρ of the ascent step: θ + ε̂ with ‖ε̂‖₂ = ρ (global norm)",
}

#: Where the ρ schedule's settings go in a run configuration (the method's own go to ``optimizer_settings``).
SETTINGS_GROUP, SCHEDULE_GROUP = "optimizer_settings", "rho_schedule"


@dataclass(frozen=True)
class RunInfo:
    """What a training run tells a method at construction (for ``Method.from_run``)."""

    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass(frozen=True)
class AnchorPeriod:
    """Settings mixin of methods anchored every K epochs (GraphSAM-K, SAM-One per epoch).

    K counts *epochs*: the exact ε is computed at the first step of epochs 0, K, 2K, ...
    (SAM-k's ``k`` and ``ReusedPerturbation.anchor_every_steps`` count optimizer steps instead).
    """

    anchor_every_epochs: int = field(default=1, metadata={
        "help": "K: exact ε (an anchor) at the first step of every K-th epoch, epochs 0, K, 2K, ... "
                "(GraphSAM-K for K > 1)",
        "deprecated_flags": ("--anchor-every",),
    })

    def check_anchor_period(self) -> None:
        check_positive_int("anchor_every_epochs", self.anchor_every_epochs)


@dataclass(frozen=True)
class Option:
    """One setting as `gradscope record` shows it: ``--flag`` stores ``group.field``."""

    field: str
    flag: str
    type: type
    default: Any
    help: str
    group: str
    deprecated_flags: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        """The argparse destination of the flag (``--rho-step`` → ``rho_step``)."""
        return flag_dest(self.flag)


def flag_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True, eq=False)
class Method:
    """One optimizer as gradscope runs it (see the module docstring for every field)."""

    name: str
    display_name: str
    summary: str
    settings: type
    optimizer: type[torch.optim.Optimizer] | None = None
    anchor: AnchorPolicy = "none"
    rho_schedule: bool = False
    epoch_step: bool = False
    help: Mapping[str, str] = field(default_factory=dict)
    flags: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    from_run: Mapping[str, Callable[[RunInfo], Any]] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    former_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name or ""):
            raise ConfigError(f"optimizer name {self.name!r}: use lower-case letters, digits and '-'")
        if not (isinstance(self.settings, type) and is_dataclass(self.settings)):
            raise ConfigError(f"optimizer {self.name!r}: settings must be a dataclass type")
        if self.anchor not in ANCHOR_POLICIES:
            raise ConfigError(f"optimizer {self.name!r}: anchor must be one of {', '.join(ANCHOR_POLICIES)}")
        if self.optimizer is not None and not (isinstance(self.optimizer, type)
                                               and issubclass(self.optimizer, SharpnessAware)):
            raise ConfigError(f"optimizer {self.name!r}: the class must subclass gradscope.optim.SharpnessAware "
                              "(the StepInfo contract the recorder reads); plain torch optimizers use optimizer=None")
        if self.epoch_step and not callable(getattr(self.optimizer, "epoch_step", None)):
            raise ConfigError(f"optimizer {self.name!r}: epoch_step=True needs an optimizer with epoch_step(epoch)")
        known = {f.name for f in fields(self.settings)}
        for table in ("help", "flags", "choices", "from_run", "hidden"):
            stray = set(getattr(self, table)) - known
            if stray:
                raise ConfigError(f"optimizer {self.name!r}: {table} names unknown settings {sorted(stray)}")

    @property
    def plain(self) -> bool:
        """True for a plain torch optimizer (the base optimizer itself: no ε, no closure needed)."""
        return self.optimizer is None

    # -- settings -------------------------------------------------------------------------------
    def options(self) -> tuple[Option, ...]:
        """The settings `gradscope record` shows for this method: its own, then the ρ schedule's."""
        own = [_option(f, self.settings, SETTINGS_GROUP, self.help, self.flags, self.choices)
               for f in fields(self.settings) if f.name not in self.hidden and f.name not in self.from_run]
        if self.rho_schedule:
            own += [_option(f, StepRhoConfig, SCHEDULE_GROUP, {}, {}, {}) for f in fields(StepRhoConfig)]
        return tuple(own)

    def split_flags(self, given: Mapping[str, Any], *, ignore_others: bool = False) -> tuple[dict, dict]:
        """Values by flag (``{"--rho": 0.1}``; None: not given) as (settings, ρ schedule) values.

        A flag this method does not use is an error naming the methods that do; with
        ``ignore_others`` it is skipped (configurations of older versions stored every setting).
        Deprecated spellings (``--anchor-every``) count as their setting's flag.
        """
        by_flag: dict[str, Option] = {}
        for option in self.options():
            by_flag.update({flag: option for flag in (option.flag, *option.deprecated_flags)})
        settings: dict[str, Any] = {}
        schedule: dict[str, Any] = {}
        for flag, value in given.items():
            option = by_flag.get(flag)
            if value is None or (option is None and ignore_others):
                continue
            if option is None:
                _refuse(self, [flag])
            (settings if option.group == SETTINGS_GROUP else schedule)[option.field] = value
        return settings, schedule

    def make_settings(self, values: Any = None) -> Any:
        """The method's settings from ``None`` (defaults), a mapping field → value, or an instance.

        Errors name the ``gradscope record`` flags (``--beta must lie in [0, 1), got 1.0``).
        """
        return _make(self.settings, values, self, SETTINGS_GROUP)

    def make_schedule(self, values: Any = None) -> StepRhoConfig | None:
        """The ρ schedule's settings (``None`` for a method without one; given values are then an error)."""
        if not self.rho_schedule:
            if values:  # a schedule given to a method without one
                names = list(values) if isinstance(values, Mapping) else [f.name for f in fields(StepRhoConfig)]
                _refuse(self, [_flag_of(StepRhoConfig, names[0], {})])
            return None
        return _make(StepRhoConfig, values, self, SCHEDULE_GROUP)

    # -- construction and epoch hooks ------------------------------------------------------------
    def build(self, params: Iterable[Any], settings: Any = None, *, base: str | type[torch.optim.Optimizer] = "adam",
              run: RunInfo | None = None, **base_kwargs: Any) -> torch.optim.Optimizer:
        """The optimizer over ``params`` with these settings on the base optimizer ``base``.

        Settings the class's constructor names are passed to it (the others, like
        ``anchor_every_epochs``, are the epoch hooks'); ``from_run`` fills those left ``None``.
        """
        base_cls = resolve_base_optimizer(base)
        if self.optimizer is None:
            return base_cls(params, **base_kwargs)
        settings = self.make_settings(settings)
        accepted = _named_parameters(self.optimizer)
        kwargs = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name in accepted}
        for name, supply in self.from_run.items():
            if kwargs.get(name) is None and run is not None:
                kwargs[name] = supply(run)
        return self.optimizer(params, base_cls, **kwargs, **base_kwargs)

    def build_rho_schedule(self, optimizer: torch.optim.Optimizer, schedule: StepRhoConfig | None) -> StepRho | None:
        """The ρ schedule stepped at every epoch end, or None when the method has none."""
        if not self.rho_schedule:
            return None
        schedule = schedule or StepRhoConfig()
        return StepRho(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)  # type: ignore[arg-type]

    def anchors_at(self, settings: Any, epoch: int) -> bool:
        """Whether the start of ``epoch`` anchors the optimizer (its next step computes ε exactly)."""
        if self.epoch_step:
            return True  # epoch_step anchors
        if self.anchor == "epochs":
            return epoch % getattr(settings, "anchor_every_epochs", 1) == 0
        return False  # "once": the first step anchors by itself; "none": the method decides

    def start_epoch(self, optimizer: torch.optim.Optimizer, settings: Any, epoch: int) -> None:
        """The epoch-start hook the training loop calls before the first step of ``epoch``."""
        if self.epoch_step:
            optimizer.epoch_step(epoch)  # type: ignore[attr-defined]
        elif self.anchors_at(settings, epoch):
            optimizer.anchor()  # type: ignore[attr-defined]


# -- the registry -----------------------------------------------------------------------------------
_METHODS: dict[str, Method] = {}
_entry_points_read = False


def register(method: Method) -> Method:
    """Add ``method`` to the registry (a second, different method of the same name is an error)."""
    if not isinstance(method, Method):
        raise ConfigError(f"register() takes a gradscope.optim.registry.Method, got {type(method).__name__}")
    old = _METHODS.get(method.name)
    if old is not None and old is not method:
        raise ConfigError(f"optimizer {method.name!r} is already registered ({old.display_name})")
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a registered method (for tests and plugin development)."""
    _METHODS.pop(name, None)


def get_method(name: str) -> Method:
    """The method registered as ``name`` (case-insensitive); unknown names list the known ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _METHODS:
        load_entry_points()
    try:
        return _METHODS[key]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown optimizer {name!r}; known: {', '.join(method_names())}") from None


def method_by_former_name(name: str) -> Method:
    """The method a configuration written before the registry meant by ``name`` (see ``former_names``)."""
    for method in methods():
        if name in method.former_names:
            return method
    return get_method(name)


def methods() -> tuple[Method, ...]:
    """Every registered method, built-in ones first in their declared order."""
    load_entry_points()
    return tuple(_METHODS.values())


def method_names() -> tuple[str, ...]:
    return tuple(m.name for m in methods())


def display_name(name: str) -> str:
    """The display name of a registered method, or ``name`` itself when it is not registered."""
    try:
        return get_method(name).display_name
    except ConfigError:
        return name


def load_entry_points(*, force: bool = False) -> None:
    """Register the methods of the ``gradscope.optimizers`` entry points (once; again with ``force``).

    A plugin that fails to load, or whose name is taken, is skipped with a warning: a broken
    third-party package never breaks gradscope.
    """
    global _entry_points_read
    if _entry_points_read and not force:
        return
    _entry_points_read = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            for method in _methods_of(ep.load()):
                if method.name in _METHODS and _METHODS[method.name] is not method:
                    warnings.warn(f"optimizer plugin {ep.name!r}: the name {method.name!r} is taken; skipped",
                                  stacklevel=2)
                    continue
                register(method)
        except Exception as exc:  # a third-party import or declaration error
            warnings.warn(f"optimizer plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)


def _methods_of(obj: Any) -> list[Method]:
    if isinstance(obj, Method):
        return [obj]
    if isinstance(obj, types.ModuleType):
        return []  # importing it registered its methods
    if callable(obj) and not isinstance(obj, type):
        obj = obj()
    items = [obj] if isinstance(obj, Method) else list(obj or [])
    bad = [type(m).__name__ for m in items if not isinstance(m, Method)]
    if bad:
        raise ConfigError(f"expected Method objects, got {', '.join(bad)}")
    return items


# -- the older name → class view and constructor -------------------------------------------------------
class _SharpnessAwareClasses(Mapping[str, type]):
    """name → class of every registered sharpness-aware method (plain torch optimizers left out)."""

    def _view(self) -> dict[str, type]:
        return {m.name: m.optimizer for m in methods()
                if m.optimizer is not None and issubclass(m.optimizer, SharpnessAware)}

    def __getitem__(self, name: str) -> type:
        return self._view()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __repr__(self) -> str:
        return f"OPTIMIZERS({self._view()!r})"


#: name → class of every sharpness-aware optimizer (a live view of the registry).
OPTIMIZERS: Mapping[str, type] = _SharpnessAwareClasses()


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The class registered under ``name`` (case-insensitive)."""
    method = get_method(name)
    if method.optimizer is None:
        raise ConfigError(f"{method.name!r} is the plain base optimizer; use resolve_base_optimizer(base)")
    return method.optimizer


def make_optimizer(
    name: str,
    params: Iterable[Any],
    base: str | type[torch.optim.Optimizer] = "adam",
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` over ``params`` on the base optimizer ``base``.

    ``base`` is "adam", "adamw", "sgd" or a torch optimizer class; ``kwargs`` mix the method's
    hyperparameters (``rho``, ``beta``, ``k``, ...) and the base optimizer's (``lr``, ...).
    For a plain method (``"adam"``) the result is the base optimizer itself.
    """
    method = get_method(name)
    base_cls = resolve_base_optimizer(base)
    if method.optimizer is None:
        return base_cls(params, **kwargs)
    return method.optimizer(params, base_cls, **kwargs)


# -- helpers ------------------------------------------------------------------------------------------
def _named_parameters(cls: type) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in inspect.signature(cls).parameters.values() if p.kind in kinds}


def _flag_of(settings: type, name: str, flags: Mapping[str, str]) -> str:
    meta = next((f.metadata for f in fields(settings) if f.name == name), {})
    return flags.get(name) or meta.get("flag") or "--" + name.replace("_", "-")


def _option(f: Field, settings: type, group: str, help: Mapping[str, str], flags: Mapping[str, str],
            choices: Mapping[str, tuple[str, ...]]) -> Option:
    hint = typing.get_type_hints(settings)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if hint not in (bool, int, float, str):
        raise ConfigError(f"setting {settings.__name__}.{f.name} has type {hint!r}, which a command-line flag "
                          "cannot give; hide it (Method.hidden) or supply it from the run (Method.from_run)")
    default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING
                                                          else None)  # type: ignore[misc]
    text = help.get(f.name) or f.metadata.get("help") or COMMON_HELP.get(f.name, "")
    return Option(f.name, _flag_of(settings, f.name, flags), hint, default, text, group,
                  tuple(f.metadata.get("deprecated_flags", ())), choices.get(f.name) or f.metadata.get("choices"))


def _make(cls: type, values: Any, method: Method, group: str) -> Any:
    if isinstance(values, cls):
        return values
    if values is None:
        values = {}
    if is_dataclass(values) and not isinstance(values, type):
        raise ConfigError(f"optimizer {method.name!r} takes {cls.__name__} settings, got {type(values).__name__}")
    if not isinstance(values, Mapping):
        raise ConfigError(f"{group} of optimizer {method.name!r} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = [name for name in values if name not in known]
    if unknown:
        _refuse(method, ["--" + str(name).replace("_", "-") for name in unknown])
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(_as_flags(str(exc), cls, method.flags)) from None


def _refuse(method: Method, flags: list[str]) -> None:
    flag = flags[0]
    users = [m.name for m in methods() if any(o.flag == flag or flag in o.deprecated_flags for o in m.options())]
    where = f" (it is for: {', '.join(users)})" if users else ""
    raise ConfigError(f"{flag} does not apply to optimizer {method.name!r}{where}")


def _as_flags(message: str, cls: type, flags: Mapping[str, str]) -> str:
    """A settings error names the field first (``beta must ...``): name its flag instead."""
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", message)
    if match and match.group(0) in {f.name for f in fields(cls)}:
        return _flag_of(cls, match.group(0), flags) + message[match.end():]
    return message

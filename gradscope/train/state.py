"""Where a recorded run stands, as typed values: the position, the unfinished epoch's sums, the best epoch.

:class:`RunState` is what a checkpoint adds to the model and optimizer state so that a run can
continue exactly: the next epoch and batch, the steps taken, the sums of the unfinished epoch
(:class:`EpochSums`), the best validation epoch so far (:class:`BestEpoch`) and the rows of the
finished epochs. ``to_dict``/``from_dict`` give the plain containers a checkpoint stores
(``torch.load(..., weights_only=True)`` reads them); the keys are those checkpoints have always had.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EpochSums:
    """Sums over the finished steps of the current epoch (a mid-epoch checkpoint keeps them).

    ``loss_sum`` is Σ loss·batch size in float64, continued in the same order after a resume so
    that the epoch's training loss is bit-equal to an uninterrupted run's.
    """

    loss_sum: float = 0.0
    seen: int = 0
    elapsed: float = 0.0
    grad_evals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpochSums":
        return cls(float(data["loss_sum"]), int(data["seen"]), float(data["elapsed"]), int(data["grad_evals"]))


@dataclass
class BestEpoch:
    """The best validation epoch so far and the epochs since (for ``--early-stopping``)."""

    epoch: int | None = None
    value: float | None = None
    bad_epochs: int = 0

    def update(self, epoch: int, value: float, higher_is_better: bool) -> bool:
        """Account for a finished epoch's validation metric; True when it is the new best.

        NaN (e.g. AUC of a one-class validation split) is never better than a number, but is not a
        bad epoch either; a first epoch with NaN becomes the best until a number arrives.
        """
        if math.isnan(value):
            return self.epoch is None and self._set(epoch, value)
        old = self.value
        if old is None or math.isnan(old) or (value > old if higher_is_better else value < old):
            return self._set(epoch, value)
        self.bad_epochs += 1
        return False

    def _set(self, epoch: int, value: float) -> bool:
        self.epoch, self.value, self.bad_epochs = int(epoch), float(value), 0
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BestEpoch":
        epoch, value = data.get("epoch"), data.get("value")
        return cls(None if epoch is None else int(epoch), None if value is None else float(value),
                   int(data.get("bad_epochs", 0)))


@dataclass
class RunState:
    """The position of a run (training continues at ``epoch``, batch ``batch``) and its bookkeeping."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    sums: EpochSums = field(default_factory=EpochSums)
    best: BestEpoch = field(default_factory=BestEpoch)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint keys: ``epoch``, ``batch``, ``step``, ``partial``, ``best``, ``history``."""
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step, "partial": self.sums.to_dict(),
                "best": self.best.to_dict(), "history": [dict(row) for row in self.history]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunState":
        return cls(int(data["epoch"]), int(data["batch"]), int(data["step"]), EpochSums.from_dict(data["partial"]),
                   BestEpoch.from_dict(data["best"]), [dict(row) for row in data.get("history", [])])

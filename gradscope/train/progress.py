"""What `gradscope record` shows while it runs: a bar per epoch, log lines, a summary table.

On a terminal each epoch gets a tqdm bar that ends with the epoch's loss, metric and
throughput; elsewhere (CI logs, files, ``--quiet`` off) one plain line per epoch. Nothing here
reads device tensors during an epoch, so the display never stalls the training step.
"""
from __future__ import annotations

import math
import sys
from typing import Any

from tqdm.auto import tqdm


class EpochProgress:
    """A per-epoch progress bar (or nothing when disabled)."""

    def __init__(self, epoch: int, epochs: int, total: int, start: int, *, enabled: bool) -> None:
        self.epoch, self.epochs = epoch, epochs
        self._bar = None
        if enabled:
            self._bar = tqdm(total=total, initial=start, desc=f"epoch {epoch + 1}/{epochs}", unit="step",
                             leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def describe(self, row: dict[str, Any], metric: str) -> str:
        """The log line of a finished epoch."""
        return (f"epoch {self.epoch + 1}/{self.epochs}  train_loss {_fmt(row['train_loss'])}  "
                f"val_loss {_fmt(row['val_loss'])}  val_{metric} {_fmt(row[f'val_{metric}'])}  "
                f"test_{metric} {_fmt(row[f'test_{metric}'])}  entropy {_fmt(row['attention_entropy'])}  "
                f"{_fmt(row['graphs_per_s'], 1)} graphs/s  {row['grad_evals']} passes")


def summary_table(history: list[dict[str, Any]], metric: str, best_epoch: int | None, *,
                  best_by: str | None = None) -> str:
    """A fixed-width table of every epoch, the best one marked with '*' (chosen by ``best_by``,
    default the validation metric)."""
    cols = ["epoch", "train_loss", "val_loss", f"val_{metric}", f"test_{metric}", "attention_entropy",
            "graphs_per_s", "grad_evals"]
    heads = ["epoch", "train loss", "val loss", f"val {metric}", f"test {metric}", "entropy", "graphs/s", "passes"]
    rows = []
    for h in history:
        cells = [f"{int(h['epoch']) + 1}{'*' if h['epoch'] == best_epoch else ''}"]
        cells += [_fmt(h[c], 1 if c == "graphs_per_s" else 4) if c != "grad_evals" else str(h[c]) for c in cols[1:]]
        rows.append(cells)
    widths = [max(len(heads[i]), *(len(r[i]) for r in rows)) for i in range(len(cols))]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [line(heads), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if best_epoch is not None:
        out.append(f"(* best {best_by or 'validation ' + metric}: epoch {best_epoch + 1})")
    return "\n".join(out)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    value = float(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"

"""Attention heat map of one molecule (GraphSAM paper, Wang et al., ICLR 2024, Fig. 10 context).

The entropy numbers summarise how spread out attention is; the heat map shows it for one
molecule: row i is the attention distribution of atom i over the atoms of the molecule, at one
layer and head (or averaged over heads). Unlike the other analyses this one needs a model and
a batch: it runs one forward pass in eval mode under ``no_grad`` inside an attention-capture
context — by default :func:`gradscope.models.capture_attention`, which yields the per-layer
attention probabilities ``[B, H, L, L]`` and the atom mask ``[B, L]`` (True = real atom).

For a recorded run, :func:`checkpoint_attention` rebuilds the model and the exact data split
from a checkpoint (``gradscope record``'s ``DIR/checkpoints/best.pt``) and picks one molecule of
a split; ``gradscope plot attention RUN`` and the report draw it.
"""
from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from gradscope.errors import GradscopeError
from gradscope.models import AttentionCapture, capture_attention

Capture = Callable[[torch.nn.Module], AbstractContextManager[AttentionCapture]]
"""``capture(model)``: a context manager yielding the :class:`~gradscope.models.AttentionCapture`
that the model's attention layers fill during a forward pass (default: ``capture_attention``)."""


def _last_call(captured: AttentionCapture) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The per-layer ``[B, H, L, L]`` maps and the ``[B, L]`` mask of the last forward call.

    The one place where a capture becomes plain tensors: the capture holds every call's maps
    (layer order within each call) and masks (True = real atom).
    """
    if not isinstance(captured, AttentionCapture):
        raise GradscopeError(f"the attention capture must yield a gradscope.models.AttentionCapture, "
                             f"got {type(captured).__name__}")
    calls = captured.per_call()
    if not calls or not calls[-1]:
        raise GradscopeError("the model captured no attention (does it have attention layers?)")
    return calls[-1], captured.mask


def attention_matrix(
    model: torch.nn.Module,
    batch: Any,
    *,
    molecule: int = 0,
    layer: int = -1,
    head: int | None = None,
    capture: Capture | None = None,
    forward: Callable[[torch.nn.Module, Any], Any] | None = None,
) -> np.ndarray:
    """The ``[n_atoms, n_atoms]`` attention of one molecule at one layer (one head, or the head mean).

    Padding rows and columns (mask False) are cut off. The model is put in eval mode for the
    pass and restored to its previous mode afterwards.
    """
    return _attention(model, batch, molecule, layer, head, capture, forward)[0]


def _attention(model: torch.nn.Module, batch: Any, molecule: int, layer: int, head: int | None,
               capture: Capture | None, forward: Callable[[torch.nn.Module, Any], Any] | None) -> tuple[np.ndarray, int]:
    """:func:`attention_matrix` and the number of attention layers of the model."""
    capture = capture or capture_attention
    forward = forward or (lambda m, b: m(b))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture(model) as captured:
            forward(model, batch)
            maps, mask = _last_call(captured)  # read inside: a capture may clear its list on exit
    finally:
        model.train(was_training)
    if not -len(maps) <= layer < len(maps):
        raise GradscopeError(f"layer {layer} out of range: the model has {len(maps)} attention layers")
    probs = maps[layer].detach().float().cpu()
    if probs.ndim != 4:
        raise GradscopeError(f"attention maps must be [B, H, L, L], got shape {tuple(probs.shape)}")
    if not 0 <= molecule < probs.shape[0]:
        raise GradscopeError(f"molecule {molecule} out of range: the batch holds {probs.shape[0]}")
    per_head = probs[molecule]
    if head is None:
        matrix = per_head.mean(dim=0)
    elif 0 <= head < per_head.shape[0]:
        matrix = per_head[head]
    else:
        raise GradscopeError(f"head {head} out of range: the layer has {per_head.shape[0]} heads")
    keep = mask[molecule].detach().cpu().bool()
    matrix = matrix[keep][:, keep]
    return matrix.numpy().astype(np.float64), len(maps)


def heatmap_figure(matrix: np.ndarray, atom_labels: Sequence[str] | None = None, title: str = "",
                   ax: Axes | None = None) -> Figure:
    """Draw an attention matrix (rows: attending atom, columns: attended atom) with matplotlib."""
    n = matrix.shape[0]
    if atom_labels is not None and len(atom_labels) != n:
        raise GradscopeError(f"{len(atom_labels)} atom labels given for a molecule of {n} atoms")
    fig, (axis,) = plotting.mpl_axes(ax, 1, width=5.0, height=4.8)
    image = axis.imshow(matrix, cmap="viridis", vmin=0.0, interpolation="nearest")
    fig.colorbar(image, ax=axis, label="attention probability")
    names = list(atom_labels) if atom_labels is not None else [str(i) for i in range(n)]
    axis.set_xticks(range(n), names, rotation=90, fontsize="small")
    axis.set_yticks(range(n), names, fontsize="small")
    axis.set_xlabel("attended atom")
    axis.set_ylabel("attending atom")
    text = _wrap(title)
    if ax is None:  # over the map and its colour bar, in the space the layout keeps for it
        fig.suptitle(text, fontsize="medium")
    else:
        axis.set_title(text, fontsize="medium")
    return fig


def _wrap(title: str, width: int = 56) -> str:
    """Each line of ``title`` wrapped at ``width`` characters (a SMILES has no spaces: cut anywhere)."""
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines()) if title else ""


def layer_text(layer: int, n_layers: int) -> str:
    """``layer 1 (the last of 2)``: the layer counted from 0, never a negative index."""
    resolved = layer % n_layers
    return f"layer {resolved} (the last of {n_layers})" if resolved == n_layers - 1 else f"layer {resolved} of {n_layers}"


def heatmap_plotly(matrix: np.ndarray, atom_labels: Sequence[str] | None = None, title: str = "") -> Any:
    """Interactive (plotly) :func:`heatmap_figure`."""
    import plotly.graph_objects as go

    n = matrix.shape[0]
    names = list(atom_labels) if atom_labels is not None else [str(i) for i in range(n)]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Viridis", zmin=0.0,
                               colorbar=dict(title="attention")))
    fig.update_xaxes(title_text="attended atom", type="category")
    fig.update_yaxes(title_text="attending atom", type="category", autorange="reversed", scaleanchor="x")
    return plotting.plotly_layout(fig, title=title.replace("\n", "<br>"), height=480)


def _title(molecule: int | str, layer: int, n_layers: int, head: int | None) -> str:
    which = "mean over heads" if head is None else f"head {head}"
    return f"molecule {molecule}, {layer_text(layer, n_layers)}, {which}"


def attention_heatmap(
    model: torch.nn.Module,
    batch: Any,
    *,
    molecule: int = 0,
    layer: int = -1,
    head: int | None = None,
    atom_labels: Sequence[str] | None = None,
    capture: Capture | None = None,
    forward: Callable[[torch.nn.Module, Any], Any] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heat map of :func:`attention_matrix` (rows: attending atom, columns: attended atom).

    ``atom_labels`` (e.g. element symbols with indices) label the axes; ``capture`` defaults to
    :func:`gradscope.models.capture_attention` and ``forward`` to ``model(batch)``.
    """
    matrix, n_layers = _attention(model, batch, molecule, layer, head, capture, forward)
    return heatmap_figure(matrix, atom_labels, _title(molecule, layer, n_layers, head), ax)


@dataclass(frozen=True)
class CheckpointAttention:
    """The attention matrix of one molecule of a recorded run, and where it came from."""

    matrix: np.ndarray
    smiles: str
    split: str
    position: int
    dataset_index: int
    layer: int  # counted from 0 (a negative --layer is resolved)
    head: int | None
    checkpoint: str
    n_layers: int = 0

    @property
    def title(self) -> str:
        """Two lines: the SMILES, then where the molecule and the map come from."""
        which = "mean over heads" if self.head is None else f"head {self.head}"
        where = layer_text(self.layer, self.n_layers) if self.n_layers else f"layer {self.layer}"
        return f"{self.smiles}\n{self.split} #{self.position}, {where}, {which}"


def checkpoint_attention(
    source: str | os.PathLike[str],
    *,
    molecule: int = 0,
    split: str = "test",
    layer: int = -1,
    head: int | None = None,
    which: str = "best",
    data_path: str | None = None,
) -> CheckpointAttention:
    """Attention of molecule number ``molecule`` of a split, from a run directory or checkpoint.

    The model and the exact data split are rebuilt with :func:`gradscope.train.build.load_run`
    (``which``: ``best`` or ``last`` checkpoint; ``data_path`` if the dataset moved).
    """
    from gradscope.train.build import load_run as rebuild_run

    loaded = rebuild_run(source, which=which, data_path=data_path)
    if split not in loaded.data.split:
        raise GradscopeError(f"no split {split!r} in {loaded.path}; it has {', '.join(loaded.data.split)}")
    indices = loaded.data.split[split]
    if not 0 <= molecule < len(indices):
        raise GradscopeError(f"molecule {molecule} out of range: the {split} split holds {len(indices)}")
    index = int(indices[molecule])
    dataset = loaded.data.dataset
    batch = dataset.batch([index], standardizer=loaded.data.standardizer)
    matrix, n_layers = _attention(loaded.model, batch, 0, layer, head, None, None)
    return CheckpointAttention(matrix, dataset[index].smiles, split, molecule, index, layer % n_layers, head,
                               str(loaded.path), n_layers)


def attention_heatmap_from_checkpoint(source: str | os.PathLike[str], *, ax: Axes | None = None, **kwargs: Any) -> Figure:
    """:func:`checkpoint_attention` drawn as a heat map (atoms numbered in RDKit order)."""
    found = checkpoint_attention(source, **kwargs)
    return heatmap_figure(found.matrix, None, found.title, ax)

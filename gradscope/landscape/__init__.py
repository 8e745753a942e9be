"""Loss landscapes, sharpness and Hessian spectra around a parameter set.

Generic over any ``nn.Module``: give it a list of batches, ``loss_fn(outputs, batch) -> 0-d
tensor``, optionally ``metric_fn(outputs_list, batches) -> float`` and ``forward(model, batch)``.
The model is never written to (``torch.func.functional_call``); many grid points are evaluated
per batched call (``torch.func.vmap``).

Typical use::

    from gradscope.landscape import LandscapeSettings, compute_landscape, save_plots
    ls = compute_landscape(model, batches, loss_fn, LandscapeSettings(dims=2, points_x=31),
                           out_path="landscape.h5")
    save_plots(ls, "figures/")

Modules: :mod:`.directions` (filter-normalized random, from vectors, interpolation),
:mod:`.grid`, :mod:`.evaluate` (batched evaluation), :mod:`.hessian` (Hessian-vector products,
power iteration), :mod:`.spectrum` (Lanczos, trace, spectral density), :mod:`.sharpness`,
:mod:`.compute` (the one-call entry), :mod:`.io` (HDF5 file), :mod:`.plot` (every figure),
:mod:`.summary` (sharpness files), :mod:`.runs` (landscapes of recorded runs: what
``gradscope landscape`` runs), :mod:`.distributed`. The file format and plots are described in
docs/landscape.md.
"""
from __future__ import annotations

from gradscope.landscape.compute import compare_landscapes, compute_landscape
from gradscope.landscape.directions import (
    Directions,
    directions_from_vectors,
    interpolation_direction,
    normalize_directions,
    random_directions,
)
from gradscope.landscape.distributed import gather_points
from gradscope.landscape.evaluate import EvalResult, LandscapeEvaluator
from gradscope.landscape.functional import FunctionalModel, default_forward
from gradscope.landscape.grid import Grid, axis_coords, make_grid, shard
from gradscope.landscape.hessian import (
    EigenResult,
    hessian_directions,
    hessian_vector_product,
    loss_and_gradient,
    top_eigenpairs,
    top_eigenvalue,
)
from gradscope.optim.flat import FlatLayout
from gradscope.landscape.io import Landscape, LandscapeWriter, landscape_file_name, load_directions, open_landscape
from gradscope.landscape.plot import (
    comparison_figure,
    comparison_plotly,
    plot_1d,
    plot_contour,
    plot_density,
    plot_html,
    plot_surface,
    save_plots,
)
from gradscope.landscape.summary import read_sharpness, write_sharpness
from gradscope.landscape.settings import LandscapeSettings, SharpnessSettings
from gradscope.landscape.runs import RunLandscape, RunLandscapeSettings, compute_runs, write_outputs
from gradscope.landscape.sharpness import RhoSharpness, Sharpness, compare_sharpness, measure_sharpness, rho_sharpness
from gradscope.landscape.spectrum import (
    ExtremeEigenvalues,
    LanczosResult,
    SpectralDensity,
    TraceEstimate,
    extreme_eigenvalues,
    hutchinson_trace,
    lanczos,
    spectral_density,
)

#: The former name of the landscape's flat layout, which is now the optimizers' :class:`FlatLayout`.
ParamLayout = FlatLayout

__all__ = [
    "Directions",
    "EigenResult",
    "EvalResult",
    "ExtremeEigenvalues",
    "FunctionalModel",
    "Grid",
    "Landscape",
    "LandscapeEvaluator",
    "LandscapeSettings",
    "LandscapeWriter",
    "LanczosResult",
    "FlatLayout",
    "ParamLayout",
    "RhoSharpness",
    "RunLandscape",
    "RunLandscapeSettings",
    "Sharpness",
    "SharpnessSettings",
    "SpectralDensity",
    "TraceEstimate",
    "axis_coords",
    "compare_landscapes",
    "compare_sharpness",
    "comparison_figure",
    "comparison_plotly",
    "compute_landscape",
    "compute_runs",
    "default_forward",
    "directions_from_vectors",
    "extreme_eigenvalues",
    "gather_points",
    "hessian_directions",
    "hessian_vector_product",
    "hutchinson_trace",
    "interpolation_direction",
    "landscape_file_name",
    "lanczos",
    "load_directions",
    "loss_and_gradient",
    "make_grid",
    "measure_sharpness",
    "normalize_directions",
    "open_landscape",
    "plot_1d",
    "plot_contour",
    "plot_density",
    "plot_html",
    "plot_surface",
    "random_directions",
    "read_sharpness",
    "rho_sharpness",
    "save_plots",
    "shard",
    "spectral_density",
    "top_eigenpairs",
    "top_eigenvalue",
    "write_outputs",
    "write_sharpness",
]

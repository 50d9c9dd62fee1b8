"""Figures for the book: small functions, labelled axes with units, matplotlib only.

Every function takes backend arrays or host arrays (the transfer to the host happens here),
draws one figure and returns the :class:`matplotlib.figure.Figure`; nothing calls
``plt.show``. Four modules, one import::

    from microcircuit import plots
    plots.membrane_trace(...)          # cells: neurons, encoding, the cells and the circuit (ch. 2-6)
    plots.curves(...)                  # learning: updates, angles, curves, convergence (ch. 7-9)
    plots.learning_curves(results)     # results: what the full runs logged (ch. 10-12)
    plots.figure()                     # style: a detached figure, the cell types' colours
"""

from .cells import (
    circuit_diagram,
    compartment_diagram,
    encoding_raster,
    equivalence_scatter,
    error_cells,
    image,
    membrane_trace,
    rate_error_vs_T,
    rate_vs_current,
    raster,
    surrogate_curve,
)
from .learning import (
    alignment_bars,
    alignment_meter_figure,
    convergence,
    curves,
    hebbian_figure,
    update_scatter_figure,
)
from .results import (accuracy_overview, alignment_curves, depth_gaps, learning_curves, learning_curves_overview,
                      throughput)
from .style import E_MINUS_COLOR, E_PLUS_COLOR, INPUT_COLOR, P_COLOR, SMOKE_DPI, figure

__all__ = [
    "alignment_bars", "alignment_meter_figure", "circuit_diagram", "compartment_diagram", "convergence",
    "curves", "update_scatter_figure", "encoding_raster", "equivalence_scatter", "error_cells", "hebbian_figure", "image",
    "membrane_trace", "rate_error_vs_T", "rate_vs_current", "raster", "surrogate_curve",
    "accuracy_overview", "alignment_curves", "depth_gaps", "learning_curves", "learning_curves_overview", "throughput",
    "E_MINUS_COLOR", "E_PLUS_COLOR", "INPUT_COLOR", "P_COLOR", "SMOKE_DPI", "figure",
]

"""What every figure shares: a detached figure at the tier's resolution, and the colours of
the cell types (the rules' colours are in :data:`microcircuit.rules.REGISTRY`)."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..tiers import tier

SMOKE_DPI = 40  # resolution of figures in the smoke tier (the stored outputs of the notebooks)

E_PLUS_COLOR = "#d62728"  # E+ : "fire more"
E_MINUS_COLOR = "#1f77b4"  # E- : "fire less"
P_COLOR = "#2ca02c"  # pyramidal cells
INPUT_COLOR = "#7f7f7f"


def _host(a) -> np.ndarray:
    return np.asarray(to_numpy(a))


def figure(nrows: int = 1, ncols: int = 1, figsize=(6.0, 3.0), **kwargs):
    """A new ``(fig, axes)`` with constrained layout, detached from pyplot's figure list.

    The figure is closed in pyplot straight away, so a notebook shows it once (when it is
    returned) and long sweeps do not accumulate open figures. In the ``smoke`` tier figures
    are drawn at a low resolution (``SMOKE_DPI``) to keep the stored notebook outputs small.
    """
    import matplotlib.pyplot as plt

    if "dpi" not in kwargs and tier() == "smoke":
        kwargs["dpi"] = SMOKE_DPI  # CI: small stored outputs; figures are not compared
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", **kwargs)
    plt.close(fig)
    return fig, axes

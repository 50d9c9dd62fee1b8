"""Figures of learning (chapters 7-9): updates, alignment angles, curves, convergence.

Same conventions as :mod:`microcircuit.plots.cells`: each function draws one figure and
returns it; host transfers happen here.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..rules import color as rule_color
from ..rules import label as rule_label
from .style import E_MINUS_COLOR, E_PLUS_COLOR, P_COLOR, figure


def alignment_bars(angles: dict, title: str | None = None):
    """Angle between each rule's update and BP's, per layer: ``{rule: [angle per layer]}``."""
    rules = list(angles)
    n_layers = max(len(v) for v in angles.values())
    width = 0.8 / len(rules)
    fig, ax = figure(figsize=(5.5, 3.0))
    for k, rule in enumerate(rules):
        vals = np.asarray(angles[rule], dtype=float)
        ax.bar(np.arange(vals.size) + (k - (len(rules) - 1) / 2) * width, vals, width,
               label=rule, color=rule_color(rule, None))
    ax.axhline(90, color="black", lw=0.6, ls=":")
    ax.set_xticks(range(n_layers), [f"layer {i + 1}" for i in range(n_layers)])
    ax.set_ylabel("angle to BP update (degrees)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", ncols=len(rules))
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def curves(history: dict, xlabel: str = "epoch", ylabel: str = "accuracy (%)", title: str | None = None,
           x=None):
    """One line per rule: ``{rule: values per epoch}`` (e.g. test accuracy or an angle)."""
    fig, ax = figure(figsize=(5.0, 3.0))
    for rule, values in history.items():
        v = np.asarray(values, dtype=float)
        xs = np.arange(1, v.shape[0] + 1) if x is None else np.asarray(x)
        ax.plot(xs, v, marker="o", label=rule, color=rule_color(rule, None))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


# ------------------------------------------------------- Hebbian rule, equivalence (ch. 7-9)
def hebbian_figure(a: float, g: float = 0.8, r_pre=(0.9, 0.7, 0.5, 0.3, 0.1, 0.0), eta: float = 1.0):
    """One pyramidal cell ``i``: apical input ``a`` and gain ``g`` drive its E+/E- pair, whose
    difference times each presynaptic rate ``r_k`` is the update ``Delta W_ik``.

    The update is computed by the library (:func:`microcircuit.circuit.hebbian_update` on a
    one-cell layer), not re-derived here.
    """
    from .. import backend
    from ..circuit import ErrorCells, hebbian_update
    from ..layers import PyramidalLayer
    from ..neurons import LIFParameters

    r = np.asarray(r_pre, dtype=float)
    layer = PyramidalLayer((r.size,), 1, LIFParameters(), np.random.default_rng(0))
    layer.r_pre = backend.asarray(r[None, :])
    cells = ErrorCells.from_drive(backend.asarray(np.array([[g]])), backend.asarray(np.array([[a]])))
    dW, _ = hebbian_update(cells, layer)
    dW = eta * to_numpy(dW)[0]
    pos, neg = float(to_numpy(cells.pos)[0, 0]), float(to_numpy(cells.neg)[0, 0])

    fig, (ax1, ax2) = figure(1, 2, figsize=(7.0, 2.8), width_ratios=(1, 2.2))
    ax1.bar(["E+", "E−"], [pos, neg], color=[E_PLUS_COLOR, E_MINUS_COLOR])
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("error-cell rate (per step)")
    ax1.set_title(f"a = {a:+.2f}, g = {g:.2f}", fontsize="medium")
    k = np.arange(1, r.size + 1)
    colors = [E_PLUS_COLOR if v > 0 else E_MINUS_COLOR for v in dW]
    ax2.bar(k, dW, color=colors, label="ΔW_ik = η (E+ − E−) r_k")
    ax2.plot(k, r, "o", color=P_COLOR, ms=4, label="presynaptic rate r_k")
    ax2.axhline(0, color="black", lw=0.6)
    ax2.set_ylim(-1.05, 1.05)
    ax2.set_xticks(k)
    ax2.set_xlabel("presynaptic cell k")
    ax2.set_ylabel("weight change ΔW_ik (per unit η)")
    ax2.legend(fontsize="x-small", loc="lower left")
    return fig


def convergence(ns, errors: dict, title: str | None = None, T_e: int | None = None):
    """Relative error of the mean spiking-mode update after ``n`` trials, log-log, one line per
    layer (``errors = {label: values}``), with a ``1/sqrt(n)`` reference line.

    The relative error is ``||mean of n updates - exact update|| / ||exact update||``.
    """
    ns = np.asarray(ns, dtype=float)
    fig, ax = figure(figsize=(5.2, 3.4))
    first = None
    for label, vals in errors.items():
        vals = np.asarray(vals, dtype=float)
        ax.loglog(ns, vals, marker="o", ms=3, label=label)
        first = vals[0] if first is None else max(first, vals[0])
    if first is not None:
        ax.loglog(ns, first * np.sqrt(ns[0] / ns), color="black", ls="--", lw=0.8, label="∝ 1/√n")
    ax.set_xlabel("number of trials n (error phases averaged)")
    ax.set_ylabel("relative error of the mean update")
    ax.set_title(title or ("spiking error cells" + (f", T_e = {T_e} steps" if T_e else "")), fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def alignment_meter_figure(epoch: int, history: dict, first_epoch: int = 0, include_output: bool = False):
    """Angle to BP's update per rule (bars) and layer (panels) at ``epoch``.

    ``history = {rule: [[angle per plastic layer] for each epoch]}`` (degrees, as returned
    by :meth:`microcircuit.Network.alignment`), the first entry measured after
    ``first_epoch`` epochs (0: before training).
    """
    rules = list(history)
    n_layers = len(next(iter(history.values()))[0])
    shown = list(range(n_layers if include_output else max(n_layers - 1, 1)))
    fig, axes = figure(1, len(shown), figsize=(3.0 * len(shown) + 1.2, 0.45 * len(rules) + 1.3), squeeze=False,
                       sharey=True)
    for ax, k in zip(axes[0], shown):
        vals = [history[r][epoch - first_epoch][k] for r in rules]
        y = np.arange(len(rules))
        ax.barh(y, vals, color=[rule_color(r) for r in rules])
        for yi, v in zip(y, vals):
            ax.text(min(v, 150) + 3, yi, f"{v:.0f}°", va="center", fontsize="x-small")
        ax.axvline(90, color="black", lw=0.7, ls=":")
        ax.set_xlim(0, 180)
        ax.set_xticks([0, 45, 90, 135, 180])
        ax.set_xlabel("angle to BP update (degrees)")
        ax.set_title(f"layer {k + 1}" + (" (output)" if k == n_layers - 1 else ""), fontsize="medium")
        ax.set_yticks(y, [rule_label(r) for r in rules])
        ax.invert_yaxis()
    when = "before training" if epoch == 0 else f"after epoch {epoch}"
    fig.suptitle(f"{when}  (dotted: 90°, orthogonal to BP)", fontsize="medium")
    return fig


def update_scatter_figure(sample: dict, rule: str = "", epoch: int | None = None, layer_name: str = "hidden layer 1"):
    """Entries of a rule's weight update (y) against BP's update of the same weights (x).

    ``sample``: ``{"rule": entries, "bp": entries, "angle": degrees, "agree": fraction}`` as from
    :func:`microcircuit.widgets.update_sample`. Each update is divided by its largest entry, so
    that the picture shows directions, not step sizes. Points in the shaded quadrants change the
    weight the way BP would (same sign).
    """
    ours, bp = np.asarray(sample["rule"], dtype=float), np.asarray(sample["bp"], dtype=float)
    ours = ours / max(np.abs(ours).max(), 1e-30)
    bp = bp / max(np.abs(bp).max(), 1e-30)
    fig, ax = figure(figsize=(3.8, 3.4))
    ax.axhspan(0, 1.1, xmin=0.5, xmax=1.0, color=P_COLOR, alpha=0.08, lw=0)
    ax.axhspan(-1.1, 0, xmin=0.0, xmax=0.5, color=P_COLOR, alpha=0.08, lw=0)
    ax.scatter(bp, ours, s=5, alpha=0.6, color=rule_color(rule))
    ax.axhline(0, color="black", lw=0.5)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_xlabel(f"BP's update of {layer_name} (scaled)")
    ax.set_ylabel(f"{rule_label(rule)}'s update (scaled)")
    when = "" if epoch is None else ("before training: " if epoch == 0 else f"after epoch {epoch}: ")
    ax.set_title(f"{when}{sample['angle']:.0f}° to BP, {100 * sample['agree']:.0f}% same sign", fontsize="medium")
    return fig

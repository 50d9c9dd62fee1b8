"""Figures of the chapters: neurons, encoding, the cells and the circuit, learning.

Every function takes backend arrays or host arrays (the transfer to the host,
:func:`microcircuit.backend.to_numpy`, happens here), draws one figure and returns the
:class:`matplotlib.figure.Figure`. Nothing calls ``plt.show``: a notebook displays the
returned figure once, a script saves it with ``fig.savefig``.

Units. The model runs in discrete time steps; ``dt_ms`` (default 1 ms per step) converts
steps to milliseconds on time axes. Potentials and currents are in units of the firing
threshold (``theta = 1`` unless stated), rates in spikes per time step (at most 1).
"""

from __future__ import annotations

import numpy as np

from .style import E_MINUS_COLOR, E_PLUS_COLOR, INPUT_COLOR, P_COLOR, _host, figure

def _time_axis(T: int, dt_ms: float | None):
    t = np.arange(1, T + 1, dtype=float)
    if dt_ms is None:
        return t, "time step t"
    return t * dt_ms, "time (ms)"


# ---------------------------------------------------------------------- neurons (ch. 3)
def raster(spikes, dt_ms: float | None = 1.0, title: str | None = None, ylabel: str = "neuron",
           yticklabels=None):
    """Spike raster of ``spikes`` with shape ``(T, N)``: a dot per spike, one row per neuron."""
    s = _host(spikes).reshape(_host(spikes).shape[0], -1)
    T, N = s.shape
    t, xlabel = _time_axis(T, dt_ms)
    fig, ax = figure(figsize=(6.0, max(1.6, 0.25 * N + 1.0)))
    steps, cells = np.nonzero(s)
    ax.scatter(t[steps], cells, marker="|", s=80, color="black", linewidths=1.2)
    ax.set_xlim(t[0] - 0.5 * (t[1] - t[0] if T > 1 else 1), t[-1] + 0.5 * (t[1] - t[0] if T > 1 else 1))
    ax.set_ylim(-0.7, N - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if yticklabels is not None:
        ax.set_yticks(range(N), list(yticklabels))
    elif N <= 12:
        ax.set_yticks(range(N))
    if title:
        ax.set_title(title)
    return fig


def membrane_trace(v, spikes=None, theta: float = 1.0, current=None, dt_ms: float | None = 1.0,
                   title: str | None = None):
    """Membrane potential of one neuron over time, threshold line, spikes and input current.

    ``v``: potential after reset, shape ``(T,)``; ``spikes``: 0/1 of shape ``(T,)``;
    ``current``: the input current per step (a number or shape ``(T,)``), drawn above.
    """
    v = _host(v).reshape(-1)
    T = v.shape[0]
    t, xlabel = _time_axis(T, dt_ms)
    if current is not None:
        fig, (ax_i, ax) = figure(2, 1, figsize=(6.0, 3.6), sharex=True, height_ratios=(1, 3))
        cur = np.broadcast_to(_host(current).reshape(-1) if np.ndim(current) else float(current), (T,))
        ax_i.step(t, cur, where="mid", color=INPUT_COLOR)
        ax_i.set_ylabel("input I\n(θ units)")
        ax_i.set_ylim(min(0.0, cur.min()) - 0.05, max(cur.max(), theta) * 1.1 + 0.05)
        if title:
            ax_i.set_title(title)
    else:
        fig, ax = figure(figsize=(6.0, 2.8))
        if title:
            ax.set_title(title)
    ax.plot(t, v, color=P_COLOR, marker=".", markersize=3, label="potential v (after reset)")
    ax.axhline(theta, color="black", linestyle="--", linewidth=0.8, label="threshold θ")
    if spikes is not None:
        st = t[_host(spikes).reshape(-1) > 0]
        ax.vlines(st, theta, theta * 1.35, color="black", linewidth=1.5, label="spike")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("potential v (θ units)")
    ax.set_ylim(min(0.0, v.min()) - 0.4 * theta, theta * 1.45)  # room for the legend below the trace
    ax.legend(loc="lower right", fontsize="small", ncols=3, framealpha=0.8)
    return fig


def surrogate_curve(params, v_range=(-1.0, 3.0), n: int = 401):
    """The surrogate derivative ``phi'(v)`` of one or several :class:`LIFParameters`."""
    from .. import backend
    from ..neurons import surrogate_gain

    params = params if isinstance(params, (list, tuple)) else [params]
    v = np.linspace(*v_range, n)
    fig, ax = figure(figsize=(5.0, 2.8))
    for p in params:
        g = _host(surrogate_gain(backend.asarray(v), p))
        ax.plot(v, g, label=f"{p.surrogate} (width {p.width:g})")
    ax.axvline(params[0].theta, color="black", linestyle="--", linewidth=0.8, label="threshold θ")
    ax.set_xlabel("membrane potential v (θ units)")
    ax.set_ylabel("surrogate gain φ'(v)")
    ax.legend(fontsize="small")
    return fig


def rate_vs_current(currents, rates, T: int | None = None, title: str | None = None):
    """Firing rate against constant input current; ``rates`` is an array or ``{label: array}``."""
    currents = _host(currents).reshape(-1)
    curves = rates if isinstance(rates, dict) else {"simulated": rates}
    fig, ax = figure(figsize=(5.0, 3.0))
    for label, r in curves.items():
        ax.plot(currents, _host(r).reshape(-1), marker=".", label=label, drawstyle="steps-post" if T else None)
    ax.set_xlabel("input current I (θ units per step)")
    ax.set_ylabel("firing rate r (spikes / step)")
    ax.set_ylim(-0.03, 1.05)
    if title or T:
        ax.set_title(title or f"T = {T} steps")
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------- encoding (ch. 4)
def encoding_raster(values, spikes, dt_ms: float | None = 1.0, title: str | None = None):
    """Input values (left) and their spike trains ``(T, N)`` (right), one row per input."""
    values = _host(values).reshape(-1)
    s = _host(spikes).reshape(_host(spikes).shape[0], -1)
    T, N = s.shape
    t, xlabel = _time_axis(T, dt_ms)
    fig, (ax_v, ax) = figure(1, 2, figsize=(6.5, max(1.8, 0.28 * N + 1.1)), width_ratios=(1, 4), sharey=True)
    ax_v.barh(range(N), values, color=INPUT_COLOR)
    ax_v.set_xlim(0, 1)
    ax_v.set_xlabel("value x")
    ax_v.set_ylabel("input")
    steps, cells = np.nonzero(s)
    ax.scatter(t[steps], cells, marker="|", s=70, color="black", linewidths=1.1)
    rate = s.mean(axis=0)
    for i in range(N):
        ax.annotate(f"{rate[i]:.2f}", (1.01, i), xycoords=("axes fraction", "data"), va="center", fontsize="x-small")
    ax.set_ylim(N - 0.4, -0.6)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "spikes (measured rate at right)", fontsize="medium")
    return fig


def rate_error_vs_T(Ts, errors: dict, title: str | None = None, xlabel: str = "time steps T",
                    ylabel: str = "mean |measured rate − x|"):
    """Mean absolute error of a measured rate against ``T`` (log-log), ``{label: errors}``."""
    Ts = _host(Ts).reshape(-1)
    fig, ax = figure(figsize=(5.0, 3.0))
    for label, err in errors.items():
        ax.loglog(Ts, _host(err).reshape(-1), marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def image(x, shape=(28, 28), title: str | None = None):
    """One input image (values in [0, 1]) shown in grey levels."""
    img = _host(x).reshape(shape)
    if img.ndim == 3:  # (C, H, W) colour image
        img = np.moveaxis(img, 0, -1)
    fig, ax = figure(figsize=(2.2, 2.4))
    ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{shape[-1]} pixels")
    ax.set_ylabel(f"{shape[-2]} pixels")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


# ------------------------------------------------------------------- diagrams (ch. 5, 6)
def compartment_diagram(title: str | None = "A pyramidal cell and its three compartments"):
    """A pyramidal cell: basal dendrite (feedforward input), soma (LIF), apical dendrite (feedback)."""
    from matplotlib.patches import FancyArrowPatch, Polygon

    fig, ax = figure(figsize=(5.5, 4.2))
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-3.0, 3.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.add_patch(Polygon([(-0.5, -0.4), (0.5, -0.4), (0.0, 0.55)], closed=True, color=P_COLOR, label="soma"))
    ax.plot([0, 0], [0.55, 2.4], color=E_PLUS_COLOR, linewidth=3)
    for dx in (-0.7, 0.0, 0.7):
        ax.plot([0, dx], [2.4, 3.0], color=E_PLUS_COLOR, linewidth=2)
    for dx in (-1.2, -0.4, 0.4, 1.2):
        ax.plot([np.sign(dx) * 0.3, dx], [-0.4, -1.5], color="black", linewidth=2)
    ax.plot([0, 0], [-0.4, -2.7], color=INPUT_COLOR, linewidth=1.5, linestyle=":")
    ax.text(0.9, 2.7, "apical dendrite\nfeedback error a = B(E⁺ − E⁻)\ndrives the error cells", fontsize="small", va="center")
    ax.text(0.7, 0.05, "soma (LIF)\nv ← αv + I, spike at θ\nrate r, gain g", fontsize="small", va="center")
    ax.text(1.4, -1.3, "basal dendrite\nI = W x + b\n(plastic synapses W)", fontsize="small", va="center")
    ax.text(0.15, -2.75, "axon: spikes to layer l+1", fontsize="small", va="center")
    ax.add_patch(FancyArrowPatch((-2.9, -2.2), (-1.0, -1.55), arrowstyle="-|>", mutation_scale=14, color="black"))
    ax.text(-3.1, -2.5, "spikes x from\nlayer l−1", fontsize="small")
    ax.add_patch(FancyArrowPatch((-2.9, 3.2), (-0.75, 3.0), arrowstyle="-|>", mutation_scale=14, color=E_PLUS_COLOR))
    ax.text(-3.1, 2.35, "error cells of\nlayer l+1", fontsize="small", color=E_PLUS_COLOR)
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def _layer_positions(n: int, spread: float = 1.0):
    if n == 1:
        return np.zeros(1)
    return np.linspace(-spread, spread, n) * min(1.0, 0.35 * (n - 1))


def circuit_diagram(sizes=(3, 3, 2), feedback: str = "local", title: str | None = None):
    """The microcircuit as a graph: three cell types and two kinds of connectivity.

    ``sizes``: cells per layer, input first (layer 0 is the encoded input: no error cells).
    Every pyramidal cell P of layers 1..L has an E+ and an E- error cell beside it.
    Connectivity A (feedforward, plastic): P^{l-1} -> basal dendrites of P^l, solid grey.
    Connectivity B (feedback, fixed, sign-concordant): E+/E- of layer l+1 -> apical
    dendrites of P^l, dashed red (excitatory route) and blue (inhibitory route);
    ``feedback="direct"`` draws DFA-style wiring from the output's error cells instead.
    The markers are drawn as four labelled scatter collections (``input``,
    ``pyramidal (P)``, ``error E+``, ``error E-``), one marker per cell.
    """
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError("sizes needs the input size and at least one layer, all >= 1")
    if feedback not in ("local", "direct"):
        raise ValueError("feedback must be 'local' or 'direct'")
    L = len(sizes) - 1
    fig, ax = figure(figsize=(1.9 * (L + 1) + 1.0, 0.9 * max(sizes) + 1.6))
    xs = [2.0 * l for l in range(L + 1)]
    ys = [_layer_positions(n, spread=0.5 * (max(sizes) - 1) + 0.01) for n in sizes]
    dx_e, dy_e = 0.45, 0.18
    # connectivity A: feedforward
    for l in range(1, L + 1):
        for y0 in ys[l - 1]:
            for y1 in ys[l]:
                ax.annotate("", (xs[l] - 0.12, y1), (xs[l - 1] + 0.12, y0),
                            arrowprops={"arrowstyle": "-|>", "color": "0.6", "lw": 0.8, "shrinkA": 2, "shrinkB": 2})
    # connectivity B: feedback from error cells to apical dendrites below
    sources = range(2, L + 1) if feedback == "local" else [L] * (L - 1)
    targets = range(1, L)
    for src, tgt in zip(sources, targets):
        for y1 in ys[src]:
            for y0 in ys[tgt]:
                for dy, color in ((dy_e, E_PLUS_COLOR), (-dy_e, E_MINUS_COLOR)):
                    ax.annotate("", (xs[tgt], y0 + 0.14), (xs[src] + dx_e, y1 + dy),
                                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 0.7, "ls": "--", "alpha": 0.7,
                                                "connectionstyle": "arc3,rad=-0.25", "shrinkA": 3, "shrinkB": 3})
    # local wiring: each P's apical compartment and gain drive its own error cells
    for l in range(1, L + 1):
        for y in ys[l]:
            ax.plot([xs[l], xs[l] + dx_e], [y, y + dy_e], color=E_PLUS_COLOR, lw=0.8)
            ax.plot([xs[l], xs[l] + dx_e], [y, y - dy_e], color=E_MINUS_COLOR, lw=0.8)
    ax.scatter(np.full(sizes[0], xs[0]), ys[0], marker="s", s=110, color=INPUT_COLOR, zorder=3, label="input")
    px = np.concatenate([np.full(n, xs[l]) for l, n in enumerate(sizes) if l > 0])
    py = np.concatenate([ys[l] for l in range(1, L + 1)])
    ax.scatter(px, py, marker="^", s=200, color=P_COLOR, zorder=3, label="pyramidal (P)")
    ax.scatter(px + dx_e, py + dy_e, marker="o", s=60, color=E_PLUS_COLOR, zorder=3, label="error E+")
    ax.scatter(px + dx_e, py - dy_e, marker="o", s=60, color=E_MINUS_COLOR, zorder=3, label="error E-")
    top = max(max(abs(y)) for y in ys) + 0.6
    for l in range(L + 1):
        name = "input (l = 0)" if l == 0 else (f"output (l = {L})" if l == L else f"hidden (l = {l})")
        ax.text(xs[l], -top - 0.05, name, ha="center", va="top", fontsize="small")
    ax.annotate("target y\n→ e = −∂E/∂r", (xs[L] + dx_e + 0.1, ys[L][0] + dy_e), (xs[L] + 1.1, top - 0.2),
                fontsize="x-small", ha="center",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 0.8})
    from matplotlib.lines import Line2D

    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="0.6", lw=1, label="A: feedforward W (plastic)"),
        Line2D([], [], color=E_PLUS_COLOR, lw=1, ls="--", label="B: feedback |M|·sign(Wᵀ) (|M| fixed, signs follow W)"),
    ]
    # below the drawing, in two columns: readable when the figure is scaled to the page width
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2, fontsize="small",
              frameon=False)
    ax.set_xlim(-0.6, xs[-1] + 1.6)
    ax.set_ylim(-top - 0.5, top + 0.3)
    ax.axis("off")
    ax.set_title(title or "The microcircuit: three cell types, two kinds of connectivity", fontsize="medium")
    return fig


def error_cells(cells, sample: int = 0, names=None, title: str | None = None, ylim: float | None = None,
                image=None, image_title: str = "input"):
    """Rates of the E+ (up, red) and E- (down, blue) cells of every plastic layer, output on top.

    ``cells``: a list per layer of :class:`microcircuit.circuit.ErrorCells` (or ``None`` for
    pooling layers, skipped), as returned by ``Microcircuit.error_phase``; one sample shown.
    ``image``: an optional 2-d input image drawn at the left (``image_title`` above it).
    """
    layers = [(i, c) for i, c in enumerate(cells) if c is not None][::-1]
    if image is None:
        fig, axes = figure(len(layers), 1, figsize=(6.0, 1.7 * len(layers) + 0.5), squeeze=False)
    else:
        fig, blank = figure(figsize=(7.6, 1.7 * len(layers) + 0.5))
        blank.remove()  # the panels are laid out on a grid of their own
        grid = fig.add_gridspec(len(layers), 2, width_ratios=(1, 3.6))
        axes = np.array([[fig.add_subplot(grid[k, 1])] for k in range(len(layers))])
        ax_img = fig.add_subplot(grid[:, 0])
        ax_img.imshow(_host(image), cmap="gray_r", vmin=0, vmax=1)
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title(image_title, fontsize="medium")
    for ax, (i, c) in zip(axes[:, 0], layers):
        pos = _host(c.pos)[sample].reshape(-1)
        neg = _host(c.neg)[sample].reshape(-1)
        idx = np.arange(pos.size)
        ax.bar(idx, pos, color=E_PLUS_COLOR, label="E+ (fire more)")
        ax.bar(idx, -neg, color=E_MINUS_COLOR, label="E− (fire less)")
        ax.axhline(0, color="black", lw=0.6)
        label = names[i] if names else (f"layer {i + 1}" + (" (output)" if i == len(cells) - 1 else ""))
        ax.set_ylabel(f"{label}\nrate")
        lim = ylim if ylim is not None else max(1e-6, float(max(pos.max(), neg.max()))) * 1.15
        ax.set_ylim(-lim, lim)
        ax.set_xlim(-0.7, pos.size - 0.3)
        if pos.size <= 16:
            ax.set_xticks(idx)
    axes[0, 0].legend(fontsize="x-small", loc="upper right", ncols=2)
    axes[-1, 0].set_xlabel("cell index i")
    if title:
        axes[0, 0].set_title(title, fontsize="medium")
    return fig


def equivalence_scatter(a, b, xlabel: str, ylabel: str, title: str | None = None):
    """Scatter of two arrays that should be equal, with the identity line and max residual."""
    a, b = _host(a).ravel(), _host(b).ravel()
    fig, ax = figure(figsize=(3.6, 3.4))
    ax.scatter(a, b, s=6, alpha=0.6, color=P_COLOR)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="identity")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"max |difference| = {np.abs(a - b).max():.1e}", fontsize="medium")
    ax.legend(fontsize="small")
    return fig


# ----------------------------------------------------------------- learning (ch. 2, 9)

"""Teaching widgets: live in Jupyter, still responsive in the static book.

A teaching widget is a figure function ``fig_fn(**params) -> Figure`` plus the values of
its parameters. It is shown two ways at once:

- **live** (a running kernel): ipywidgets sliders call ``fig_fn`` on every move;
- **kernel-free** (the rendered HTML book, nbviewer): :func:`static_slider` renders one
  figure per value of one parameter *in advance* and packs them, as base64 PNG images, into
  a self-contained ``<input type="range">`` that swaps them. No kernel, no server, no
  external script: the page's own browser does the work.

:func:`teaching_widget` returns an object whose rich display carries both: the ipywidget
view (which a live front-end prefers) and the static HTML (which the book's HTML builder
uses; ``_config.yml`` drops the widget view for the static book). Nothing inert is ever
left on the page.

Adding a widget for a new chapter takes one function::

    def hebbian_widget(...):
        def fig_fn(eta):            # one figure for one value
            ...
            return fig
        return teaching_widget(fig_fn, "eta", [0.01, 0.1, 1.0], label="learning rate η")

The book's widgets: :func:`lif_widget` (chapter 3), :func:`encoding_widget` (4),
:func:`error_phase_widget` (6), :func:`hebbian_widget` (7) and :func:`update_scatter_widget` (9),
each with two controls in the static book (:func:`teaching_grid`: a grid of pre-rendered frames).
"""

from __future__ import annotations

import math

import numpy as np

from .sliders import (  # noqa: F401 - the machinery, re-exported: widgets.static_slider etc.
    MAX_STATIC_BYTES,
    SMOKE_DPI,
    StaticSlider,
    TeachingWidget,
    live_widget,
    static_grid,
    static_slider,
    teaching_grid,
    teaching_widget,
)


# --------------------------------------------------------------- the book's widgets
def _tau(v) -> str:
    return "∞ (no leak)" if math.isinf(v) else f"{v:g} steps"


def lif_figure(current: float, tau_m: float = math.inf, theta: float = 1.0, T: int = 32, dt_ms: float = 1.0):
    """Membrane potential and spikes of one LIF soma under a constant current (chapter 3)."""
    from . import backend
    from .neurons import LIFParameters, simulate
    from .plots import membrane_trace

    params = LIFParameters(tau_m=tau_m, theta=theta)
    out = simulate(np.full((int(T), 1), float(current)), params)
    n = int(backend.to_numpy(out["spikes"]).sum())
    tau = "∞" if math.isinf(tau_m) else f"{tau_m:g}"
    return membrane_trace(out["v"][:, 0], out["spikes"][:, 0], theta=theta, current=float(current), dt_ms=dt_ms,
                          title=f"I = {current:.3g}, τ_m = {tau}: {n} spikes in T = {T} steps (r = {n / T:.3g})")


def lif_widget(currents=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2), taus=(math.inf, 20.0, 5.0), T: int = 32,
               theta: float = 1.0) -> TeachingWidget:
    """Chapter 3: drive one LIF soma with a constant current and a leak; watch it integrate and fire."""
    return teaching_grid(
        lif_figure,
        [("current", list(currents), "input current I (θ per step)", "{:.2f}"),
         ("tau_m", list(taus), "leak time constant τ_m", _tau)],
        live={"T": [8, 16, 32, 64]}, fixed={"theta": theta, "T": T}, start=(3, 0), dpi=60,
        alt="Membrane potential of one cell against time, rising with each step of input, with a spike "
            "and a drop by θ each time it reaches the threshold line",
    )


def encoding_figure(T: int, values=(0.1, 0.3, 0.5, 0.7, 0.9), encoding: str = "bernoulli", seed: int = 0):
    """Spike trains of a few input values under ``encoding`` over ``T`` steps (chapter 4)."""
    from .encoding import spike_train
    from .neurons import simulate
    from .plots import encoding_raster

    values = np.asarray(values, dtype=float)
    spikes = spike_train(values, int(T), encoding, seed=seed)
    if encoding == "direct":  # a constant current: its spikes are those of the IF soma it drives
        spikes = simulate(spikes)["spikes"]
    name = "direct coding into an IF soma" if encoding == "direct" else "Bernoulli coding"
    return encoding_raster(values, spikes, title=f"{name}, T = {T} steps (measured rate at right)")


def encoding_widget(Ts=(4, 8, 16, 32, 64), values=(0.1, 0.3, 0.5, 0.7, 0.9), encodings=("bernoulli", "direct"),
                    seed: int = 0) -> TeachingWidget:
    """Chapter 4: the same values coded as spikes over more and more time steps, by either code."""
    return teaching_grid(
        encoding_figure,
        [("T", list(Ts), "time steps T"), ("encoding", list(encodings), "code")],
        live={"seed": [0, 1, 2, 3]}, fixed={"values": tuple(values), "seed": seed}, start=(2, 0),
        alt="Spike rasters of five input values, one row per value, with the measured rate beside each row",
    )


def error_phase_figure(net, x, target: int, mode: str | None = None, label: int | None = None, seed: int = 0):
    """Error cells of every layer of ``net`` for input ``x`` (one sample) and class ``target``,
    with the input image beside them. Spiking mode draws its spikes from ``seed``."""
    from . import backend
    from .circuit import Microcircuit
    from .losses import one_hot
    from .plots import error_cells

    rule = net.rule
    if not isinstance(rule, Microcircuit):
        raise TypeError("error_phase_widget needs a Network with rule='microcircuit'")
    X = net.check_inputs(np.asarray(backend.to_numpy(x)).reshape(1, -1))
    r = net.forward(X)
    e = net.loss.error(r, one_hot(backend.asarray(np.array([int(target)])), net.n_classes))
    cells = rule.error_phase(net.layers, e, mode=mode, gen=backend.noise_generator(seed))
    guess = int(np.argmax(backend.to_numpy(r)[0]))
    image = np.asarray(backend.to_numpy(x), dtype=float).reshape(-1)
    side = int(round(math.sqrt(image.size)))
    shown = image.reshape(side, side) if side * side == image.size else None
    caption = f"input (label {label})" if label is not None else "input"
    return error_cells(cells, image=shown, image_title=caption,
                       title=f"target class {target} (network's guess: {guess}), {rule.mode if mode is None else mode} mode")


def error_phase_widget(net, x, targets=None, label: int | None = None) -> TeachingWidget:
    """Chapter 6: pick the correct class and the error cells' mode; watch every layer respond."""
    targets = list(range(net.n_classes)) if targets is None else list(targets)
    start = targets.index(label) if label in targets else 0
    return teaching_grid(
        error_phase_figure,
        [("target", targets, "target class"), ("mode", ["rate", "spiking"], "error cells")],
        fixed={"net": net, "x": x, "label": label}, dpi=60, start=(start, 0),
        alt="The input digit, and bar charts of the E+ (upward, red) and E− (downward, blue) error-cell "
            "rates of every layer, output layer on top",
    )


def hebbian_widget(values=(-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0), gains=(0.0, 0.4, 0.8),
                   r_pre=(0.9, 0.7, 0.5, 0.3, 0.1, 0.0)) -> TeachingWidget:
    """Chapter 7: slide the apical input and the gain; watch E+/E- and the Hebbian update follow."""
    from .plots import hebbian_figure

    return teaching_grid(
        hebbian_figure,
        [("a", list(values), "apical input a_i (potential units)", "{:+.2f}"),
         ("g", list(gains), "gain g_i", "{:.2f}")],
        fixed={"r_pre": tuple(r_pre)}, dpi=60,
        start=(list(values).index(0.5) if 0.5 in values else len(values) // 2, len(gains) - 1),
        alt="Left: the rates of the E+ and E− cells of one pyramidal cell. Right: the change of each of its "
            "six basal weights, with the presynaptic rates as dots",
    )


def alignment_meter(history: dict, first_epoch: int = 0, include_output: bool = False) -> TeachingWidget:
    """Step through training and watch each rule's updates align with BP's (one control).

    ``history = {rule: [[angle per plastic layer] for each epoch]}`` from
    :meth:`microcircuit.Network.alignment`, the first entry after ``first_epoch`` epochs.
    """
    from .plots import alignment_meter_figure

    n = len(next(iter(history.values())))
    epochs = list(range(first_epoch, first_epoch + n))
    return teaching_widget(alignment_meter_figure, "epoch", epochs, "epoch",
                           fixed={"history": history, "first_epoch": first_epoch, "include_output": include_output},
                           dpi=72, start=n - 1)


def update_sample(net, x, y, layer: int = 0, n: int = 400, seed: int = 0) -> dict:
    """A sample of one layer's weight update under ``net``'s rule and under BP, from one forward pass.

    Returns ``{"rule": entries, "bp": entries, "angle": degrees, "agree": fraction}`` (host arrays
    of ``n`` entries drawn at ``seed``; ``agree``: the fraction of *all* entries whose signs agree).
    """
    from . import backend
    from .feedback import FeedbackAlignment
    from .metrics import angle_degrees

    e = net.output_error(x, y)
    plastic = [i for i, lay in enumerate(net.layers) if lay.plastic]
    i = plastic[layer]
    ours = backend.to_numpy(net.rule.updates(net.layers, e)[i][0]).ravel()
    bp = backend.to_numpy(FeedbackAlignment("symmetric").updates(net.layers, e)[i][0]).ravel()
    pick = np.random.default_rng(seed).choice(ours.size, size=min(n, ours.size), replace=False)
    nonzero = (ours != 0) & (bp != 0)
    agree = float(np.mean(np.sign(ours[nonzero]) == np.sign(bp[nonzero]))) if nonzero.any() else float("nan")
    return {"rule": ours[pick], "bp": bp[pick], "angle": angle_degrees(ours, bp), "agree": agree}


def update_scatter_widget(samples: dict, first_epoch: int = 0, layer_name: str = "hidden layer 1") -> TeachingWidget:
    """Chapter 9: entry by entry, how a rule's update compares with BP's, per rule and epoch.

    ``samples = {rule: [update_sample(...) per epoch]}``, the first after ``first_epoch`` epochs.
    Where the angle plot gives one number per epoch, each picture shows the weights themselves:
    points on the diagonal quadrants change as BP would have them change.
    """
    from .plots import update_scatter_figure

    rules = list(samples)
    n = len(samples[rules[0]])
    epochs = list(range(first_epoch, first_epoch + n))

    def fig_fn(epoch, rule):
        return update_scatter_figure(samples[rule][epoch - first_epoch], rule=rule, epoch=epoch,
                                     layer_name=layer_name)

    return teaching_grid(
        fig_fn, [("epoch", epochs, "epoch (0: before training)"), ("rule", rules, "rule")],
        dpi=60, start=(0, 0),
        alt=f"Scatter of the entries of a rule's weight update of {layer_name} against BP's update of the same "
            "weights, with the fraction of entries whose signs agree",
    )

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
:func:`error_phase_widget` (6), :func:`hebbian_widget` (7) and :func:`alignment_meter` (9).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import math
import numbers
import warnings

import numpy as np

from .tiers import tier

MAX_STATIC_BYTES = 300_000  # a static widget should stay well below this (one page's budget)
SMOKE_DPI = 25  # frame resolution in the smoke tier (CI), where only the machinery is tested


# ------------------------------------------------------------------ the static slider
def _png_base64(fig, dpi: int, colors: int = 64) -> str:
    """The figure as a base64 PNG, reduced to a ``colors``-colour palette (3x smaller, same look)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    data = buf.getvalue()
    with contextlib.suppress(Exception):  # keep the full PNG if Pillow cannot help
        from PIL import Image  # matplotlib depends on Pillow

        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        small = io.BytesIO()
        image.save(small, format="PNG", optimize=True)
        data = min(data, small.getvalue(), key=len)
    return base64.b64encode(data).decode("ascii")


def _format(value, fmt) -> str:
    if fmt is not None:
        return fmt(value) if callable(fmt) else fmt.format(value)
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:g}"
    return str(value)


class StaticSlider:
    """A kernel-free slider: one pre-rendered frame per value, swapped by an HTML range input.

    Attributes: ``html`` (the self-contained HTML string), ``n_frames``, ``values``,
    ``labels``. Displays itself in Jupyter through ``_repr_html_``.
    """

    def __init__(self, frames, values, labels, label: str, start: int = 0, alt: str = ""):
        if not frames:
            raise ValueError("a static slider needs at least one frame")
        self.frames, self.values, self.labels = list(frames), list(values), list(labels)
        self.label, self.start = label, int(start)
        self.html = self._render(alt)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def _render(self, alt: str) -> str:
        uid = "mc-ss-" + hashlib.sha1("".join(self.frames).encode()).hexdigest()[:10]
        labels_json = html.escape(json.dumps(self.labels), quote=True)
        handler = (
            "var r=this.closest('.mc-static-slider');"
            "var f=r.querySelectorAll('img.mc-frame');"
            "for(var i=0;i<f.length;i++){f[i].style.display=(i==this.value)?'block':'none';}"
            "r.querySelector('output').textContent=JSON.parse(r.dataset.labels)[this.value];"
        )
        imgs = "".join(
            f'<img class="mc-frame" data-index="{i}" alt="{html.escape(alt or self.label)} = '
            f'{html.escape(lab)}" style="max-width:100%;height:auto;display:{"block" if i == self.start else "none"}" '
            f'src="data:image/png;base64,{png}">'
            for i, (png, lab) in enumerate(zip(self.frames, self.labels))
        )
        return (
            f'<div class="mc-static-slider" id="{uid}" data-labels="{labels_json}">'
            f'<div style="display:flex;align-items:center;gap:0.6em;font-family:sans-serif;font-size:0.9em">'
            f'<label for="{uid}-range">{html.escape(self.label)}</label>'
            f'<input id="{uid}-range" type="range" min="0" max="{self.n_frames - 1}" step="1" '
            f'value="{self.start}" style="flex:0 1 16em" oninput="{handler}">'
            f'<output for="{uid}-range">{html.escape(self.labels[self.start])}</output>'
            f'<span style="color:#777">(precomputed: {self.n_frames} values; run the notebook for live controls)</span>'
            f"</div>{imgs}</div>"
        )

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"StaticSlider({self.label!r}, {self.n_frames} frames, {len(self.html) // 1024} KB)"


def static_slider(fig_fn, values, label: str, *, fmt=None, dpi: int = 80, start: int | None = None,
                  alt: str = "") -> StaticSlider:
    """Render ``fig_fn(value)`` for every value and pack the figures into a kernel-free slider.

    fig_fn : callable returning a matplotlib Figure for one value.
    values : the slider positions (few: each is one PNG in the page).
    label : what the slider controls, shown beside it (with units).
    fmt : format string (``"{:.2f}"``) or callable for the value readout.
    dpi : resolution of the frames; keep it low so the widget stays small (the ``smoke``
        tier caps it at ``SMOKE_DPI``).
    start : index of the frame shown first (default: the middle one).
    """
    values = list(values)
    if not values:
        raise ValueError("static_slider needs at least one value")
    if tier() == "smoke":
        dpi = min(dpi, SMOKE_DPI)  # CI: keep the notebooks' stored outputs small
    frames = [_png_base64(fig_fn(v), dpi) for v in values]
    start = len(values) // 2 if start is None else int(start)
    if not 0 <= start < len(values):
        raise ValueError(f"start={start} is not a frame index (0..{len(values) - 1})")
    slider = StaticSlider(frames, values, [_format(v, fmt) for v in values], label, start, alt)
    if len(slider.html) > MAX_STATIC_BYTES:
        warnings.warn(f"static slider {label!r} is {len(slider.html) // 1024} KB: use fewer values or a lower dpi",
                      stacklevel=2)
    return slider


# --------------------------------------------------------------------- live controls
def _control(name: str, values, fmt=None):
    """An ipywidget for a list of values: a numeric slider if evenly spaced, else a selection."""
    import ipywidgets as W

    if isinstance(values, W.Widget):
        return values
    values = list(values)
    style = {"description_width": "initial"}
    layout = W.Layout(width="22em")
    numeric = all(isinstance(v, numbers.Real) and math.isfinite(v) and not isinstance(v, bool) for v in values)
    if numeric and len(values) >= 3:
        steps = np.diff(np.asarray(values, dtype=float))
        if np.allclose(steps, steps[0]) and steps[0] > 0:
            if all(isinstance(v, numbers.Integral) for v in values):
                return W.IntSlider(value=values[len(values) // 2], min=values[0], max=values[-1],
                                   step=int(steps[0]), description=name, style=style, layout=layout,
                                   continuous_update=False)
            fine = steps[0] / 4
            return W.FloatSlider(value=values[len(values) // 2], min=values[0], max=values[-1], step=fine,
                                 description=name, style=style, layout=layout, continuous_update=False,
                                 readout_format=".3g")
    return W.SelectionSlider(options=[(_format(v, fmt), v) for v in values], value=values[len(values) // 2],
                             description=name, style=style, layout=layout, continuous_update=False)


def live_widget(fig_fn, controls: dict, fixed: dict | None = None):
    """An ipywidgets panel: one control per ``{name: values or widget}``, the figure below."""
    import ipywidgets as W
    from IPython.display import display

    fixed = dict(fixed or {})
    ctrls = {name: _control(name, vals) for name, vals in controls.items()}

    def show(**kwargs):
        display(fig_fn(**fixed, **kwargs))

    out = W.interactive_output(show, ctrls)
    return W.VBox([W.HBox(list(ctrls.values()), layout=W.Layout(flex_flow="row wrap")), out])


class TeachingWidget:
    """Both faces of a teaching widget; its rich display carries the live view and the static HTML."""

    def __init__(self, static: StaticSlider, live_factory=None):
        self.static = static
        self._live_factory = live_factory
        self._live = None

    @property
    def live(self):
        """The ipywidgets panel (built on first use; ``None`` without ipywidgets)."""
        if self._live is None and self._live_factory is not None:
            try:
                self._live = self._live_factory()
            except ImportError:
                self._live_factory = None
        return self._live

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self.static), "text/html": self.static.html}
        live = self.live
        if live is not None:
            view = live._repr_mimebundle_()
            if "application/vnd.jupyter.widget-view+json" in view:
                bundle["application/vnd.jupyter.widget-view+json"] = view["application/vnd.jupyter.widget-view+json"]
        return bundle

    def __repr__(self) -> str:
        return f"TeachingWidget({self.static!r})"


def teaching_widget(fig_fn, param: str, values, label: str | None = None, *, live: dict | None = None,
                    fixed: dict | None = None, fmt=None, dpi: int = 80, start: int | None = None) -> TeachingWidget:
    """A widget over ``fig_fn(**{param: value}, **fixed)``: static sweep of ``param``, live sliders.

    live : extra parameters for the live version only, ``{name: values}`` (the static book
        holds them at their ``fixed`` value).
    """
    fixed = dict(fixed or {})
    static = static_slider(lambda v: fig_fn(**fixed, **{param: v}), values, label or param, fmt=fmt, dpi=dpi,
                           start=start)
    controls = {param: list(values), **(live or {})}
    live_fixed = {k: v for k, v in fixed.items() if k not in controls}
    return TeachingWidget(static, lambda: live_widget(fig_fn, controls, live_fixed))


# --------------------------------------------------------------- the book's widgets
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


def lif_widget(currents=(0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2), T: int = 32, tau_m: float = math.inf,
               theta: float = 1.0) -> TeachingWidget:
    """Chapter 3: drive one LIF soma with a constant current and watch it integrate and fire."""
    return teaching_widget(
        lif_figure, "current", currents, "input current I (θ units per step)",
        live={"tau_m": [math.inf, 40.0, 20.0, 10.0, 5.0, 2.0], "T": [8, 16, 32, 64]},
        fixed={"tau_m": tau_m, "theta": theta, "T": T}, fmt="{:.2f}",
    )


def encoding_figure(T: int, values=(0.1, 0.3, 0.5, 0.7, 0.9), encoding: str = "bernoulli", seed: int = 0):
    """Spike trains of a few input values under ``encoding`` over ``T`` steps (chapter 4)."""
    from .encoding import spike_train
    from .plots import encoding_raster

    values = np.asarray(values, dtype=float)
    spikes = spike_train(values, int(T), encoding, seed=seed)
    return encoding_raster(values, spikes, title=f"{encoding} coding, T = {T} steps (measured rate at right)")


def encoding_widget(Ts=(4, 8, 16, 32, 64), values=(0.1, 0.3, 0.5, 0.7, 0.9), encoding: str = "bernoulli",
                    seed: int = 0) -> TeachingWidget:
    """Chapter 4: the same values coded as spikes over more and more time steps."""
    return teaching_widget(
        encoding_figure, "T", list(Ts), "time steps T",
        live={"encoding": ["bernoulli", "direct"], "seed": [0, 1, 2, 3]},
        fixed={"values": tuple(values), "encoding": encoding, "seed": seed}, start=2,
    )


def error_phase_figure(net, x, target: int, mode: str | None = None):
    """Error cells of every layer of ``net`` for input ``x`` (one sample) and class ``target``."""
    from . import backend
    from .circuit import Microcircuit
    from .losses import one_hot
    from .plots import error_cells

    rule = net.rule
    if not isinstance(rule, Microcircuit):
        raise TypeError("error_phase_widget needs a Network with rule='microcircuit'")
    X = net._check_x(np.asarray(backend.to_numpy(x)).reshape(1, -1))
    r = net.forward(X)
    e = net.loss.error(r, one_hot(backend.asarray(np.array([int(target)])), net.n_classes))
    old_mode = rule.mode
    rule.mode = mode or old_mode
    try:
        cells = rule.error_phase(net.layers, e)
    finally:
        rule.mode = old_mode
    guess = int(np.argmax(backend.to_numpy(r)[0]))
    return error_cells(cells, title=f"target class {target} (network's guess: {guess}), {rule.mode if mode is None else mode} mode")


def error_phase_widget(net, x, targets=None) -> TeachingWidget:
    """Chapter 6: pick the correct class and watch the error cells of every layer respond."""
    targets = list(range(net.n_classes)) if targets is None else list(targets)
    return teaching_widget(
        error_phase_figure, "target", targets, "target class",
        live={"mode": ["rate", "spiking"]}, fixed={"net": net, "x": x, "mode": None}, dpi=72, start=0,
    )


def hebbian_widget(values=(-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0), g: float = 0.8,
                   r_pre=(0.9, 0.7, 0.5, 0.3, 0.1, 0.0)) -> TeachingWidget:
    """Chapter 7: slide the apical input and watch E+/E- and the Hebbian update follow."""
    from .plots import hebbian_figure

    return teaching_widget(
        hebbian_figure, "a", list(values), "apical input a_i (potential units)",
        live={"g": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}, fixed={"g": g, "r_pre": tuple(r_pre)}, fmt="{:+.2f}", dpi=72,
    )


def alignment_meter(history: dict, first_epoch: int = 0, include_output: bool = False) -> TeachingWidget:
    """Chapter 9: step through training and watch each rule's updates align with BP's.

    ``history = {rule: [[angle per plastic layer] for each epoch]}`` from
    :meth:`microcircuit.Network.alignment`, the first entry after ``first_epoch`` epochs.
    """
    from .plots import alignment_meter_figure

    n = len(next(iter(history.values())))
    epochs = list(range(first_epoch, first_epoch + n))
    return teaching_widget(alignment_meter_figure, "epoch", epochs, "epoch",
                           fixed={"history": history, "first_epoch": first_epoch, "include_output": include_output},
                           dpi=72, start=n - 1)

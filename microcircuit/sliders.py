"""The machinery of teaching widgets: one figure function, shown live and kernel-free.

A :class:`StaticSlider` packs pre-rendered frames (base64 PNG) into a self-contained HTML
``<input type="range">`` (one control) or a grid of them (:func:`static_grid`: two controls);
:func:`live_widget` drives the same figure function with ipywidgets; a :class:`TeachingWidget`
carries both, and a front-end shows the one it can. The book's widgets, built on this, are in
:mod:`microcircuit.widgets`.
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
    """A kernel-free widget: one pre-rendered frame per combination of control values, swapped
    by one HTML range input per control (one control: a slider; two: a grid of frames).

    frames : base64 PNGs in row-major order over the controls (the last control varies fastest).
    controls : ``[(label, [value labels])]``, one entry per control.
    start : index of the first frame's value on each control.
    alt : what the pictures show, for readers who cannot see them; each frame's alt text adds
        the control values it was drawn for.

    Attributes: ``html`` (the self-contained HTML string), ``n_frames``, ``controls``;
    ``values``, ``labels`` and ``label`` describe the first control. Displays itself in Jupyter
    through ``_repr_html_``.
    """

    def __init__(self, frames, values, labels, label: str, start=0, alt: str = "", controls=None):
        if not frames:
            raise ValueError("a static slider needs at least one frame")
        self.frames = list(frames)
        self.controls = [(label, list(labels))] if controls is None else [(c, list(v)) for c, v in controls]
        starts = [int(start)] if isinstance(start, numbers.Integral) else [int(s) for s in start]
        if len(starts) != len(self.controls) or not all(0 <= s < len(v) for s, (_, v) in zip(starts, self.controls)):
            raise ValueError(f"start={start!r} is not one frame index per control")
        if int(np.prod([len(v) for _, v in self.controls])) != len(self.frames):
            raise ValueError("need one frame per combination of control values")
        self.values, self.labels, self.label = list(values), self.controls[0][1], self.controls[0][0]
        self.starts = starts
        self.start = int(np.ravel_multi_index(starts, [len(v) for _, v in self.controls]))
        self.alt = alt
        self.html = self._render(alt)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def frame_alt(self, index: int) -> str:
        """Alt text of one frame: what it shows, and the control values it was drawn for."""
        where = np.unravel_index(index, [len(v) for _, v in self.controls])
        values = ", ".join(f"{lab} = {labs[k]}" for (lab, labs), k in zip(self.controls, where))
        return f"{self.alt} ({values})" if self.alt else values

    def _render(self, alt: str) -> str:
        uid = "mc-ss-" + hashlib.sha1("".join(self.frames).encode()).hexdigest()[:10]
        handler = (
            "var r=this.closest('.mc-static-slider');"
            "var c=r.querySelectorAll('input.mc-control');var k=0;"
            "for(var a=0;a<c.length;a++){k=k*(+c[a].max+1)+(+c[a].value);}"
            "var f=r.querySelectorAll('img.mc-frame');"
            "for(var i=0;i<f.length;i++){f[i].style.display=(i==k)?'block':'none';}"
            "this.parentNode.querySelector('output').textContent=JSON.parse(this.dataset.labels)[this.value];"
        )
        rows = []
        for n, ((label, labels), s) in enumerate(zip(self.controls, self.starts)):
            cid = f"{uid}-c{n}"
            note = (f'<span style="color:#777">(precomputed: {self.n_frames} pictures; run the notebook for '
                    f"live controls)</span>") if n == len(self.controls) - 1 else ""
            rows.append(
                f'<div class="mc-control-row" style="display:flex;flex-wrap:wrap;align-items:center;gap:0.6em;'
                f'font-family:sans-serif;font-size:0.9em">'
                f'<label for="{cid}">{html.escape(label)}</label>'
                f'<input id="{cid}" class="mc-control" type="range" min="0" max="{len(labels) - 1}" step="1" '
                f'value="{s}" data-labels="{html.escape(json.dumps(labels), quote=True)}" '
                f'style="flex:0 1 14em" oninput="{handler}">'
                f'<output for="{cid}">{html.escape(labels[s])}</output>{note}</div>'
            )
        imgs = "".join(
            f'<img class="mc-frame" data-index="{i}" alt="{html.escape(self.frame_alt(i), quote=True)}" '
            f'style="max-width:100%;height:auto;display:{"block" if i == self.start else "none"}" '
            f'src="data:image/png;base64,{png}">'
            for i, png in enumerate(self.frames)
        )
        return f'<div class="mc-static-slider" id="{uid}">{"".join(rows)}{imgs}</div>'

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        shape = " x ".join(str(len(v)) for _, v in self.controls)
        names = " x ".join(repr(c) for c, _ in self.controls)
        return f"StaticSlider({names}, {shape} frames, {len(self.html) // 1024} KB)"


def _check_size(slider: StaticSlider):
    if len(slider.html) > MAX_STATIC_BYTES:
        warnings.warn(f"static widget {slider.label!r} is {len(slider.html) // 1024} KB: use fewer values or a lower dpi",
                      stacklevel=3)
    return slider


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
    alt : what the pictures show (alt text; the value of each frame is added).
    """
    values = list(values)
    if not values:
        raise ValueError("static_slider needs at least one value")
    if tier() == "smoke":
        dpi = min(dpi, SMOKE_DPI)  # CI: keep the notebooks' stored outputs small
    start = len(values) // 2 if start is None else int(start)
    if not 0 <= start < len(values):
        raise ValueError(f"start={start} is not a frame index (0..{len(values) - 1})")
    frames = [_png_base64(fig_fn(v), dpi) for v in values]
    return _check_size(StaticSlider(frames, values, [_format(v, fmt) for v in values], label, start, alt))


def static_grid(fig_fn, controls, *, dpi: int = 80, start=None, alt: str = "") -> StaticSlider:
    """Render ``fig_fn(**{name: value, ...})`` for every combination of two (or more) controls.

    controls : ``[(name, values, label, fmt)]`` (``fmt`` may be omitted): one range input each.
    start : the value index each control starts on (default: the middle of each).
    The page holds ``prod(len(values))`` frames: keep the grid small (the byte budget is
    ``MAX_STATIC_BYTES``).
    """
    controls = [tuple(c) + (None,) * (4 - len(c)) for c in controls]
    if not controls or any(not list(c[1]) for c in controls):
        raise ValueError("static_grid needs controls with at least one value each")
    if tier() == "smoke":
        dpi = min(dpi, SMOKE_DPI)
    start = [len(list(c[1])) // 2 for c in controls] if start is None else list(start)
    grids = np.meshgrid(*[np.arange(len(list(c[1]))) for c in controls], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)
    values = [list(c[1]) for c in controls]
    frames = [_png_base64(fig_fn(**{c[0]: values[a][k] for a, (c, k) in enumerate(zip(controls, combo))}), dpi)
              for combo in combos]
    labels = [(c[2] or c[0], [_format(v, c[3]) for v in values[a]]) for a, c in enumerate(controls)]
    return _check_size(StaticSlider(frames, values[0], labels[0][1], labels[0][0], start, alt, controls=labels))


# --------------------------------------------------------------------- live controls
_MISSING = object()


def _control(name: str, values, fmt=None, value=_MISSING):
    """An ipywidget for a list of values: a numeric slider if evenly spaced, else a selection.

    value : the value it opens on (default: the middle one), so that the live widget can open
        on the picture the static book shows.
    """
    import ipywidgets as W

    if isinstance(values, W.Widget):
        return values
    values = list(values)
    value = values[len(values) // 2] if value is _MISSING else value
    style = {"description_width": "initial"}
    layout = W.Layout(width="22em")
    numeric = all(isinstance(v, numbers.Real) and math.isfinite(v) and not isinstance(v, bool) for v in values)
    if numeric and len(values) >= 3:
        steps = np.diff(np.asarray(values, dtype=float))
        if np.allclose(steps, steps[0]) and steps[0] > 0:
            if all(isinstance(v, numbers.Integral) for v in values):
                return W.IntSlider(value=value, min=values[0], max=values[-1],
                                   step=int(steps[0]), description=name, style=style, layout=layout,
                                   continuous_update=False)
            fine = steps[0] / 4
            return W.FloatSlider(value=value, min=values[0], max=values[-1], step=fine,
                                 description=name, style=style, layout=layout, continuous_update=False,
                                 readout_format=".3g")
    return W.SelectionSlider(options=[(_format(v, fmt), v) for v in values], value=value,
                             description=name, style=style, layout=layout, continuous_update=False)


def live_widget(fig_fn, controls: dict, fixed: dict | None = None, start: dict | None = None):
    """An ipywidgets panel: one control per ``{name: values or widget}``, the figure below.

    start : ``{name: value}`` each control opens on (default: the middle value).
    """
    import ipywidgets as W
    from IPython.display import display

    fixed, start = dict(fixed or {}), dict(start or {})
    ctrls = {name: _control(name, vals, value=start.get(name, _MISSING)) for name, vals in controls.items()}

    def show(**kwargs):
        display(fig_fn(**fixed, **kwargs))

    out = W.interactive_output(show, ctrls)
    return W.VBox([W.HBox(list(ctrls.values()), layout=W.Layout(flex_flow="row wrap")), out])


class TeachingWidget:
    """Both faces of a teaching widget; its rich display carries the live view and the static HTML."""

    def __init__(self, static: StaticSlider, live_factory=None, start: dict | None = None):
        self.static = static
        self.start = dict(start or {})  # the values the live controls open on (the static picture's)
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
                    fixed: dict | None = None, fmt=None, dpi: int = 80, start: int | None = None,
                    alt: str = "") -> TeachingWidget:
    """A widget over ``fig_fn(**{param: value}, **fixed)``: static sweep of ``param``, live sliders.

    live : extra parameters for the live version only, ``{name: values}`` (the static book
        holds them at their ``fixed`` value).
    """
    fixed = dict(fixed or {})
    values = list(values)
    static = static_slider(lambda v: fig_fn(**fixed, **{param: v}), values, label or param, fmt=fmt, dpi=dpi,
                           start=start, alt=alt)
    controls = {param: values, **(live or {})}
    opening = {param: values[static.start], **{k: fixed[k] for k in (live or {}) if k in fixed}}
    live_fixed = {k: v for k, v in fixed.items() if k not in controls}
    return TeachingWidget(static, lambda: live_widget(fig_fn, controls, live_fixed, opening), opening)


def teaching_grid(fig_fn, controls, *, live: dict | None = None, fixed: dict | None = None, dpi: int = 80,
                  start=None, alt: str = "") -> TeachingWidget:
    """A widget with two controls in the static book: a grid of frames over both.

    controls : ``[(name, values, label, fmt)]``, the two parameters the static book varies.
    live : extra parameters for the live version only (held at their ``fixed`` value in the book).
    start : value index each static control starts on; the live controls open on the same values.
    """
    fixed = dict(fixed or {})
    controls = [tuple(c) for c in controls]
    static = static_grid(lambda **kw: fig_fn(**fixed, **kw), controls, dpi=dpi, start=start, alt=alt)
    names = [c[0] for c in controls]
    opening = {name: list(c[1])[k] for name, c, k in zip(names, controls, static.starts)}
    opening.update({k: fixed[k] for k in (live or {}) if k in fixed})
    live_controls = {c[0]: list(c[1]) for c in controls}
    live_controls.update(live or {})
    live_fixed = {k: v for k, v in fixed.items() if k not in live_controls}
    return TeachingWidget(static, lambda: live_widget(fig_fn, live_controls, live_fixed, opening), opening)



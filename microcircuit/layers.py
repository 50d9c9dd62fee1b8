"""Layers of pyramidal cells: dense, convolutional, and pooling wiring between them.

A pyramidal cell has three compartments (see the book, :doc:`chapter 5 </chapters/05_pyramidal_cell>`):

- **basal dendrite**: sums feedforward input through the plastic weights,
  ``I[t] = W x[t] + b``;
- **soma**: a LIF unit (:mod:`microcircuit.neurons`) that turns ``I[t]`` into spikes and
  keeps its rate ``r`` and local gain ``g``;
- **apical dendrite**: receives the feedback error from the layer above. It does not
  drive spikes in the forward phase; it gates plasticity (:mod:`microcircuit.circuit`).

A layer is run as a stream over time (``reset``, then ``step`` for ``t = 1..T``, then
``finish``), so memory does not grow with ``T``. Besides the forward map, each plastic layer
exposes the two linear maps that learning needs, for any kernel ``K`` of ``W``'s shape:

- ``backward(e, K)``: carry errors ``e`` at this layer's cells down to its inputs, ``e K``
  (the feedback matrix of the book is ``B = K^T``; a transposed convolution for conv layers);
- ``hebbian(post, pre)``: the batch-averaged Hebbian product ``post^T pre / batch``
  (shared over positions for conv layers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import backend
from .neurons import LIFParameters, lif_layer_step


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Dense:
    """A dense layer of ``units`` pyramidal cells (flattens image-shaped input)."""

    units: int


@dataclass(frozen=True)
class Conv:
    """A convolutional layer: ``channels`` feature maps, ``kernel`` x ``kernel`` receptive fields."""

    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1


@dataclass(frozen=True)
class Pool:
    """Pooling wiring (no cells, not plastic): ``"avg"`` or ``"max"`` over ``size`` x ``size``."""

    size: int = 2
    kind: str = "avg"


SPECS = {"Dense": Dense, "Conv": Conv, "Pool": Pool}


def spec_to_dict(spec) -> dict:
    return {"type": type(spec).__name__, **asdict(spec)}


def spec_from_dict(d: dict):
    d = dict(d)
    return SPECS[d.pop("type")](**d)


def _check_positive_int(name, value):
    if not (isinstance(value, (int, np.integer)) and value > 0):
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# --------------------------------------------------------------------------- layers
class PyramidalLayer:
    """A dense layer of pyramidal cells: ``I[t] = W x[t] + b`` into LIF somata.

    ``W`` has shape ``(units, inputs)``; input of any shape is flattened per sample.
    After a forward pass: ``r`` (rates), ``g`` (gains), ``r_pre`` (presynaptic rates).
    """

    plastic = True
    theta = None  # per-cell thresholds, b's shape (intrinsic plasticity); None: the shared lif.theta
    history = None  # the steps of a forward pass that keeps them (reset(batch, keep=True))

    def __init__(self, in_shape, units: int, lif: LIFParameters, rng, weight_scale: float = 1.0):
        _check_positive_int("units", units)
        self.in_shape = tuple(in_shape)
        self.n_in = int(np.prod(self.in_shape))
        self.out_shape = (units,)
        self.lif = lif
        std = weight_scale / math.sqrt(self.n_in)
        self.W = backend.asarray(rng.normal(0.0, std, size=(units, self.n_in)))
        self.b = backend.xp().zeros(units, dtype=backend.dtype())

    # -- forward ---------------------------------------------------------------
    def reset(self, batch: int, keep: bool = False):
        """Start a forward pass of ``batch`` samples; ``keep``: remember every step in ``history``
        (its input, the potential before it and its current: what BPTT differentiates)."""
        xp = backend.xp()
        shape = (batch, *self.out_shape)
        self.v = xp.zeros(shape, dtype=backend.dtype())
        self._count = xp.zeros(shape, dtype=backend.dtype())
        self._gain = xp.zeros(shape, dtype=backend.dtype())
        self._scratch = xp.empty(shape, dtype=backend.dtype())
        self._current = None
        self.history = [] if keep else None

    def basal(self, x):
        """Basal dendrite current ``W x + b`` for a batch of inputs ``x``, shape (batch, units).

        Computed as ``(W x^T)^T``: the same sums as ``x W^T``, in the layout that BLAS
        multiplies fastest here (OpenBLAS: up to 1.3x on 784-800), and with the same bits.
        """
        xp = backend.xp()
        x = x.reshape(x.shape[0], -1)
        return xp.add((self.W @ x.T).T, self.b, out=xp.empty((x.shape[0], self.W.shape[0]), dtype=self.W.dtype))

    def step(self, x, constant: bool = False):
        """One time step: input ``x`` (spikes or current) to output spikes."""
        if constant and self._current is not None:
            current = self._current
        else:
            current = self.basal(x)
            if constant:
                self._current = current
        spikes = backend.xp().empty_like(self.v)
        if self.history is not None:
            self.history.append((x, self.v.copy(), current))
        lif_layer_step(self.v, current, self._count, self._gain, spikes, self.lif, self._scratch, self.theta)
        return spikes

    def finish(self, T: int, r_pre):
        """Close the pass: ``r = count / T``, ``g = sum phi' / T``; remember ``r_pre``."""
        self.r = self._count / T
        self.g = self._gain / T
        self.r_pre = r_pre
        self._current = None
        return self.r

    # -- learning --------------------------------------------------------------
    def backward(self, e, K):
        """Errors ``e`` (batch, units) carried down through kernel ``K``: ``e K``, input-shaped."""
        return (e @ K).reshape(e.shape[0], *self.in_shape)

    def hebbian(self, post, pre):
        """Hebbian product ``post^T pre / batch`` and bias term ``mean(post)``."""
        batch = post.shape[0]
        return (post / batch).T @ pre.reshape(batch, -1), post.mean(axis=0)

    @property
    def params(self):
        return [self.W, self.b]


class ConvPyramidalLayer(PyramidalLayer):
    """Convolutional pyramidal cells: shared kernels ``W`` of shape ``(C_out, C_in, k, k)``.

    The convolution is an im2col matrix product: the only Python loop is over the ``k*k``
    kernel offsets, never over pixels or channels.
    """

    def __init__(self, in_shape, spec: Conv, lif: LIFParameters, rng, weight_scale: float = 1.0):
        for name in ("channels", "kernel", "stride"):
            _check_positive_int(name, getattr(spec, name))
        if len(in_shape) != 3:
            raise ValueError(f"Conv needs image-shaped input (C, H, W), got shape {tuple(in_shape)}")
        self.in_shape = tuple(in_shape)
        C, H, W = self.in_shape
        k, s, p = spec.kernel, spec.stride, spec.padding
        self.k, self.s, self.p = k, s, p
        self.OH = (H + 2 * p - k) // s + 1
        self.OW = (W + 2 * p - k) // s + 1
        if self.OH <= 0 or self.OW <= 0:
            raise ValueError(f"kernel {k} with padding {p} does not fit input {H}x{W}")
        self.out_shape = (spec.channels, self.OH, self.OW)
        self.lif = lif
        fan_in = C * k * k
        std = weight_scale / math.sqrt(fan_in)
        self.W = backend.asarray(rng.normal(0.0, std, size=(spec.channels, C, k, k)))
        self.b = backend.xp().zeros((spec.channels, 1, 1), dtype=backend.dtype())

    def _buffer(self, name, shape, dtype, zeros=False):
        """Working space kept between calls (a fresh array of these sizes at every time step
        cost page faults: up to 17 % of a conv network's time). Never handed out."""
        buffers = self.__dict__.setdefault("_buffers", {})
        buf = buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            xp = backend.xp()
            buf = buffers[name] = (xp.zeros if zeros else xp.empty)(shape, dtype=dtype)
        return buf

    def _padded(self, x):
        """``x`` (B, C, H, W) with ``p`` zeros around each map (in a kept buffer whose border stays 0)."""
        p = self.p
        if not p:
            return x
        B, C, H, W = x.shape
        xpad = self._buffer("padded", (B, C, H + 2 * p, W + 2 * p), x.dtype, zeros=True)
        xpad[:, :, p : p + H, p : p + W] = x
        return xpad

    def _im2col(self, x):
        """Patches of ``x`` (B, C, H, W) as one matrix (C*k*k, B*OH*OW): a column per output
        position of every image, so that a convolution of the whole batch is one matrix product."""
        B, C = x.shape[:2]
        k, s, OH, OW = self.k, self.s, self.OH, self.OW
        cols = self._buffer("cols", (C, k, k, B, OH, OW), x.dtype)
        if self._gather(x, cols, channels_first=True):
            return cols.reshape(C * k * k, B * OH * OW)
        xpad = self._padded(x).transpose(1, 0, 2, 3)  # (C, B, H + 2p, W + 2p), a view
        for i in range(k):
            for j in range(k):
                cols[:, i, j] = xpad[:, :, i : i + s * OH : s, j : j + s * OW : s]
        return cols.reshape(C * k * k, B * OH * OW)

    def _gather(self, x, cols, channels_first=False):
        """Fill the buffer ``cols`` ((B, C, k, k, OH, OW), or (C, k, k, B, OH, OW) where
        ``channels_first``) with the patches of ``x`` in one Numba pass (optional kernel;
        padding read as 0). False where the kernel is off."""
        fused = backend.kernel(_gather_kernel)
        if fused is None:
            return False
        fused(x, cols.reshape(-1, self.OH, self.OW), self.k, self.s, self.p, x.dtype.type(0), channels_first)
        return True

    def _col2im(self, cols):
        """Adjoint of :meth:`_im2col`: sum columns (C*k*k, B*OH*OW) back into (B, C, H, W)."""
        xp = backend.xp()
        C, H, W = self.in_shape
        k, s, p, OH, OW = self.k, self.s, self.p, self.OH, self.OW
        batch = cols.shape[1] // (OH * OW)
        cols = cols.reshape(C, k, k, batch, OH, OW)
        fused = backend.kernel(_scatter_kernel)
        if fused is not None:  # the sums below, each in the same order, in one pass
            out = xp.zeros((batch, C, H, W), dtype=cols.dtype)
            fused(cols, out, s, p)
            return out
        out = xp.zeros((C, batch, H + 2 * p, W + 2 * p), dtype=cols.dtype)
        for i in range(k):
            for j in range(k):
                out[:, :, i : i + s * OH : s, j : j + s * OW : s] += cols[:, i, j]
        return xp.ascontiguousarray(out[:, :, p : p + H, p : p + W].transpose(1, 0, 2, 3))

    def _patches(self, x):
        """Patches of ``x`` (B, C, H, W) per image, (B, C*k*k, OH*OW): the layout in which one
        product per image gives the output already in (B, C_out, OH, OW) order."""
        B, C = x.shape[:2]
        k, s, OH, OW = self.k, self.s, self.OH, self.OW
        cols = self._buffer("patches", (B, C, k, k, OH, OW), x.dtype)
        if self._gather(x, cols):
            return cols.reshape(B, C * k * k, OH * OW)
        xpad = self._padded(x)
        for i in range(k):
            for j in range(k):
                cols[:, :, i, j] = xpad[:, :, i : i + s * OH : s, j : j + s * OW : s]
        return cols.reshape(B, C * k * k, OH * OW)

    def basal(self, x):
        """Basal current: the convolution ``W * x + b``, shape (B, C_out, OH, OW).

        Large maps: one matrix product per image, ``W (C_out, C*k*k) @ patches (C*k*k, OH*OW)``,
        already in image order (1.1x at 16x16 and 2.7x at 32x32 faster than transposing one
        product's output; one core, OpenBLAS). Small maps (under 256 positions): one product
        over the whole batch, then transposed (1.07x faster at 8x8). Each output is the same
        dot product either way (bit-identical on OpenBLAS; the tests allow float32 rounding).
        """
        xp = backend.xp()
        W2 = self.W.reshape(self.W.shape[0], -1)
        if self.OH * self.OW >= 256:
            out = xp.matmul(W2, self._patches(x)).reshape(x.shape[0], *self.out_shape)  # (B, C_out, OH, OW)
            out += self.b
            return out
        out = W2 @ self._im2col(x)  # (C_out, C*k*k) @ (C*k*k, B*OH*OW)
        out = out.reshape(self.out_shape[0], x.shape[0], self.OH, self.OW).transpose(1, 0, 2, 3)
        return xp.add(out, self.b, out=xp.empty((x.shape[0], *self.out_shape), dtype=out.dtype))

    def backward(self, e, K):
        """Transposed convolution of errors ``e`` (B, C_out, OH, OW) with kernel ``K``."""
        K2 = K.reshape(K.shape[0], -1)
        return self._col2im(K2.T @ self._channels_first(e))  # (C*k*k, C_out) @ (C_out, B*OH*OW)

    def _channels_first(self, a, divisor=None):
        """(B, C, ...) to (C, B * ...), the layout of :meth:`_im2col`'s columns, divided by
        ``divisor`` in the same pass (the same division as dividing first)."""
        xp = backend.xp()
        B, C = a.shape[:2]
        out = xp.empty((C, B, a[0, 0].size), dtype=a.dtype)
        view = a.reshape(B, C, -1).transpose(1, 0, 2)
        if divisor is None:
            out[...] = view
        else:
            xp.divide(view, divisor, out=out)
        return out.reshape(C, -1)

    def hebbian(self, post, pre):
        """Kernel-shared Hebbian product: ``sum_positions post * patch(pre) / batch``."""
        batch = post.shape[0]
        dW = self._channels_first(post, batch) @ self._im2col(pre).T  # (C_out, B*OH*OW) @ (., C*k*k)
        db = post.sum(axis=(2, 3)).mean(axis=0).reshape(self.b.shape)
        return dW.reshape(self.W.shape), db


class PoolLayer:
    """Pooling wiring between layers (no cells, nothing plastic).

    ``avg``: the mean of the spikes in each ``size`` x ``size`` window (a fractional input);
    ``max``: their maximum (a spike if any cell in the window spiked). Errors are carried
    back uniformly (avg) or to the window's most active cell (max, by rate; ties share).
    """

    plastic = False
    history = None

    def __init__(self, in_shape, spec: Pool):
        _check_positive_int("size", spec.size)
        if spec.kind not in ("avg", "max"):
            raise ValueError(f"unknown pool kind {spec.kind!r}: choose 'avg' or 'max'")
        if len(in_shape) != 3 or in_shape[1] % spec.size or in_shape[2] % spec.size:
            raise ValueError(f"Pool({spec.size}) needs (C, H, W) input with H, W divisible by {spec.size}, got {tuple(in_shape)}")
        self.in_shape = tuple(in_shape)
        self.size, self.kind = spec.size, spec.kind
        C, H, W = in_shape
        self.out_shape = (C, H // spec.size, W // spec.size)

    def _windows(self, x):
        B, C, H, W = x.shape
        k = self.size
        return x.reshape(B, C, H // k, k, W // k, k)

    def reset(self, batch: int, keep: bool = False):
        self._count = backend.xp().zeros((batch, *self.out_shape), dtype=backend.dtype())
        self.history = [] if keep else None

    def pool(self, x):
        """Average or maximum over each window, as ``k*k`` strided slices (fast elementwise ops);
        with the optional Numba kernels, one pass in the same order (bit-identical)."""
        xp = backend.xp()
        k = self.size
        fused = backend.kernel(_pool_kernel)
        if fused is not None and x.flags.c_contiguous and x.ndim == 4:
            B, C, H, W = x.shape
            out = xp.empty((B, C, H // k, W // k), dtype=x.dtype)
            fused(x.reshape(B * C, H, W), out.reshape(B * C, H // k, W // k), k, self.kind == "max",
                  x.dtype.type(1.0 / (k * k)))
            return out
        views = [x[:, :, i::k, j::k] for i in range(k) for j in range(k)]
        out = views[0].copy()
        for view in views[1:]:
            if self.kind == "avg":
                out += view
            else:
                xp.maximum(out, view, out=out)
        if self.kind == "avg":
            out *= 1.0 / (k * k)
        return out

    def step(self, x, constant: bool = False):
        out = self.pool(x)
        self._count += out
        if self.history is not None:
            self.history.append((x,))
        return out

    def finish(self, T: int, r_pre):
        self.r = self._count / T
        self.r_pre = r_pre
        return self.r

    def backward(self, e, K=None, pre=None):
        """Carry errors (B, C, H/k, W/k) back to the pooled cells (B, C, H, W); max pooling picks
        the window's most active cells in ``pre`` (default: the rates ``r_pre``)."""
        xp = backend.xp()
        k = self.size
        up = xp.repeat(xp.repeat(e, k, axis=2), k, axis=3)
        if self.kind == "avg":
            return up / (k * k)
        w = self._windows(self.r_pre if pre is None else pre)
        mask = (w == w.max(axis=(3, 5), keepdims=True)).astype(e.dtype)
        mask /= mask.sum(axis=(3, 5), keepdims=True)
        return up * mask.reshape(up.shape)

    @property
    def params(self):
        return []


def _gather_kernel(x, cols, k, s, p, zero, channels_first):
    """Numba kernel of the patch gathering (:meth:`ConvPyramidalLayer._patches`, ``_im2col``):
    the plane ``(b, c, i, j)`` of ``cols`` (planes, OH, OW), in the buffer's order (C, k, k, B)
    where ``channels_first``, else (B, C, k, k), holds ``x[b, c, s*oy + i - p, s*ox + j - p]``
    (``zero`` outside the map)."""
    B, C, H, W = x.shape
    for q in range(cols.shape[0]):
        if channels_first:
            b, j, i, c = q % B, q // B % k, q // (B * k) % k, q // (B * k * k)
        else:
            j, i, c, b = q % k, q // k % k, q // (k * k) % C, q // (k * k * C)
        for oy in range(cols.shape[1]):
            y = s * oy + i - p
            for ox in range(cols.shape[2]):
                xx = s * ox + j - p
                inside = 0 <= y < H and 0 <= xx < W
                cols[q, oy, ox] = x[b, c, y, xx] if inside else zero


def _scatter_kernel(cols, out, s, p):
    """Numba kernel of :meth:`ConvPyramidalLayer._col2im` into zeros ``out`` (B, C, H, W):
    ``out[b, c, s*oy + i - p, s*ox + j - p] += cols[c, i, j, b, oy, ox]``, offsets ``(i, j)`` in
    the order of the slices there, so that each sum is added up in the same order."""
    H, W = out.shape[2], out.shape[3]
    for c in range(cols.shape[0]):
        for i in range(cols.shape[1]):
            for j in range(cols.shape[2]):
                for b in range(cols.shape[3]):
                    for oy in range(cols.shape[4]):
                        y = s * oy + i - p
                        if 0 <= y < H:
                            for ox in range(cols.shape[5]):
                                xx = s * ox + j - p
                                if 0 <= xx < W:
                                    out[b, c, y, xx] += cols[c, i, j, b, oy, ox]


def _pool_kernel(x, out, k, take_max, scale):
    """Numba kernel of :meth:`PoolLayer.pool` on maps (N, H, W): the window's entries combined
    in the order of the slices there (row by row), then ``* scale`` for the average."""
    for n in range(x.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                acc = x[n, i * k, j * k]
                for di in range(k):
                    for dj in range(k):
                        if di == 0 and dj == 0:
                            continue
                        y = x[n, i * k + di, j * k + dj]
                        if not take_max:
                            acc = acc + y
                        elif y != y or y > acc:  # np.maximum: NaN wins
                            acc = y
                out[n, i, j] = acc if take_max else acc * scale


def build(specs, in_shape, lif: LIFParameters, rng, weight_scale: float = 1.0):
    """Instantiate layers from specs (ints mean ``Dense``), chaining their shapes."""
    layers = []
    shape = tuple(in_shape)
    for spec in specs:
        if isinstance(spec, (int, np.integer)):
            spec = Dense(int(spec))
        if isinstance(spec, Dense):
            layer = PyramidalLayer(shape, spec.units, lif, rng, weight_scale)
        elif isinstance(spec, Conv):
            layer = ConvPyramidalLayer(shape, spec, lif, rng, weight_scale)
        elif isinstance(spec, Pool):
            layer = PoolLayer(shape, spec)
        else:
            raise TypeError(f"unknown layer spec {spec!r}: use an int, Dense, Conv or Pool")
        layer.spec = spec
        layers.append(layer)
        shape = layer.out_shape
    if not layers or not layers[-1].plastic:
        raise ValueError("the last layer must be a Dense or Conv layer of pyramidal cells (the output)")
    return layers

"""The spiking neuron: a discrete-time leaky integrate-and-fire (LIF) soma.

At each time step ``t`` the somatic potential integrates its input current ``I[t]``::

    v[t] = alpha * v[t-1] + I[t]            (alpha = exp(-dt / tau_m))
    s[t] = H(v[t] - theta)                  (a spike when v reaches threshold)
    v[t] = v[t] - theta * s[t]              (soft reset: subtract, keep the excess)

Over ``T`` steps the firing rate is ``r = (1/T) sum_t s[t]`` and the *local gain*
``g = (1/T) sum_t phi'(v[t])`` averages a surrogate derivative ``phi'`` of the spike
nonlinearity around threshold, evaluated on the potential before reset. The gain is the
soma's sensitivity to its input, known to the cell itself.

Intrinsic plasticity (optional, :func:`adapt_threshold`): each cell ``i`` may carry its own
threshold ``theta_i`` in place of the shared ``theta``, nudged after every training
mini-batch towards a target firing rate ``rho``::

    theta_i <- max(theta_i + eta_theta * (rbar_i - rho), theta_min)

A cell that fires less than ``rho`` lowers its threshold (it becomes more excitable), one
that fires more raises it. The functions below take such per-cell thresholds as ``theta``
(an array that broadcasts against the potentials); ``None`` means the shared
``params.theta``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from . import backend

SURROGATES = ("triangle", "box", "fast_sigmoid")


@dataclass(frozen=True)
class LIFParameters:
    """Parameters of the LIF soma and its surrogate gain.

    tau_m : membrane time constant in time steps (``inf`` gives a non-leaky IF neuron).
    theta : firing threshold.
    surrogate : ``"triangle"`` (``max(0, 1 - |v - theta| / width)``), ``"box"``
    (``1`` where ``|v - theta| < width``) or ``"fast_sigmoid"``
    (``1 / (1 + |v - theta| / width)^2``, never zero: a silent cell still learns).
    width : half-width of the surrogate window, in units of potential.
    """

    tau_m: float = math.inf
    theta: float = 1.0
    surrogate: str = "triangle"
    width: float = 1.0

    def __post_init__(self):
        if not self.tau_m > 0:
            raise ValueError(f"tau_m must be > 0 (time steps), got {self.tau_m}")
        if not self.theta > 0:
            raise ValueError(f"theta must be > 0, got {self.theta}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}: choose one of {SURROGATES}")
        if not self.width > 0:
            raise ValueError(f"surrogate width must be > 0, got {self.width}")

    @property
    def alpha(self) -> float:
        """Leak factor per step, ``alpha = exp(-1 / tau_m)`` (1 for a non-leaky neuron)."""
        return math.exp(-1.0 / self.tau_m)


def lif_step(v, current, params: LIFParameters, theta=None):
    """One LIF time step. Returns ``(v_pre, spikes, v_next)``.

    ``v_pre = alpha * v + current`` is the potential before reset (the surrogate reads it),
    ``spikes = H(v_pre - theta)`` as 0/1 floats, ``v_next = v_pre - theta * spikes``.
    ``theta``: per-cell thresholds (intrinsic plasticity), or ``None`` for ``params.theta``.
    """
    theta = params.theta if theta is None else theta
    v_pre = v + current if params.alpha == 1.0 else params.alpha * v + current
    spikes = (v_pre >= theta).astype(v_pre.dtype)
    return v_pre, spikes, v_pre - theta * spikes


def surrogate_gain(v, params: LIFParameters, theta=None):
    """The surrogate derivative ``phi'(v)`` of the spike nonlinearity at potential ``v``.

    triangle:     ``phi'(v) = max(0, 1 - |v - theta| / width)``
    box:          ``phi'(v) = 1 if |v - theta| < width else 0``
    fast_sigmoid: ``phi'(v) = 1 / (1 + |v - theta| / width)^2``

    ``theta``: per-cell thresholds, or ``None`` for ``params.theta``.
    """
    xp = backend.xp()
    dist = xp.abs(v - (params.theta if theta is None else theta))
    if params.surrogate == "triangle":
        return xp.maximum(0.0, 1.0 - dist / params.width).astype(v.dtype, copy=False)
    if params.surrogate == "box":
        return (dist < params.width).astype(v.dtype)
    dist *= 1.0 / params.width  # in place from here on: this runs at every time step
    dist += 1.0
    dist *= dist
    return xp.reciprocal(dist, out=dist)


SURROGATE_CODES = {name: i for i, name in enumerate(SURROGATES)}


def lif_layer_step(v, current, count, gain, spikes, params: LIFParameters, scratch=None, theta=None):
    """One time step of a layer of somata, in place: what :func:`lif_step` and
    :func:`surrogate_gain` compute, without allocating.

    On return ``v`` holds the potential after reset, ``spikes`` the spikes ``s[t]`` (0/1),
    and ``count += s[t]``, ``gain += phi'(v_pre)``. The arithmetic is that of the two
    reference functions, operation for operation, so the results are bit-identical to
    them (the tests check it). All arrays are C-contiguous and of one shape and dtype;
    ``scratch`` (the same) is optional working space. With the optional Numba kernels on
    (:func:`microcircuit.backend.kernel`) the whole step is one loop over the cells; on CuPy,
    with the same switch, one fused CuPy kernel (:func:`_lif_cuda`).

    ``theta``: per-cell thresholds of shape ``(units,)`` (dense) or ``(channels, 1, 1)``
    (conv: one per feature map), or ``None`` for the shared ``params.theta``. Those take
    their own kernel (:func:`_lif_kernel_cells`); the shared-threshold path is untouched.
    """
    xp = backend.xp()
    fused = backend.kernel(_lif_kernel if theta is None else _lif_kernel_cells)
    on_gpu = None if fused is not None else backend.cuda_kernel(_lif_cuda(params.surrogate))
    if on_gpu is not None:  # CuPy: one launch; per-cell thresholds broadcast over the batch (and the map)
        alpha, shared, width, inv_width, _ = _kernel_scalars(params, v.dtype)
        on_gpu(current, shared if theta is None else theta.astype(v.dtype, copy=False), alpha, width, inv_width,
               v, count, gain, spikes)
        return
    if (fused is not None and v.flags.c_contiguous and current.flags.c_contiguous and count.flags.c_contiguous
            and gain.flags.c_contiguous and spikes.flags.c_contiguous):
        flat = (v.reshape(-1), current.reshape(-1), count.reshape(-1), gain.reshape(-1), spikes.reshape(-1))
        if theta is None:
            fused(*flat, *_kernel_scalars(params, v.dtype))
        else:  # the threshold of each cell of one sample (a conv layer's repeated over its map)
            cells = xp.ascontiguousarray(xp.broadcast_to(theta, v.shape[1:]), dtype=v.dtype).reshape(-1)
            alpha, _, width, inv_width, code = _kernel_scalars(params, v.dtype)
            fused(*flat, cells, alpha, width, inv_width, code)
        return
    d = xp.empty_like(v) if scratch is None else scratch
    _lif_numpy(v, current, count, gain, spikes, d, params, xp, params.theta if theta is None else theta)


def _lif_numpy(v, current, count, gain, spikes, d, params, xp, theta):
    """The NumPy body of :func:`lif_layer_step` (``d``: scratch of ``v``'s shape; ``theta``:
    the shared threshold or per-cell thresholds)."""
    if params.alpha != 1.0:
        v *= params.alpha
    v += current  # v_pre
    spikes[...] = v >= theta  # s = H(v_pre - theta)
    count += spikes
    xp.subtract(v, theta, out=d)
    xp.abs(d, out=d)  # |v_pre - theta|, then phi'(v_pre) as surrogate_gain computes it
    if params.surrogate == "triangle":
        d /= params.width
        xp.subtract(1.0, d, out=d)
        xp.maximum(0.0, d, out=d)
    elif params.surrogate == "box":
        d[...] = d < params.width
    else:
        d *= 1.0 / params.width
        d += 1.0
        d *= d
        xp.reciprocal(d, out=d)
    gain += d
    xp.multiply(spikes, theta, out=d)
    v -= d  # v_pre - theta * s: the soft reset


@functools.lru_cache(maxsize=64)
def _kernel_scalars(params: LIFParameters, dtype):
    """The kernel's scalar arguments, in the arrays' dtype (computed once per parameter set)."""
    dt = dtype.type
    return dt(params.alpha), dt(params.theta), dt(params.width), dt(1.0 / params.width), SURROGATE_CODES[params.surrogate]


_SURROGATE_CUDA = {  # phi'(v_pre) from a = |v_pre - theta|, as _lif_kernel computes it
    "triangle": "a = one - a / width; if (a < zero) a = zero;",
    "box": "a = a < width ? one : zero;",
    "fast_sigmoid": "a = a * inv_width + one; a = one / (a * a);",
}


@functools.lru_cache(maxsize=None)
def _lif_cuda(surrogate: str) -> tuple:
    """The CuPy kernel of :func:`lif_layer_step` (``backend.cuda_kernel``): :func:`_lif_kernel`'s
    loop body for one cell. ``theta`` is the shared threshold or an array of per-cell thresholds
    that broadcasts against ``v``. (``a < 0 ? -a : a`` may leave -0, or a NaN's sign bit, where ``abs``
    clears it; no surrogate below can tell the two apart.)"""
    body = ("const T one = 1, zero = 0; T x = alpha * v + current; T a = x - theta; if (a < zero) a = -a; "
            + _SURROGATE_CUDA[surrogate]
            + " gain += a; T s = x >= theta ? one : zero; spikes = s; count += s; v = x - theta * s;")
    return ("T current, T theta, T alpha, T width, T inv_width", "T v, T count, T gain, T spikes", body,
            f"microcircuit_lif_{surrogate}")


def _lif_kernel(v, current, count, gain, spikes, alpha, theta, width, inv_width, surrogate):
    """Numba kernel of :func:`lif_layer_step` on flat arrays (scalars in the arrays' dtype)."""
    one, zero = theta / theta, theta - theta
    for i in range(v.size):
        x = alpha * v[i] + current[i]  # alpha = 1: 1 * v is v, so this is v + current exactly
        a = abs(x - theta)
        if surrogate == 0:  # triangle: max(0, 1 - a / width), NaN kept as np.maximum keeps it
            a = one - a / width
            if a < zero:
                a = zero
        elif surrogate == 1:  # box
            a = one if a < width else zero
        else:  # fast_sigmoid
            a = a * inv_width + one
            a = one / (a * a)
        gain[i] += a
        s = one if x >= theta else zero
        spikes[i] = s
        count[i] += s
        v[i] = x - theta * s


def _lif_kernel_cells(v, current, count, gain, spikes, thetas, alpha, width, inv_width, surrogate):
    """:func:`_lif_kernel` with a threshold per cell: ``thetas`` holds those of one sample's cells
    and the flat arrays hold the samples one after another, so cell ``i`` of each reads ``thetas[i]``.
    Its loop body repeats :func:`_lif_kernel`'s: a compiled kernel cannot call a plain Python
    helper, and compiling one here would import Numba with this module (Pyodide has none)."""
    m = thetas.size
    for lo in range(0, v.size, m):  # a sample at a time, as views indexed from 0: the loop vectorises
        v_, current_, count_, gain_, spikes_ = v[lo:lo + m], current[lo:lo + m], count[lo:lo + m], \
            gain[lo:lo + m], spikes[lo:lo + m]
        for i in range(m):
            theta = thetas[i]
            one, zero = theta / theta, theta - theta
            x = alpha * v_[i] + current_[i]
            a = abs(x - theta)
            if surrogate == 0:
                a = one - a / width
                if a < zero:
                    a = zero
            elif surrogate == 1:
                a = one if a < width else zero
            else:
                a = a * inv_width + one
                a = one / (a * a)
            gain_[i] += a
            s = one if x >= theta else zero
            spikes_[i] = s
            count_[i] += s
            v_[i] = x - theta * s


THRESHOLD_FLOOR = 0.1
"""``theta_min`` as a fraction of the initial threshold: an adapted threshold never falls
below ``0.1 * theta``. It must stay above 0: at ``theta <= 0`` a cell fires at every step
whatever its input (``v >= theta`` holds at rest) and the soft reset would *add* charge, so
the cell would carry no information. A tenth lets a silent cell become ten times as
excitable, enough for a rare weak input to reach threshold, while every cell stays a
threshold unit. (No ceiling: a saturated cell's threshold may rise as far as it needs.)"""


def adapt_threshold(theta, rates, target_rate: float, eta: float, theta_min: float):
    """Intrinsic plasticity: one homeostatic step of per-cell thresholds, in place.

        theta_i <- max(theta_i + eta * (rbar_i - target_rate), theta_min)

    ``rates`` (batch, units) or (batch, channels, H, W) are the rates ``r`` of one mini-batch;
    ``rbar_i`` is cell ``i``'s mean rate over the batch, and for a conv layer over the
    positions of its feature map too (one threshold per channel, shared like its kernel).
    ``theta`` has shape (units,) or (channels, 1, 1). Returns ``theta``.
    """
    xp = backend.xp()
    rbar = rates.reshape(rates.shape[0], theta.shape[0], -1).mean(axis=(0, 2)).reshape(theta.shape)
    theta += eta * (rbar - target_rate)
    return xp.maximum(theta, theta_min, out=theta)


def simulate(currents, params: LIFParameters = LIFParameters()):
    """Run a population of LIF somata over time on a current array of shape ``(T, ...)``.

    Returns a dict with ``spikes`` and ``v`` (potential after reset), both ``(T, ...)``, the
    rate ``r`` and the gain ``g`` (both ``(...)``). For plots and teaching; networks use
    :func:`lif_step` directly so that memory does not grow with ``T``.
    """
    xp = backend.xp()
    currents = backend.asarray(currents)
    T = currents.shape[0]
    v = xp.zeros(currents.shape[1:], dtype=currents.dtype)
    spikes = xp.zeros_like(currents)
    trace = xp.zeros_like(currents)
    gain = xp.zeros_like(v)
    for t in range(T):
        v_pre, spikes[t], v = lif_step(v, currents[t], params)
        gain += surrogate_gain(v_pre, params)
        trace[t] = v
    return {"spikes": spikes, "v": trace, "r": spikes.mean(axis=0), "g": gain / T}


def constant_input_spike_count(current: float, T: int, theta: float = 1.0) -> int:
    """Spikes of a non-leaky soft-reset IF neuron with constant input over ``T`` steps.

    Charge is conserved by the soft reset: after ``t`` steps ``v = t * I - theta * n(t)``
    with ``0 <= v < theta``, so ``n(T) = floor(T * I / theta)`` for ``0 <= I <= theta``
    (and ``T`` once ``I >= theta``, at most one spike per step).
    """
    if current <= 0:
        return 0
    return min(T, math.floor(T * current / theta))

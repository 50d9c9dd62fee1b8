"""Optimisers and learning-rate schedules, applied to any rule's update.

A rule hands over, per parameter, the update per unit learning rate ``u`` (for SC-FA
``u = -delta^T r_pre``; for the microcircuit the Hebbian product ``(E+ - E-)^T r_pre``).
Plain SGD moves along it, ``p <- p + lr * u``; the optimisers below treat ``-u`` as the
gradient. Parameters are updated in place.
"""

from __future__ import annotations

import math

from . import backend

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")


def schedule(kind: str, lr: float, progress: float, warmup: float = 0.0) -> float:
    """Learning rate at ``progress`` in [0, 1] of training.

    constant: ``lr``;  cosine: ``lr * (1 + cos(pi * progress)) / 2``;
    step: ``lr * 0.1 ** floor(3 * progress)`` (two drops by 10x, at 1/3 and 2/3).
    A linear warm-up over the first ``warmup`` fraction multiplies any of them.
    """
    if kind == "constant":
        out = lr
    elif kind == "cosine":
        out = lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    elif kind == "step":
        out = lr * 0.1 ** min(math.floor(3 * progress), 2)
    else:
        raise ValueError(f"unknown lr_schedule {kind!r}: choose one of {SCHEDULES}")
    if warmup > 0 and progress < warmup:
        out *= (progress + 1e-3) / warmup
    return out


class SGD:
    """SGD with momentum and weight decay: ``m <- mu m + u - wd p``, ``p <- p + lr m``."""

    def __init__(self, momentum: float = 0.9, weight_decay: float = 0.0):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.m = None

    def step(self, params, updates, lr: float):
        if self.m is None:
            self.m = [backend.xp().zeros_like(p) for p in params]
        for p, u, m in zip(params, updates, self.m):
            m *= self.momentum
            m += u
            if self.weight_decay:
                m -= self.weight_decay * p
            p += lr * m

    def state(self) -> dict:
        return {f"m_{i}": backend.to_numpy(m) for i, m in enumerate(self.m or [])}

    def load_state(self, arrays: dict):
        n = len([k for k in arrays if k.startswith("m_")])
        self.m = [backend.asarray(arrays[f"m_{i}"]) for i in range(n)] or None


class Adam:
    """Adam on the gradient ``-u``: ``p <- p - lr * m_hat / (sqrt(v_hat) + eps)``."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.m = self.v = None
        self.t = 0

    def step(self, params, updates, lr: float):
        xp = backend.xp()
        if self.m is None:
            self.m = [xp.zeros_like(p) for p in params]
            self.v = [xp.zeros_like(p) for p in params]
        if getattr(self, "_scratch", None) is None:
            self._scratch = [xp.empty_like(p) for p in params]
        self.t += 1
        c1 = 1 - self.beta1**self.t
        c2 = 1 - self.beta2**self.t
        # m_hat / (sqrt(v_hat) + eps) = sqrt(c2) / c1 * m / (sqrt(v) + eps * sqrt(c2))
        step = lr * math.sqrt(c2) / c1
        eps = self.eps * math.sqrt(c2)
        fused = backend.kernel(_adam_kernel)
        on_gpu = backend.cuda_kernel(_ADAM_CUDA)
        for p, u, m, v, tmp in zip(params, updates, self.m, self.v, self._scratch):
            if on_gpu is not None and all(a.dtype == p.dtype for a in (u, m, v)):
                dt = p.dtype.type
                on_gpu(u, dt(self.beta1), dt(1 - self.beta1), dt(self.beta2), dt(1 - self.beta2), dt(eps), dt(step),
                       dt(lr * self.weight_decay), p, m, v)
                continue
            if fused is not None and all(a.flags.c_contiguous and a.dtype == p.dtype for a in (p, u, m, v)):
                dt = p.dtype.type
                fused(p.reshape(-1), u.reshape(-1), m.reshape(-1), v.reshape(-1), dt(self.beta1), dt(1 - self.beta1),
                      dt(self.beta2), dt(1 - self.beta2), dt(eps), dt(step), dt(lr * self.weight_decay))
                continue
            # in place, into one scratch buffer per parameter: no allocation in the hot loop
            m *= self.beta1
            xp.multiply(u, 1 - self.beta1, out=tmp)
            m -= tmp
            v *= self.beta2
            xp.multiply(u, u, out=tmp)
            tmp *= 1 - self.beta2
            v += tmp
            xp.sqrt(v, out=tmp)
            tmp += eps
            xp.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp
            if self.weight_decay:
                p -= lr * self.weight_decay * p

    def state(self) -> dict:
        out = {"t": self.t}
        for i, (m, v) in enumerate(zip(self.m or [], self.v or [])):
            out[f"m_{i}"], out[f"v_{i}"] = backend.to_numpy(m), backend.to_numpy(v)
        return out

    def load_state(self, arrays: dict):
        self.t = int(arrays.get("t", 0))
        n = len([k for k in arrays if k.startswith("m_")])
        self.m = [backend.asarray(arrays[f"m_{i}"]) for i in range(n)] or None
        self.v = [backend.asarray(arrays[f"v_{i}"]) for i in range(n)] or None


def _adam_kernel(p, u, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step, decay):
    """Numba kernel of :meth:`Adam.step` for one parameter (flat arrays, scalars in their dtype):
    one pass instead of twelve, each element computed as the NumPy code above computes it."""
    for i in range(p.size):
        ui = u[i]
        mi = m[i] * beta1 - ui * one_minus_beta1
        vi = v[i] * beta2 + (ui * ui) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        pi = p[i] - mi / (math.sqrt(vi) + eps) * step
        if decay != 0:
            pi = pi - decay * pi
        p[i] = pi


_ADAM_CUDA = (
    "T u, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T step, T decay", "T p, T m, T v",
    "T mi = m * beta1 - u * one_minus_beta1; T vi = v * beta2 + (u * u) * one_minus_beta2; m = mi; v = vi; "
    "T pi = p - mi / (sqrt(vi) + eps) * step; if (decay != (T)0) pi = pi - decay * pi; p = pi;",
    "microcircuit_adam",
)
"""The CuPy kernel of :meth:`Adam.step` (``backend.cuda_kernel``): :func:`_adam_kernel`'s loop body."""


def make_optimizer(name: str, momentum: float = 0.9, weight_decay: float = 0.0):
    if name == "sgd":
        return SGD(momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {OPTIMIZERS}")

"""The network's settings in one frozen object: defaults, validation, JSON round trip;
and the checks of what a network is handed (inputs and labels).

    >>> cfg = NetworkConfig(layers=[784, 800, 10], rule="scfa", T=8)
    >>> cfg.to_dict()["rule"], cfg.is_dense()
    ('scfa', True)

:class:`~microcircuit.network.Network` reads only this; the command line builds its
``train`` options from its fields (their ``help`` metadata); checkpoints and logs store
:meth:`NetworkConfig.to_dict`. Every default and every check of a setting lives here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .circuit import MODES
from .encoding import ENCODINGS
from .layers import SPECS, Dense, spec_from_dict, spec_to_dict
from .losses import LOSSES
from .neurons import SURROGATES
from .optim import OPTIMIZERS, SCHEDULES
from .feedback import FEEDBACKS
from .rules import REGISTRY, RULES

CHOICES = {"rule": RULES, "mode": MODES, "feedback": FEEDBACKS, "loss": LOSSES, "encoding": ENCODINGS,
           "optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES, "surrogate": SURROGATES}
"""The settings that name one of a few choices, and those choices (from their modules)."""


def _setting(default, text):
    return field(default=default, metadata={"help": text})


def decode_layers(layers) -> tuple:
    """Layers as ``Network`` takes them, from any form (JSON included): the input size (int)
    or shape (tuple), then ints (dense layers) and ``Dense``/``Conv``/``Pool`` specs."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"layers must be a list such as [784, 800, 10], got {layers!r}")
    out = []
    for i, s in enumerate(layers):
        if isinstance(s, dict):
            s = spec_from_dict(s)
        elif isinstance(s, (list, tuple)) and s and all(_count(v) for v in s):
            s = tuple(int(v) for v in s)
        elif _count(s):
            s = int(s)
        elif not isinstance(s, tuple(SPECS.values())) or i == 0:
            raise ValueError(f"layers[{i}] = {s!r}: use an int > 0 (a number of cells), a shape of ints > 0 "
                             f"(input only), or Dense/Conv/Pool")
        out.append(s)
    return tuple(out)


def _count(v) -> bool:
    """A positive int (not a bool)."""
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0


def encode_layers(layers) -> list:
    """Layers in JSON form: ints, lists (the input shape) and dicts (``{"type": "Conv", ...}``)."""
    return [list(s) if isinstance(s, tuple) else (s if isinstance(s, int) else spec_to_dict(s)) for s in layers]


def is_dense(layers) -> bool:
    """True when the input is flat and every layer is dense: such a network takes flat data."""
    layers = decode_layers(layers)
    return isinstance(layers[0], int) and all(isinstance(s, (int, Dense)) for s in layers[1:])


def _python(value):
    """NumPy scalars as Python ones (``np.int64(1)`` -> ``1``), so that settings go to JSON."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class NetworkConfig:
    """Every setting of a :class:`~microcircuit.network.Network`, checked when made."""

    layers: tuple = _setting((784, 800, 10), "input size or shape first, then layers (ints: dense)")
    rule: str = _setting("microcircuit", "the learning rule")
    T: int = _setting(16, "time steps per sample")
    mode: str = _setting("rate", "the microcircuit's error cells")
    T_e: int = _setting(32, "time steps of spiking error cells")
    feedback: str | None = _setting(None, "the microcircuit's feedback wiring (none: sign_concordant)")
    loss: str = _setting("ce", "the spiking error (ce: cross-entropy on spike counts)")
    output_scale: float = _setting(8.0, "c in softmax(c r) for the ce loss")
    encoding: str = _setting("direct", "input spikes (direct: a constant current)")
    optimizer: str = _setting("adam", "the optimiser")
    lr: float = _setting(1e-3, "learning rate")
    momentum: float = _setting(0.9, "SGD momentum, in [0, 1)")
    weight_decay: float = _setting(0.0, "weight decay")
    lr_schedule: str = _setting("cosine", "the learning-rate schedule")
    warmup: float = _setting(0.0, "fraction of the schedule with a linear lr warm-up")
    epochs: int = _setting(10, "length of the lr schedule in epochs (a run trains this many)")
    batch_size: int = _setting(64, "mini-batch size")
    tau_m: float = _setting(math.inf, "membrane time constant (steps; inf: no leak)")
    theta: float = _setting(1.0, "firing threshold")
    surrogate: str = _setting("triangle", "the surrogate gain")
    width: float = _setting(1.0, "surrogate width")
    threshold_adaptation: float = _setting(0.0, "intrinsic plasticity: eta_theta, the hidden cells' threshold "
                                                "step per mini-batch (0: thresholds fixed)")
    target_rate: float = _setting(0.1, "intrinsic plasticity: rho, the firing rate each hidden cell's "
                                       "threshold steers it to, in (0, 1)")
    weight_scale: float = _setting(1.0, "initial weights: normal, std weight_scale / sqrt(fan_in)")
    augment: int = _setting(0, "random shifts of training images by up to this many pixels")
    flip: bool = _setting(False, "mirror training images left-right at random")
    seed: int = _setting(0, "seeds weights, feedback, data order and every spike noise")

    def __post_init__(self):
        for f in dataclasses.fields(self):  # NumPy scalars as Python ones: the config goes to JSON
            object.__setattr__(self, f.name, _python(getattr(self, f.name)))
        object.__setattr__(self, "layers", decode_layers(self.layers))
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices and not (name == "feedback" and value is None):
                raise ValueError(f"unknown {name} {value!r}: choose one of {choices}")
        for name in ("T", "T_e", "epochs", "batch_size"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), numbers.Integral)
                   and getattr(self, name) > 0, "a positive int")
        for name in ("lr", "output_scale", "weight_scale", "theta", "width"):
            v = getattr(self, name)
            _check(name, v, _real(v) and math.isfinite(v) and v > 0, "a finite number > 0")
        _check("tau_m", self.tau_m, _real(self.tau_m) and self.tau_m > 0, "a number > 0 (inf: no leak)")
        _check("warmup", self.warmup, _real(self.warmup) and 0 <= self.warmup <= 1, "a fraction of training in [0, 1]")
        _check("threshold_adaptation", self.threshold_adaptation, _real(self.threshold_adaptation)
               and math.isfinite(self.threshold_adaptation) and self.threshold_adaptation >= 0,
               "a finite number >= 0 (0: thresholds fixed)")
        _check("target_rate", self.target_rate, _real(self.target_rate) and 0 < self.target_rate < 1,
               "a firing rate in (0, 1) (spikes per time step)")
        _check("weight_decay", self.weight_decay, _real(self.weight_decay) and self.weight_decay >= 0, "a number >= 0")
        _check("momentum", self.momentum, _real(self.momentum) and 0 <= self.momentum < 1, "a number in [0, 1)")
        _check("augment", self.augment, isinstance(self.augment, numbers.Integral) and self.augment >= 0,
               "an int >= 0 (pixels)")
        _check("flip", self.flip, isinstance(self.flip, (bool, np.bool_)), "True or False")
        _check("seed", self.seed, isinstance(self.seed, numbers.Integral) and self.seed >= 0, "a non-negative int")
        own = REGISTRY[self.rule].options
        if "mode" not in own and (self.mode != "rate" or self.feedback is not None):
            raise ValueError(f"mode and feedback are options of rule='microcircuit', not of rule={self.rule!r}: "
                             f"drop them or use rule='microcircuit'")
        if len(self.layers) < 2:
            raise ValueError("layers needs the input size and at least one layer, e.g. [784, 800, 10]")

    # ------------------------------------------------------------------ derived
    @property
    def in_shape(self) -> tuple:
        """The input's shape: ``(784,)`` or ``(C, H, W)``."""
        first = self.layers[0]
        return (first,) if isinstance(first, int) else first

    def is_dense(self) -> bool:
        """True for a dense network on flat inputs (load its data with ``flatten=True``)."""
        return is_dense(self.layers)

    def replace(self, **changes) -> NetworkConfig:
        """A copy with ``changes`` (checked like any new config)."""
        return dataclasses.replace(self, **changes)

    # --------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """The settings as JSON-friendly values (layers by :func:`encode_layers`)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["layers"] = encode_layers(self.layers)
        return out

    @classmethod
    def from_dict(cls, d: dict, **overrides) -> NetworkConfig:
        """Rebuild from :meth:`to_dict` (or a log's or checkpoint's ``config``), with ``overrides``.

        Unknown keys are an error naming them; keys that earlier versions stored are accepted.
        """
        d = {**d, **overrides}
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown network settings {unknown}: see microcircuit.config.NetworkConfig")
        return cls(**d)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check(name, value, ok, what):
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")



# ------------------------------------------------------- what a network is handed
def check_inputs(x, in_shape):
    """Inputs checked at the boundary, on the backend as ``(N, *in_shape)``."""
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    n_in = int(np.prod(in_shape))
    if x.ndim < 1 or int(np.prod(x.shape[1:])) != n_in:
        raise ValueError(
            f"input has shape {tuple(x.shape)} but the network expects (n_samples, {n_in}) "
            f"or (n_samples, *{in_shape}); check `layers[0]` or reshape the data"
        )
    if x.shape[0] == 0:
        raise ValueError(f"x has no samples (shape {tuple(x.shape)}): pass at least one")
    if np.issubdtype(np.dtype(x.dtype), np.integer) and float(x.max()) > 1:
        warnings.warn(f"x holds integers up to {int(x.max())} (uint8 images?) but the network expects values in "
                      f"[0, 1]: scale them (x / 255) or load them with microcircuit.data", UserWarning, stacklevel=4)
    floats = np.dtype(x.dtype).kind == "f"
    x = backend.asarray(x, dtype=backend.dtype()).reshape(x.shape[0], *in_shape)
    if not bool(backend.xp().isfinite(x).all()):
        raise ValueError("input contains NaN or inf; clean the data (e.g. np.nan_to_num) before training")
    top = float(x.max()) if floats else 0.0
    if top > 1:
        warnings.warn(f"x holds values up to {top:g} (raw pixels, 0..255?) but the network expects values "
                      f"in [0, 1]: scale them (x / 255) or load them with microcircuit.data", UserWarning, stacklevel=4)
    return x


def check_labels(y, n: int, n_classes: int):
    """``n`` labels checked to be class indices in ``[0, n_classes)``, on the backend as int32 (32-bit
    safe: a browser's NumPy counts and indexes in int32)."""
    y = np.asarray(backend.to_numpy(y))
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must be a 1-d array of {n} class indices, got shape {y.shape}")
    if y.dtype.kind not in "iuf":
        raise ValueError(f"labels must be integer class indices, got {y.dtype.name} values"
                         + (f" such as {y.flat[0]!r}" if y.size else ""))
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("labels must be integer class indices")
        y = y.astype(np.int32)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"label out of range: labels must be in [0, {n_classes - 1}] for "
            f"{n_classes} output cells, found {int(y.min())}..{int(y.max())}"
        )
    return backend.asarray(y.astype(np.int32))

"""``Network``: a multi-layer spiking network of pyramidal cells and the rule that trains it.

    >>> net = Network([784, 800, 10], rule="microcircuit", T=16, seed=0)
    >>> net.fit(x_train, y_train, epochs=5)
    >>> net.evaluate(x_test, y_test)["accuracy"]

One training step: encode the input, run every layer for ``T`` steps (no graph is kept),
compute the global spiking error on the output rates, let the rule carry it down to local
updates, and let the optimiser apply them. All five rules share this code path.
"""

from __future__ import annotations

import io
import json
import math
import numbers

import numpy as np

from . import __version__, backend
from .circuit import Microcircuit
from .encoding import ENCODINGS, encode
from .files import write_atomic
from .layers import build, spec_from_dict, spec_to_dict
from .losses import SpikingError, one_hot
from .neurons import LIFParameters
from .optim import SCHEDULES, make_optimizer, schedule
from .rules import DirectFeedbackAlignment, FeedbackAlignment

RULES = ("bp", "fa", "dfa", "scfa", "microcircuit")


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weights (learning rate too high?)."""


def make_rule(name: str, mode: str = "rate", T_e: int = 32, feedback: str | None = None, seed: int = 0):
    """The rule called ``name``: one of ``bp``, ``fa``, ``dfa``, ``scfa``, ``microcircuit``."""
    if name == "bp":
        return FeedbackAlignment("symmetric")
    if name == "fa":
        return FeedbackAlignment("random")
    if name == "scfa":
        return FeedbackAlignment("sign_concordant")
    if name == "dfa":
        return DirectFeedbackAlignment()
    if name == "microcircuit":
        return Microcircuit(mode=mode, T_e=T_e, feedback=feedback or "sign_concordant", seed=seed)
    raise ValueError(f"unknown rule {name!r}: choose one of {RULES}")


def angle_degrees(a, b) -> float:
    """Angle between two arrays seen as vectors, in degrees (90 if either is zero)."""
    a, b = a.astype("float64").ravel(), b.astype("float64").ravel()
    na, nb = float((a * a).sum()) ** 0.5, float((b * b).sum()) ** 0.5
    if na == 0 or nb == 0:
        return 90.0
    cos = float((a * b).sum()) / (na * nb)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def relative_difference(updates_a, updates_b) -> float:
    """Largest ``|a - b| / max|b|`` over the weight and bias updates of two rules.

    Takes two lists as returned by ``Network.updates`` (``(dW, db)`` or ``None`` per layer):
    the yardstick of the book's equivalence checks.
    """
    worst = 0.0
    for ua, ub in zip(updates_a, updates_b):
        for pa, pb in zip(ua or (), ub or ()):
            a, b = backend.to_numpy(pa).astype(np.float64), backend.to_numpy(pb).astype(np.float64)
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)))
    return worst


class Network:
    """A spiking network of pyramidal layers trained by a local rule.

    Parameters
    ----------
    layers : sequence
        Input size or shape first (``784`` or ``(3, 32, 32)``), then layer specs: an int is a
        dense layer of that many cells; ``Conv(...)``, ``Pool(...)``, ``Dense(...)`` from
        :mod:`microcircuit.layers`. The last layer is the output (one cell per class).
    rule : ``"bp" | "fa" | "dfa" | "scfa" | "microcircuit"``
    T : time steps per sample.
    mode, T_e, feedback : microcircuit options (``"rate"``/``"spiking"``, error-cell steps,
        feedback wiring; see :class:`microcircuit.circuit.Microcircuit`).
    loss : ``"ce"`` (cross-entropy on spike counts) or ``"mse"``; ``output_scale`` is ``c``.
    encoding : ``"direct"`` (constant current) or ``"bernoulli"``.
    optimizer, lr, momentum, weight_decay, lr_schedule, warmup, epochs, batch_size :
        optimisation; ``epochs`` sets the schedule's length and ``fit``'s default.
    tau_m, theta, surrogate, width : LIF soma and surrogate gain (:mod:`microcircuit.neurons`).
    weight_scale : initial weights are normal with std ``weight_scale / sqrt(fan_in)``.
    augment : random shifts of up to ``augment`` pixels of image inputs during training.
    flip : mirror each training image left-right with probability 1/2 (natural images).
    seed : seeds initial weights, feedback weights, data order and all spike noise.
    progress : show a tqdm bar over mini-batches in ``fit``.
    """

    def __init__(
        self,
        layers=(784, 800, 10),
        *,
        rule: str = "microcircuit",
        T: int = 16,
        mode: str = "rate",
        T_e: int = 32,
        feedback: str | None = None,
        loss: str = "ce",
        output_scale: float = 8.0,
        encoding: str = "direct",
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        warmup: float = 0.0,
        epochs: int = 10,
        batch_size: int = 64,
        tau_m: float = math.inf,
        theta: float = 1.0,
        surrogate: str = "triangle",
        width: float = 1.0,
        weight_scale: float = 1.0,
        augment: int = 0,
        flip: bool = False,
        seed: int = 0,
        progress: bool = False,
    ):
        self.config = dict(
            layers=[spec_to_dict(s) if not isinstance(s, (int, np.integer, tuple, list)) else s for s in layers],
            rule=rule, T=T, mode=mode, T_e=T_e, feedback=feedback, loss=loss,
            output_scale=output_scale, encoding=encoding, optimizer=optimizer, lr=lr,
            momentum=momentum, weight_decay=weight_decay, lr_schedule=lr_schedule, warmup=warmup,
            epochs=epochs, batch_size=batch_size, tau_m=tau_m, theta=theta, surrogate=surrogate,
            width=width, weight_scale=weight_scale, augment=augment, flip=flip, seed=seed,
        )
        self._validate()
        self.progress = progress
        self.T, self.batch_size, self.epochs = T, batch_size, epochs
        self.lif = LIFParameters(tau_m=tau_m, theta=theta, surrogate=surrogate, width=width)
        self.loss = SpikingError(loss, output_scale)
        in_shape = layers[0]
        self.in_shape = (int(in_shape),) if isinstance(in_shape, (int, np.integer)) else tuple(in_shape)
        seeds = np.random.SeedSequence(seed).spawn(4)  # init, feedback, training data, error cells
        init_rng = np.random.default_rng(seeds[0])
        self.layers = build(layers[1:], self.in_shape, self.lif, init_rng, weight_scale)
        if len(self.layers[-1].out_shape) != 1:
            raise ValueError("the output layer must be dense: end `layers` with the number of classes")
        self.n_classes = self.layers[-1].out_shape[0]
        self.rule = make_rule(rule, mode, T_e, feedback, seed=seeds[3])
        self.rule.init(self.layers, np.random.default_rng(seeds[1]))
        self.optimizer = make_optimizer(optimizer, momentum, weight_decay)
        self._train_rng = np.random.default_rng(seeds[2])
        self.epoch_ = 0
        self.history_ = []

    # ------------------------------------------------------------- validation
    def _validate(self):
        c = self.config
        if c["rule"] not in RULES:
            raise ValueError(f"unknown rule {c['rule']!r}: choose one of {RULES}")
        for name in ("T", "T_e", "epochs", "batch_size"):
            v = c[name]
            if not (isinstance(v, numbers.Integral) and v > 0):
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("lr", "output_scale", "weight_scale"):
            if not (isinstance(c[name], numbers.Real) and math.isfinite(c[name]) and c[name] > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {c[name]!r}")
        checks = {
            "warmup": (lambda v: 0 <= v <= 1, "a fraction of training in [0, 1]"),
            "weight_decay": (lambda v: v >= 0, "a number >= 0"),
            "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        }
        for name, (ok, what) in checks.items():
            if not (isinstance(c[name], numbers.Real) and ok(c[name])):
                raise ValueError(f"{name} must be {what}, got {c[name]!r}")
        if c["lr_schedule"] not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {c['lr_schedule']!r}: choose one of {SCHEDULES}")
        if c["encoding"] not in ENCODINGS:
            raise ValueError(f"unknown encoding {c['encoding']!r}: choose one of {ENCODINGS}")
        if c["rule"] != "microcircuit" and (c["mode"] != "rate" or c["feedback"] is not None):
            raise ValueError(
                f"mode and feedback are options of rule='microcircuit', not of rule={c['rule']!r}: "
                f"drop them or use rule='microcircuit'"
            )
        if not (isinstance(c["augment"], numbers.Integral) and c["augment"] >= 0):
            raise ValueError(f"augment must be an int >= 0 (pixels), got {c['augment']!r}")
        if not isinstance(c["flip"], (bool, np.bool_)):
            raise ValueError(f"flip must be True or False, got {c['flip']!r}")
        if len(c["layers"]) < 2:
            raise ValueError("layers needs the input size and at least one layer, e.g. [784, 800, 10]")
        if not (isinstance(c["seed"], numbers.Integral) and c["seed"] >= 0):
            raise ValueError(f"seed must be a non-negative int, got {c['seed']!r}")

    def _check_x(self, x):
        """Validate inputs at the boundary and move them to the backend as (N, *in_shape)."""
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        n_in = int(np.prod(self.in_shape))
        if x.ndim < 1 or int(np.prod(x.shape[1:])) != n_in:
            raise ValueError(
                f"input has shape {tuple(x.shape)} but the network expects (n_samples, {n_in}) "
                f"or (n_samples, *{self.in_shape}); check `layers[0]` or reshape the data"
            )
        x = backend.asarray(x, dtype=backend.dtype()).reshape(x.shape[0], *self.in_shape)
        if not bool(backend.xp().isfinite(x).all()):
            raise ValueError("input contains NaN or inf; clean the data (e.g. np.nan_to_num) before training")
        return x

    def _check_y(self, y, n):
        y = np.asarray(backend.to_numpy(y))
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"labels must be a 1-d array of {n} class indices, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise ValueError("labels must be integer class indices")
            y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(
                f"label out of range: labels must be in [0, {self.n_classes - 1}] for "
                f"{self.n_classes} output cells, found {int(y.min())}..{int(y.max())}"
            )
        return backend.asarray(y.astype(np.int64))

    # ---------------------------------------------------------------- forward
    @property
    def plastic_layers(self):
        return [layer for layer in self.layers if layer.plastic]

    def forward(self, x, gen=None):
        """Run the network for ``T`` steps on a batch; returns the output rates ``r^L``.

        Afterwards every layer holds its rates ``r``, gains ``g`` and presynaptic rates
        ``r_pre``, and ``self.v_out`` the output potentials left at the end.
        """
        enc = encode(x, self.T, self.config["encoding"], gen if gen is not None else self._eval_gen())
        for layer in self.layers:
            layer.reset(x.shape[0])
        for t in range(self.T):
            s = enc.step(t)
            constant = enc.constant
            for layer in self.layers:
                s = layer.step(s, constant=constant)
                constant = False
        r_pre = enc.rate
        for layer in self.layers:
            r_pre = layer.finish(self.T, r_pre)
        self.v_out = self.layers[-1].v
        return r_pre

    def _eval_gen(self):
        return backend.noise_generator(self.config["seed"] + 7919)

    # ---------------------------------------------------------------- learning
    def updates(self, x, y, gen=None):
        """Forward pass, global error and the rule's per-layer updates (per unit lr).

        Returns ``(updates, loss)``; ``updates[i]`` is ``(dW, db)`` or ``None`` (pooling).
        """
        r = self.forward(x, gen)
        target = one_hot(y, self.n_classes)
        return self.rule.updates(self.layers, self.loss.error(r, target)), self.loss.value(r, target)

    def train_step(self, x, y, lr: float, gen=None) -> float:
        """One mini-batch: forward, error phase, update. Returns the batch loss."""
        ups, loss = self.updates(x, y, gen)
        # one host sync per step: the loss plus 0 * every potential (a NaN or inf in any
        # weight reaches the potentials, and 0 * inf is NaN; finite ones leave the loss as is)
        loss = float(loss + sum(layer.v.sum() * 0 for layer in self.plastic_layers))
        if not math.isfinite(loss):
            raise DivergenceError(self._diverged("the loss or the membrane potentials became non-finite"))
        params, steps = [], []
        for layer, up in zip(self.layers, ups):
            if up is not None:
                params += layer.params
                steps += list(up)
        self.optimizer.step(params, steps, lr)
        return loss

    def _diverged(self, what: str) -> str:
        return (f"training diverged in epoch {self.epoch_ + 1}: {what}. Lower the learning rate "
                f"(lr={self.config['lr']}) and restart from the last good checkpoint")

    def _augment(self, xb):
        """Shift the images of a mini-batch by up to ``augment`` pixels (zero fill).

        One random shift ``(dy, dx)`` per mini-batch, the same for all its images (cheap;
        each image still sees a new shift every epoch). With ``flip``, each image is first
        mirrored left-right with probability 1/2. Flat inputs are read as square images.
        """
        k, flip = self.config["augment"], self.config["flip"]
        if not (k or flip):
            return xb
        xp = backend.xp()
        shape = xb.shape
        img = xb.reshape(shape[0], -1, *self._image_hw())
        if flip:
            mirror = backend.asarray(self._train_rng.random(shape[0]) < 0.5, dtype=bool).reshape(-1, 1, 1, 1)
            img = xp.where(mirror, img[:, :, :, ::-1], img)
        if not k:
            return img.reshape(shape)
        dy, dx = (int(v) for v in self._train_rng.integers(-k, k + 1, size=2))
        img = xp.roll(img, (dy, dx), axis=(2, 3))
        if dy > 0:
            img[:, :, :dy] = 0
        elif dy < 0:
            img[:, :, dy:] = 0
        if dx > 0:
            img[:, :, :, :dx] = 0
        elif dx < 0:
            img[:, :, :, dx:] = 0
        return img.reshape(shape)

    def _image_hw(self):
        if len(self.in_shape) == 3:
            return self.in_shape[1:]
        side = int(round(math.sqrt(self.in_shape[0])))
        if side * side != self.in_shape[0]:
            raise ValueError("augment needs image inputs: (C, H, W) or a square number of pixels")
        return (side, side)

    def _error_cell_seed(self):
        """The error cells' noise in this epoch: its own stream (``seed``, child 3, epoch), so that
        it never moves the data order and a resumed run draws the same spikes."""
        return np.random.SeedSequence(self.config["seed"], spawn_key=(3, self.epoch_))

    def partial_fit(self, x, y):
        """Train one epoch on ``(x, y)`` in shuffled mini-batches. Returns the mean loss."""
        X = self._check_x(x)
        Y = self._check_y(y, X.shape[0])
        n = X.shape[0]
        order = backend.asarray(self._train_rng.permutation(n))
        noise = backend.noise_generator(int(self._train_rng.integers(2**31)))
        if isinstance(self.rule, Microcircuit):
            self.rule.reseed(self._error_cell_seed())
        n_batches = math.ceil(n / self.batch_size)
        batches = range(n_batches)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {self.epoch_ + 1}", leave=False)
        total = 0.0
        for b in batches:
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            progress = (self.epoch_ + b / n_batches) / self.epochs
            lr = schedule(self.config["lr_schedule"], self.config["lr"], progress, self.config["warmup"])
            total += self.train_step(self._augment(X[idx]), Y[idx], lr, noise) * int(idx.shape[0])
        for layer in self.plastic_layers:  # the last step's update is not seen by the check above
            if not bool(backend.xp().isfinite(layer.W).all()):
                raise DivergenceError(self._diverged("the weights became non-finite"))
        self.epoch_ += 1
        mean = total / n
        self.history_.append({"epoch": self.epoch_, "train_loss": mean})
        return mean

    def fit(self, x, y, epochs: int | None = None):
        """Train for ``epochs`` epochs (default: the constructor's). Returns ``self``."""
        for _ in range(epochs or self.epochs):
            self.partial_fit(x, y)
        return self

    # -------------------------------------------------------------- inference
    def scores(self, x, batch_size: int | None = None):
        """Output rates and end potentials per sample as host arrays ``(rates, v)``.

        Samples go through in batches of ``batch_size`` (default: the training mini-batch
        size; on a CPU, small batches keep a convolutional layer's arrays in cache, and large
        ones are several times slower per sample). With ``encoding="bernoulli"`` the input
        spikes are drawn batch by batch from a fixed generator, so they depend on the batching;
        direct encoding is deterministic.
        """
        X = self._check_x(x)
        batch_size = self.batch_size if batch_size is None else batch_size
        if not (isinstance(batch_size, numbers.Integral) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive int (or None: the training batch size), got {batch_size!r}")
        gen = self._eval_gen()
        rates, vs = [], []
        for i in range(0, X.shape[0], batch_size):
            rates.append(backend.to_numpy(self.forward(X[i : i + batch_size], gen)))
            vs.append(backend.to_numpy(self.v_out))
        return np.concatenate(rates), np.concatenate(vs)

    def _decide(self, rates, v):
        """Most output spikes wins; ties are broken by the potential left at the end
        (``0.5 * tanh(v)`` lies in (-0.5, 0.5), so it never outweighs one spike)."""
        return np.argmax(np.rint(rates * self.T) + 0.5 * np.tanh(v), axis=1)

    def predict(self, x, batch_size: int | None = None):
        """Predicted class: most output spikes; ties broken by the potential left at the end."""
        return self._decide(*self.scores(x, batch_size))

    def evaluate(self, x, y, batch_size: int | None = None) -> dict:
        """``{"accuracy": ..., "loss": ...}`` on ``(x, y)`` (loss: the global spiking error)."""
        rates, v = self.scores(x, batch_size)
        y = backend.to_numpy(self._check_y(y, rates.shape[0]))
        pred = self._decide(rates, v)
        r = backend.asarray(rates)
        loss = float(self.loss.value(r, one_hot(backend.asarray(y), self.n_classes)))
        return {"accuracy": float((pred == y).mean()), "loss": loss}

    def alignment(self, x, y) -> list[float]:
        """Angle (degrees) between this rule's weight update and BP's, per plastic layer.

        Both come from the same forward pass on ``(x, y)``; BP's feedback is ``B = W^T``
        (rate-based backpropagation through the surrogate gains).
        """
        X = self._check_x(x)
        Y = self._check_y(y, X.shape[0])
        r = self.forward(X, self._eval_gen())
        e = self.loss.error(r, one_hot(Y, self.n_classes))
        ups = self.rule.updates(self.layers, e)
        bp = FeedbackAlignment("symmetric").updates(self.layers, e)
        return [angle_degrees(u[0], b[0]) for u, b in zip(ups, bp) if u is not None]

    # ------------------------------------------------------------- save / load
    def get_state(self) -> dict:
        """All arrays (host) and JSON metadata needed to continue training exactly."""
        arrays = {}
        for i, layer in enumerate(self.layers):
            if layer.plastic:
                arrays[f"W_{i}"] = backend.to_numpy(layer.W)
                arrays[f"b_{i}"] = backend.to_numpy(layer.b)
        for k, v in self.rule.state().items():
            arrays[f"rule_{k}"] = v
        for k, v in self.optimizer.state().items():
            arrays[f"opt_{k}"] = np.asarray(v)
        meta = {
            "version": __version__,
            "dtype": backend.dtype().name,
            "backend": backend.name(),
            "config": self.config,
            "epoch": self.epoch_,
            "history": self.history_,
            "train_rng": self._train_rng.bit_generator.state,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return arrays

    def set_state(self, arrays: dict):
        meta = json.loads(bytes(np.asarray(arrays["meta"])).decode())
        for i, layer in enumerate(self.layers):
            if layer.plastic:
                layer.W[...] = backend.asarray(arrays[f"W_{i}"])
                layer.b[...] = backend.asarray(arrays[f"b_{i}"])
        self.rule.load_state({k[5:]: v for k, v in arrays.items() if k.startswith("rule_")})
        opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt_")}
        if opt:
            self.optimizer.load_state(opt)
        self.epoch_ = meta["epoch"]
        self.history_ = meta["history"]
        self._train_rng.bit_generator.state = meta["train_rng"]
        return self

    def save(self, path):
        """Write the network to ``path`` (``.npz``) atomically: a crash never leaves half a file."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.get_state())
        return write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path, **overrides):
        """Rebuild a network saved by :meth:`save` (on the active backend)."""
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        if "meta" not in arrays:
            raise ValueError(f"{path} is not a microcircuit checkpoint (no 'meta' entry); save one with Network.save")
        meta = json.loads(bytes(arrays["meta"]).decode())
        saved = meta.get("dtype", "float32")
        if saved != backend.dtype().name:
            raise ValueError(
                f"{path} was saved in {saved} but the active dtype is {backend.dtype().name}: call "
                f"microcircuit.set_dtype({saved!r}) (or set MICROCIRCUIT_DTYPE={saved}) before loading, "
                f"so that a resumed run continues exactly"
            )
        config = dict(meta["config"])
        config.update(overrides)
        layers = config.pop("layers")
        layers = [spec_from_dict(s) if isinstance(s, dict) else (tuple(s) if isinstance(s, list) else s) for s in layers]
        net = cls(layers, **config)
        return net.set_state(arrays)

    def __repr__(self):
        body = " -> ".join(f"{type(layer).__name__}{layer.out_shape}" for layer in self.layers)
        return f"Network(input{self.in_shape} -> {body}, rule={self.config['rule']!r}, T={self.T})"

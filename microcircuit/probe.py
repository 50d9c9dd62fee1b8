"""Short probe runs of a preset: is every layer active, and does the rule keep it so?

    python -m microcircuit probe cifar10-conv-cpu --rule microcircuit
    python -m microcircuit probe cifar10-conv-cpu --rule bp --set weight_scale=1 lr=3e-3 lr_schedule=constant

:func:`probe` trains on the first ``train`` images of the training set for ``epochs`` epochs and
after each reports the accuracy on the first ``train_eval`` of those training images (so that
underfitting shows: training against validation accuracy), the validation accuracy on the last
``val`` training images (never the test set), and per plastic layer, input side first, over the
last evaluation batch (up to 1,000 validation images): the mean rate, the fraction of cells
silent on every one of them, and the mean surrogate gain; with ``threshold_adaptation`` on, each
hidden layer's mean firing threshold too (the output layer keeps the shared ``theta``). A layer
whose gain falls towards 0 has saturated or fallen silent: no error reaches it any more. This is
how the CIFAR-10 presets' ``weight_scale`` was chosen (``docs/decisions.md``).
"""

from __future__ import annotations

import ast
import time

from . import data
from .network import Network
from .presets import run_settings


def layer_stats(net) -> tuple[list, list, list]:
    """Mean rate, fraction of always-silent cells and mean surrogate gain per plastic layer, over
    the batch the network last ran."""
    rates, silent, gains = [], [], []
    for layer in net.plastic_layers:
        r = layer.r.reshape(layer.r.shape[0], -1)
        rates.append(float(r.mean()))
        silent.append(float((r.max(axis=0) == 0).mean()))
        gains.append(float(layer.g.mean()))
    return rates, silent, gains


def thresholds(net) -> list[float]:
    """Mean firing threshold per hidden plastic layer (per-cell thresholds, intrinsic plasticity)."""
    return [float(layer.theta.mean()) for layer in net.adapting_layers]


def parse_settings(items) -> dict:
    """``["weight_scale=1", "lr_schedule=constant"]`` -> ``{"weight_scale": 1, "lr_schedule": "constant"}``
    (values read as Python literals where they are one, else kept as text)."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def probe(preset: str, rule: str = "microcircuit", *, settings: dict | None = None, train: int = 10_000,
          val: int = 2_000, train_eval: int = 2_000, epochs: int = 3, seed: int = 0, verify: bool = True,
          source: str = "auto", echo=print) -> list[dict]:
    """Train ``rule`` on ``preset`` (with ``settings`` over its own) briefly and report each epoch:
    ``{"epoch", "train_loss", "train_accuracy", "validation_accuracy", "seconds", "rate", "silent",
    "gain", "threshold"}`` (the last four per plastic layer), each also printed by ``echo``.
    ``source="sample"``: the bundled sample instead of the full training set (a quick trial)."""
    dataset, _, net_settings = run_settings(preset, rule, seed=seed)
    net_settings.update(settings or {})
    net = Network(epochs=epochs, **net_settings)
    x, y = data.load_dataset(dataset, "train", flatten=net.config.is_dense(), verify=verify, source=source)
    if train + val > x.shape[0]:
        raise ValueError(f"train + val must be at most {x.shape[0]} (the training set), got {train} + {val}")
    xv, yv = x[-val:], y[-val:]
    x, y = x[:train], y[:train]
    n = min(train_eval, train)
    start, out = time.perf_counter(), []
    for epoch in range(1, epochs + 1):
        loss = net.partial_fit(x, y)
        train_acc = net.evaluate(x[:n], y[:n], batch_size=1000)["accuracy"]
        acc = net.evaluate(xv, yv, batch_size=1000)["accuracy"]  # the layers keep the last batch's rates and gains
        rates, silent, gains = layer_stats(net)
        row = {"epoch": epoch, "train_loss": loss, "train_accuracy": train_acc, "validation_accuracy": acc,
               "seconds": time.perf_counter() - start, "rate": rates, "silent": silent, "gain": gains,
               "threshold": thresholds(net)}
        out.append(row)
        fmt = lambda v: " ".join(f"{a:.3f}" for a in v)  # noqa: E731
        shown = f"\n  threshold {fmt(row['threshold'])} (output: {net.config.theta:g})" if row["threshold"] else ""
        echo(f"epoch {epoch}: train loss {loss:.3f}, accuracy on {n} training images {100 * train_acc:.1f} %, "
             f"validation {100 * acc:.1f} %, {row['seconds']:.0f} s\n  rate {fmt(rates)}\n"
             f"  silent {fmt(silent)}\n  gain {fmt(gains)}{shown}")
    return out

"""Presets: the named settings of the book's full runs, and the commands that run them.

A preset is a dataset, a number of epochs and ``Network`` settings, the same for every rule
(:data:`microcircuit.rules.RUN_RULES`)::

    python -m microcircuit runs mnist-mlp                 # every rule on one preset (resumes)
    python -m microcircuit train --preset mnist-mlp --rule bp --out runs/mnist-bp

Why each setting is what it is: ``docs/decisions.md``.
"""

from __future__ import annotations

import json

from .config import NetworkConfig, decode_layers
from .rules import RUN_RULES, network_settings

_MLP = dict(T=8, epochs=20, batch_size=64, optimizer="adam", lr=1e-3, lr_schedule="cosine",
            surrogate="fast_sigmoid", output_scale=8.0, augment=2)
_CONV = dict(T=4, batch_size=64, optimizer="adam", lr=3e-4, lr_schedule="cosine", surrogate="fast_sigmoid",
             output_scale=8.0, augment=2)


def _conv(channels, kernel=3, stride=1, padding=1):
    return {"type": "Conv", "channels": channels, "kernel": kernel, "stride": stride, "padding": padding}


_POOL = {"type": "Pool", "size": 2, "kind": "avg"}

PRESETS = {
    "mnist-mlp": dict(_MLP, dataset="mnist", layers=[784, 800, 10]),
    "mnist-mlp2": dict(_MLP, dataset="mnist", layers=[784, 800, 800, 10]),
    "fashion-mlp": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 10], augment=0),
    "fashion-mlp2": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 800, 10], augment=0),
    # the depth study (docs/decisions.md, "Depth"): three and four hidden layers, nothing else changed
    "fashion-mlp3": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 800, 800, 10], augment=0),
    "fashion-mlp4": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 800, 800, 800, 10], augment=0),
    "cifar10-conv-cpu": dict(
        _CONV, dataset="cifar10", epochs=30, weight_scale=2.0, warmup=0.05, flip=True,
        layers=[[3, 32, 32], _conv(32), _POOL, _conv(64), _POOL, _conv(128), _POOL, 256, 10],
    ),
    # the CPU preset's network twice as wide, at T=8: the probes in docs/decisions.md ("CIFAR-10 underfitting")
    "cifar10-conv-wide": dict(
        _CONV, dataset="cifar10", epochs=30, T=8, weight_scale=2.0, warmup=0.05, flip=True,
        layers=[[3, 32, 32], _conv(64), _POOL, _conv(128), _POOL, _conv(256), _POOL, 256, 10],
    ),
    "cifar10-conv-gpu": dict(
        _CONV, dataset="cifar10", epochs=60, T=6, weight_scale=2.0, warmup=0.05, flip=True,
        layers=[[3, 32, 32], _conv(64), _conv(64), _POOL, _conv(128), _conv(128), _POOL, _conv(256), _POOL, 512, 10],
    ),
}
"""Named settings (``--preset``): the dataset, the epochs and ``Network`` settings, JSON-friendly
(an input shape list, dicts for ``Conv``/``Pool``, ints)."""

DEPTH_STUDY = ("fashion-mlp", "fashion-mlp2", "fashion-mlp3", "fashion-mlp4")
"""The depth study: the same Fashion-MNIST settings with 1, 2, 3 and 4 hidden layers of 800 cells."""


def hidden_layers(name: str) -> int:
    """The number of hidden layers of a preset's network (layers between the input and the output)."""
    return len(preset(name)["layers"]) - 2


def preset(name: str) -> dict:
    """A copy of the preset ``name`` (dataset, epochs and ``Network`` settings, layers decoded)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {sorted(PRESETS)}")
    out = json.loads(json.dumps(PRESETS[name]))
    out["layers"] = list(decode_layers(out["layers"]))
    return out


def run_settings(name: str, rule: str, *, seed: int = 0) -> tuple[str, int, dict]:
    """``(dataset, epochs, settings)`` of one rule on a preset: ``settings`` are the other
    ``Network`` settings, the preset's with the rule's from its registry entry (``microcircuit-spiking``:
    the microcircuit in spiking mode)."""
    if rule not in RUN_RULES:
        raise ValueError(f"unknown rule {rule!r}: choose one of {RUN_RULES}")
    settings = preset(name)
    dataset, epochs = settings.pop("dataset"), settings.pop("epochs")
    settings.update(network_settings(rule), seed=seed)
    return dataset, epochs, settings


def config(name: str, rule: str, *, seed: int = 0) -> NetworkConfig:
    """The checked :class:`~microcircuit.config.NetworkConfig` of one rule on a preset."""
    _, epochs, settings = run_settings(name, rule, seed=seed)
    return NetworkConfig(epochs=epochs, **settings)


def own_settings(preset_name: str, config: dict) -> dict | None:
    """The settings in which a run's ``config`` (as its log stores it) differs from its preset,
    as ``{key: run's value}``; ``None`` when it differs in none or the preset is unknown. Only
    settings the config records are compared; ``epochs`` and the dataset are not."""
    if preset_name not in PRESETS:
        return None
    shared = {k: v for k, v in json.loads(json.dumps(PRESETS[preset_name])).items() if k not in ("dataset", "epochs")}
    own = {k: config[k] for k, v in shared.items() if k in config and config[k] != v}
    return own or None


# ------------------------------------------------------------------- commands
def preset_for(dataset: str) -> str | None:
    """The preset that trains ``dataset`` (the first by name; ``None`` if there is none)."""
    own = sorted(name for name, p in PRESETS.items() if p.get("dataset") == dataset)
    return own[0] if own else None


def train_command(dataset: str, rule: str, preset: str | None = None, root: str = "data/results",
                  seed: int = 0) -> str | None:
    """The command line that produces the one run ``<root>/<dataset>/<preset>/<rule>/seed-<seed>``.

    ``preset`` defaults to :func:`preset_for`; ``None`` if no preset can train ``dataset``.
    The checkpoint goes to ``runs/<preset>/<rule>/seed-<seed>.npz`` (large, not committed):
    the places :func:`microcircuit.training.run_paths` gives.
    """
    preset = preset or preset_for(dataset)
    if preset is None:
        return None
    cmd = f"python -m microcircuit train --preset {preset}"
    if PRESETS.get(preset, {}).get("dataset") != dataset:
        cmd += f" --dataset {dataset}"
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in network_settings(rule).items())
    return (f"{cmd} {options} --seed {seed} --out {root}/{dataset}/{preset}/{rule}/seed-{seed} "
            f"--checkpoint runs/{preset}/{rule}/seed-{seed}.npz --quiet")


def runs_command(preset: str, rules=None) -> str:
    """The command that runs (or resumes) every rule of ``preset``, or only ``rules``."""
    cmd = f"python -m microcircuit runs {preset}"
    return cmd + (" --rules " + " ".join(rules) if rules else "")

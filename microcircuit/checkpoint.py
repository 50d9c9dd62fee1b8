"""Checkpoints: a network, its optimiser and its random state in one ``.npz`` file.

``save`` writes atomically (a crash never leaves half a file); ``load`` rebuilds the
network from the stored :class:`~microcircuit.config.NetworkConfig` on the active backend and
continues exactly where the saved one stopped. The file holds the arrays ``W_<i>``, ``b_<i>``
(plastic layers), ``rule_*`` (fixed feedback), ``opt_*`` (optimiser) and ``meta`` (JSON:
version, dtype, backend, config, epoch, history, the training stream's state).
"""

from __future__ import annotations

import io
import json

import numpy as np

from . import backend
from ._version import __version__
from .config import NetworkConfig
from .files import write_atomic


def get_state(net) -> dict:
    """All arrays (host) and JSON metadata needed to continue training ``net`` exactly."""
    arrays = {}
    for i, layer in enumerate(net.layers):
        if layer.plastic:
            arrays[f"W_{i}"] = backend.to_numpy(layer.W)
            arrays[f"b_{i}"] = backend.to_numpy(layer.b)
    for k, v in net.rule.state().items():
        arrays[f"rule_{k}"] = v
    for k, v in net.optimizer.state().items():
        arrays[f"opt_{k}"] = np.asarray(v)
    meta = {
        "version": __version__,
        "dtype": backend.dtype().name,
        "backend": backend.name(),
        "config": net.config.to_dict(),
        "epoch": net.epoch_,
        "history": net.history_,
        "train_rng": net._train_rng.bit_generator.state,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def set_state(net, arrays: dict):
    """Put the arrays of :func:`get_state` back into ``net`` (built with the same config)."""
    meta = json.loads(bytes(np.asarray(arrays["meta"])).decode())
    for i, layer in enumerate(net.layers):
        if layer.plastic:
            layer.W[...] = backend.asarray(arrays[f"W_{i}"])
            layer.b[...] = backend.asarray(arrays[f"b_{i}"])
    net.rule.load_state({k[5:]: v for k, v in arrays.items() if k.startswith("rule_")})
    opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt_")}
    if opt:
        net.optimizer.load_state(opt)
    net.epoch_ = meta["epoch"]
    net.history_ = meta["history"]
    net._train_rng.bit_generator.state = meta["train_rng"]
    return net


def save(net, path):
    """Write ``net`` to ``path`` (``.npz``) atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **get_state(net))
    return write_atomic(path, buffer.getvalue())


def read(path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a checkpoint; a clear error for another file or another dtype."""
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
    return meta, arrays


def load(path, network_class, progress: bool = False, **overrides):
    """Rebuild the network saved at ``path`` as ``network_class`` with ``overrides`` of its settings."""
    meta, arrays = read(path)
    config = NetworkConfig.from_dict(meta["config"], **overrides)
    return set_state(network_class(config, progress=progress), arrays)

"""Checkpoints: a network, its optimiser and its random state in one ``.npz`` file.

``save`` writes atomically (a crash never leaves half a file); ``load`` rebuilds the
network from the stored :class:`~microcircuit.config.NetworkConfig` on the active backend and
continues exactly where the saved one stopped. The file holds the arrays ``W_<i>``, ``b_<i>``
(plastic layers), ``theta_<i>`` (per-cell thresholds, only where intrinsic plasticity gave a
layer its own; files without them load with the shared ``theta``), ``rule_*`` (fixed feedback), ``opt_*`` (optimiser), ``meta`` (JSON:
version, dtype, backend, config, epoch, history, the training stream's state) and, written
by a training run, ``run_log`` (JSON: the run's log as of this checkpoint). A file that is
not such a checkpoint is a :class:`CheckpointError` naming it and what is wrong; so is one whose
float arrays hold NaN or inf (a damaged checkpoint, never loaded), and ``save`` refuses to write such
values (a diverged network) over a good checkpoint.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib

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
            if layer.theta is not None:
                arrays[f"theta_{i}"] = backend.to_numpy(layer.theta)
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
        "train_rng": net.train_rng.bit_generator.state,
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
            if f"theta_{i}" in arrays:
                layer.theta = backend.asarray(arrays[f"theta_{i}"]).reshape(layer.b.shape)
    net.rule.load_state({k[5:]: v for k, v in arrays.items() if k.startswith("rule_")})
    opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt_")}
    if opt:
        net.optimizer.load_state(opt)
    net.epoch_ = meta["epoch"]
    net.history_ = meta["history"]
    net.train_rng.bit_generator.state = meta["train_rng"]
    return net


def _non_finite(arrays: dict) -> str | None:
    """The first float array of a checkpoint's ``arrays`` that holds NaN or inf, as a user reads it
    (``layer 1 W``, ``the optimiser's v_0``), or None when all are finite."""
    for key, value in arrays.items():
        value = np.asarray(value)
        if key != "meta" and value.dtype.kind in "fc" and not np.isfinite(value).all():
            kind, _, rest = key.partition("_")
            return {"W": f"layer {rest} W", "b": f"layer {rest} b", "theta": f"layer {rest} theta",
                    "rule": f"the rule's {rest}", "opt": f"the optimiser's {rest}"}.get(kind, key)
    return None


def save(net, path, log: dict | None = None):
    """Write ``net`` to ``path`` (``.npz``) atomically; with ``log``, a run's log goes inside
    too (``run_log``, JSON), so that the checkpoint alone can rebuild the log's records.
    A network holding NaN or inf is not written (:class:`CheckpointError`): the file keeps the last
    good state."""
    state = get_state(net)
    bad = _non_finite(state)
    if bad is not None:
        raise CheckpointError(f"{path} not written: the network holds non-finite values ({bad}), so it has "
                              f"diverged; lower the learning rate and start again from the last good checkpoint")
    if log is not None:
        state["run_log"] = np.frombuffer(json.dumps(log).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return write_atomic(path, buffer.getvalue())


def read_log(path) -> dict | None:
    """The run log stored in the checkpoint at ``path`` by :func:`save` (None if it holds none
    or cannot be read: :func:`read` reports a damaged checkpoint)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(bytes(f["run_log"]).decode()) if "run_log" in f.files else None
    except Exception:  # noqa: BLE001 -- any damage is reported by read()
        return None


class CheckpointError(ValueError):
    """A file that is not a loadable checkpoint: damaged, truncated, incomplete, or another
    network's. The message names the file and what is wrong with it."""


def _arrays(path) -> dict:
    """Every array of the ``.npz`` file ``path``, or a :class:`CheckpointError` naming it (a
    missing file or a folder keeps its own error, which names it)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"{path} is empty: not a checkpoint (a write that never finished?)")
    if not head.startswith(b"PK"):
        raise CheckpointError(f"{path} is not a microcircuit checkpoint (an .npz archive written by Network.save)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(f"{path} is not a microcircuit checkpoint: it holds Python objects, which are "
                                  f"never loaded") from None
        raise CheckpointError(f"{path} is damaged or truncated ({exc}): restore a copy or train again") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, KeyError) as exc:
        raise CheckpointError(f"{path} is damaged or truncated ({type(exc).__name__}: {exc}): restore a copy or "
                              f"train again") from None


def read(path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a checkpoint; a clear error naming the file for anything else
    (:class:`CheckpointError`) or for another dtype."""
    arrays = _arrays(path)
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is not a microcircuit checkpoint (no 'meta' entry); save one with Network.save")
    try:
        meta = json.loads(bytes(arrays["meta"]).decode())
        meta["config"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} has damaged metadata ({type(exc).__name__}: {exc}): restore a copy or "
                              f"train again") from None
    saved = meta.get("dtype", "float32")
    if saved != backend.dtype().name:
        raise ValueError(
            f"{path} was saved in {saved} but the active dtype is {backend.dtype().name}: call "
            f"microcircuit.set_dtype({saved!r}) (or set MICROCIRCUIT_DTYPE={saved}; on the command line "
            f"--dtype {saved}) before loading, so that a resumed run continues exactly"
        )
    return meta, arrays


def load(path, network_class, progress: bool = False, **overrides):
    """Rebuild the network saved at ``path`` as ``network_class`` with ``overrides`` of its settings.

    A checkpoint without the weights this network needs, or with weights of other shapes
    (another architecture), is a :class:`CheckpointError` naming the file.
    """
    meta, arrays = read(path)
    try:
        config = NetworkConfig.from_dict(meta["config"], **overrides)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} holds settings that do not make a network: {exc}") from None
    net = network_class(config, progress=progress)
    for i, layer in enumerate(net.layers):
        if not layer.plastic:
            continue
        for key, param in ((f"W_{i}", layer.W), (f"b_{i}", layer.b)):
            if key not in arrays:
                raise CheckpointError(f"{path} is incomplete: it lacks {key} (the weights of layer {i}); it was "
                                      f"not written by Network.save, or was damaged")
            if tuple(arrays[key].shape) != tuple(param.shape):
                raise CheckpointError(
                    f"{path} holds a network of another architecture: {key} has shape {tuple(arrays[key].shape)} "
                    f"in the file but {tuple(param.shape)} in layers={config.to_dict()['layers']}")
    bad = _non_finite(arrays)
    if bad is not None:
        what = "weights" if bad.startswith("layer") else "values"
        raise CheckpointError(f"checkpoint {path} holds non-finite {what} ({bad}): it is damaged; resume from an "
                              f"earlier copy or start again")
    try:
        return set_state(net, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is incomplete or damaged ({type(exc).__name__}: {exc})") from None

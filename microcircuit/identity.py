"""A run's identity: what defines a run, its fingerprint, and the checks every resume makes.

A run is defined by its network settings (the rule, the layers and every other field of
:class:`~microcircuit.config.NetworkConfig`, the seed, and the schedule: ``epochs``, ``lr`` and
its warm-up), its dataset with the checksum of the training split, and how the arrays were cut
from it (the full data or the bundled sample, a validation split, a limit)::

    identity = {"config": ..., "dataset": ..., "data_checksum": ..., "data_subset": ...}
    fingerprint = sha256(canonical JSON of identity)[:16]

``training.run`` writes the fingerprint into the log and, with the log, into the checkpoint.
Every resume (``train --resume``, ``runs``, ``sweep``) derives the identity of the log, of the
checkpoint and of the request, and refuses in one line naming what differs; a log or checkpoint
written before fingerprints existed has its identity derived from its config and provenance the
same way, so old runs are checked too. ``train --resume`` may change ``lr`` and ``epochs``
(:data:`RESUME_OVERRIDES`, recorded in the log's segment); a sweep may change nothing, so that a
trial (fewer epochs, or the sample) is never continued as the real run.
"""

from __future__ import annotations

import hashlib
import json

RESUME_OVERRIDES = ("lr", "epochs")
"""Settings ``train --resume`` may change (recorded in its segment of the log); any other setting
that differs from the run's is refused."""


def _plain(value):
    return json.loads(json.dumps(value, sort_keys=True, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def data_source(source: str | None) -> str:
    """A data subset's ``source`` as the identity compares it: ``"auto"`` (or unrecorded) is ``"full"``,
    the same files either way (auto finds the full data or downloads it); ``"sample"`` is other data."""
    return "full" if source in (None, "auto") else source


def identity(config: dict, dataset: str | None, data_checksum: str | None, data_subset: dict | None) -> dict:
    """What defines a run, as plain JSON values (``config``: :meth:`~microcircuit.config.NetworkConfig.to_dict`)."""
    subset = {k: v for k, v in (data_subset or {}).items() if v is not None}
    subset["source"] = data_source(subset.get("source"))
    return _plain({"config": config, "dataset": dataset, "data_checksum": data_checksum, "data_subset": subset})


def fingerprint(ident: dict) -> str:
    """A short stable digest of an identity (16 hex digits of SHA-256 over its canonical JSON)."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def of_log(log: dict | None) -> dict | None:
    """The identity of the run a log (or a checkpoint's copy of it) records; ``None`` for a log
    that records no config (empty, or not a run's)."""
    if not isinstance(log, dict) or not isinstance(log.get("config"), dict):
        return None
    prov = log.get("provenance") if isinstance(log.get("provenance"), dict) else {}
    return identity(log["config"], prov.get("dataset"), prov.get("data_checksum"), prov.get("data_subset"))


def differences(run: dict, other: dict, allow=()) -> list[str]:
    """Where ``other`` contradicts ``run``: ``"key (run's -> other's)"``; the settings in
    ``allow`` may differ. Unknown values (``None``) are no contradiction."""
    out = []
    for key in sorted(set(run["config"]) | set(other["config"])):
        a, b = run["config"].get(key), other["config"].get(key)
        if key not in allow and a is not None and b is not None and a != b:
            out.append(f"{key} ({a!r} -> {b!r})")
    for key in ("dataset", "data_checksum"):
        a, b = run[key], other[key]
        if a is not None and b is not None and a != b:
            out.append(f"{key} ({a!r} -> {b!r})")
    a, b = run["data_subset"], other["data_subset"]
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"data {key} ({a.get(key)!r} -> {b.get(key)!r})")
    return out

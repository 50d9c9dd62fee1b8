"""The run log's schema: what a ``log.json`` (and the copy of it inside a checkpoint) must be.

A training run (:func:`microcircuit.training.run`) writes its log as one JSON object::

    {"config": {...},                      # the network's settings (NetworkConfig.to_dict)
     "epochs": [{"epoch": 1, ...}, ...],    # one record per epoch: int epochs >= 1, increasing
     "provenance": {...}, "segments": [{...}, ...], "status": "done", "wall_seconds": 12.3,
     "fingerprint": "..."}                  # optional, each of its type where present

and a record's numbers (``train_loss``, ``test_accuracy``, ...) are numbers (or null), its
``alignment_deg`` a list of them. Whatever reads a log checks it here first, with
:func:`check_log`, so that a JSON value of another shape (a list, records without ``epoch``,
another tool's file) is named as such in one line instead of crashing a reader further on:
training keeps such a file aside and rebuilds the log from its checkpoint, the report skips it
with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

RECORD_NUMBERS = ("train_loss", "seconds", "test_accuracy", "test_loss", "train_accuracy", "train_eval_loss")
"""The numeric fields of an epoch's record (each optional, a number or null)."""

NOT_A_LOG = "not a run's log"
"""How :func:`read_log` begins the problem of valid JSON that fails :func:`check_log`."""

OPTIONAL = (("provenance", dict, "an object"), ("segments", list, "a list"), ("status", str, "a string"),
            ("wall_seconds", (int, float), "a number"), ("fingerprint", str, "a string"))
"""Top-level fields a log may hold: ``(key, type, said as)``; null counts as absent."""


def _kind(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_log(log) -> str | None:
    """Why ``log`` (a parsed JSON value) is not a run's log, in a few words; ``None`` if it is one."""
    if not isinstance(log, dict):
        return f"a JSON {_kind(log)}, not an object"
    if "epochs" not in log:
        return "it has no 'epochs'"
    epochs = log["epochs"]
    if not isinstance(epochs, list):
        return f"its 'epochs' is a {_kind(epochs)}, not a list"
    if not isinstance(log.get("config"), dict):
        return "it has no 'config' object"
    previous = 0
    for k, record in enumerate(epochs):
        if not isinstance(record, dict):
            return f"epochs[{k}] is a {_kind(record)}, not an object"
        epoch = record.get("epoch")
        if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
            return f"epochs[{k}] has no int 'epoch' >= 1 (it has {epoch!r})"
        if epoch <= previous:
            return f"epochs[{k}] is epoch {epoch}, after epoch {previous}: the records are not in order"
        previous = epoch
        for key in RECORD_NUMBERS:
            if not _number(record.get(key)):
                return f"epochs[{k}].{key} is a {_kind(record[key])}, not a number"
        angles = record.get("alignment_deg")
        if angles is not None and not (isinstance(angles, list) and all(_number(a) for a in angles)):
            return f"epochs[{k}].alignment_deg is not a list of numbers"
    for key, types, said in OPTIONAL:
        value = log.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return f"its '{key}' is a {_kind(value)}, not {said}"
    if any(not isinstance(s, dict) for s in log.get("segments") or []):
        return "its 'segments' are not all objects"
    return None


def read_log(path) -> tuple[dict | None, str | None]:
    """``(log, problem)`` of the file at ``path``: the log, or ``None`` with why it cannot be used
    (unreadable, not JSON, or not a run's log: :func:`check_log`). A missing file is
    ``(None, None)``."""
    try:
        log = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return None, f"{type(exc).__name__}: {exc}"
    problem = check_log(log)
    return (None, f"{NOT_A_LOG}: {problem}") if problem else (log, None)

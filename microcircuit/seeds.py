"""Results over seeds: each rule's spread, its paired gap to BP, and runs that must be identical.

A run is one draw: another seed gives other initial weights, data order and noise, and so
another accuracy. Over the seeds ``k`` that finished, a rule's final test accuracy is shown
as mean +- standard deviation (:func:`microcircuit.stats.mean_sd`); one seed is one value
with no spread. A rule is compared with BP *paired by seed*: with errors ``e_k`` (rule) and
``b_k`` (BP) in percent,

    d_k = e_k - b_k        over the seeds both finished,

and :func:`microcircuit.stats.paired_interval` says whether ``mean(d)`` stands out of the
seed noise. Runs still in progress are never averaged in.

The rate-mode microcircuit computes SC-FA's updates exactly
(:doc:`chapter 8 </chapters/08_equivalence>`), and its error
cells draw from their own random stream, so a microcircuit run and an SC-FA run of the same
seed, made by the same code with the same BLAS threads, write the same log: every per-epoch
record equal, wall time aside. :func:`compare_logs` checks that, and when two logs differ,
names what their provenance says differs. These functions work on the run dicts of
:func:`microcircuit.report.load_results`.
"""

from __future__ import annotations

import dataclasses
import json
import math

from . import stats
from .config import NetworkConfig
from .rules import REGISTRY

DONE = "done"
MISSING = "missing"

TIMING_KEYS = ("seconds",)
"""Per-epoch record fields that measure the machine, not the run (left out of comparisons)."""

PROVENANCE_KEYS = ("git_commit", "blas_threads", "backend", "dtype", "numpy", "machine", "data_checksum")
"""Provenance fields that can change a run's numbers (commit, BLAS threads, ...)."""

RULE_OPTIONS = {"rule"} | {o for e in REGISTRY.values() for o in e.options}
"""Config fields in which a microcircuit run and an SC-FA run of one preset may differ."""


def final_accuracy(run: dict):
    """The test accuracy (fraction) after the run's last evaluated epoch; ``None`` without one."""
    evaluated = [e for e in run["epochs"] if e.get("test_accuracy") is not None]
    return evaluated[-1]["test_accuracy"] if evaluated else None


def finished(runs: dict) -> dict:
    """``{seed: run}`` of the runs (``{seed: run}``) that are done and have a test accuracy."""
    return {s: r for s, r in sorted(runs.items()) if r["status"] == DONE and final_accuracy(r) is not None}


def spread(values: dict) -> dict:
    """Mean and sample sd of ``{seed: value}``: ``{"seeds", "values", "n", "mean", "sd"}``.

    ``sd`` is ``None`` for one seed; ``mean`` too for none.
    """
    seeds = sorted(values)
    vals = [float(values[s]) for s in seeds]
    if not vals:
        return {"seeds": [], "values": [], "n": 0, "mean": None, "sd": None}
    m, sd = stats.mean_sd(vals)
    return {"seeds": seeds, "values": vals, "n": len(vals), "mean": m, "sd": None if math.isnan(sd) else sd}


def paired_gap(errors: dict, base: dict, level: float = 0.95):
    """Paired difference ``errors[k] - base[k]`` over the seeds both have (``{seed: value}``).

    Returns :func:`microcircuit.stats.paired_interval`'s dict plus ``"seeds"``; ``None`` when
    no seed is shared.
    """
    seeds = sorted(set(errors) & set(base))
    if not seeds:
        return None
    out = stats.paired_interval([errors[s] for s in seeds], [base[s] for s in seeds], level=level)
    out["seeds"] = seeds
    return out


def gap_sentence(label: str, gap: dict, base: str = "bp") -> str:
    """The verdict on a paired gap to ``base`` (rate-BP or BPTT), written by :func:`microcircuit.stats.gap_verdict`."""
    return stats.gap_verdict(gap, what=f"{label}'s test error − {REGISTRY[base].label}'s", unit=" pp")


def status(runs: dict, expected) -> str:
    """One word when every expected seed agrees (``done``, ``running``, ``missing``), else
    counts such as ``"2 done, 1 running"``."""
    states = [runs[s]["status"] if s in runs else MISSING for s in sorted(set(expected) | set(runs))]
    if not states:
        return MISSING
    counts = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return states[0] if len(counts) == 1 else ", ".join(f"{n} {state}" for state, n in counts.items())


def per_seed_text(runs: dict, expected) -> str:
    """Every seed's final test accuracy (%), or its state: ``"s0 98.80 · s1 running (6/20 ep., 97.84)"``."""
    parts = []
    for s in sorted(set(expected) | set(runs)):
        run = runs.get(s)
        acc = final_accuracy(run) if run else None
        if run is None:
            parts.append(f"s{s} {MISSING}")
        elif run["status"] == DONE and acc is not None:
            parts.append(f"s{s} {100 * acc:.2f}")
        else:
            at = f", {100 * acc:.2f}" if acc is not None else ""
            parts.append(f"s{s} {run['status']} ({len(run['epochs'])}/{run['config'].get('epochs')} ep.{at})")
    return " · ".join(parts)


def mean_sd_text(summary: dict, scale: float = 100.0) -> str | None:
    """A :func:`spread` as ``"98.75 ± 0.05"`` (times ``scale``: %), one seed without the sd;
    ``None`` for no seed."""
    if not summary or summary["n"] == 0:
        return None
    mean = f"{scale * summary['mean']:.2f}"
    return mean if summary["sd"] is None else f"{mean} ± {scale * summary['sd']:.2f}"


# ------------------------------------------------------------------- identical logs
def _record(epoch: dict) -> str:
    """An epoch record without its timings, as canonical JSON (exact floats, NaN equal to NaN)."""
    return json.dumps({k: v for k, v in epoch.items() if k not in TIMING_KEYS}, sort_keys=True)


def _provenances(run: dict) -> list[dict]:
    return [run.get("provenance") or {}] + [s for s in run.get("segments") or () if isinstance(s, dict)]


def _short(value) -> str:
    text = str(value)
    return text[:10] + ("-dirty" if text.endswith("-dirty") else "") if len(text) == 40 or text.endswith("-dirty") \
        else text


def provenance_values(run: dict, key: str) -> str | None:
    """Every value of provenance ``key`` over a run and its resumed segments, in order and
    ``/``-joined: ``"numpy/cupy"`` for a run begun on a CPU and resumed on a GPU; ``None`` where
    no record has ``key`` (a run made before it was recorded)."""
    return "/".join(dict.fromkeys(_short(p.get(key)) for p in _provenances(run) if key in p)) or None


def provenance_differences(a: dict, b: dict) -> list[str]:
    """What the provenance (every resumed segment too) and the settings of two runs say differs.

    One phrase per field, e.g. ``"git_commit 211a2eae8c vs 7e3f8cc984"``; the rule's own
    options (:data:`RULE_OPTIONS`) are not counted.
    """
    out = []
    for key in PROVENANCE_KEYS:
        va = sorted({_short(p.get(key)) for p in _provenances(a) if key in p})
        vb = sorted({_short(p.get(key)) for p in _provenances(b) if key in p})
        if va and vb and va != vb:
            out.append(f"{key} {'/'.join(va)} vs {'/'.join(vb)}")
    ca, cb = a.get("config") or {}, b.get("config") or {}
    default = {f.name: f.default for f in dataclasses.fields(NetworkConfig)}  # a run made before a setting
    for key in sorted((set(ca) | set(cb)) - set(RULE_OPTIONS)):              # existed ran with its default
        va, vb = ca.get(key, default.get(key)), cb.get(key, default.get(key))
        if va != vb:
            out.append(f"setting {key} {va!r} vs {vb!r}")
    return out


def compare_logs(a: dict, b: dict) -> dict:
    """Are two runs' logs the same, every per-epoch record equal except its timings?

    Returns ``identical`` (both done, same number of epochs, every record equal),
    ``same_so_far`` (the epochs both have are equal), ``compared`` (that number of epochs),
    ``epochs`` and ``status`` (each run's), ``first_difference`` (``(epoch, field, a's, b's)`` or
    ``None``) and ``reasons`` (:func:`provenance_differences`).
    """
    ea, eb = a["epochs"], b["epochs"]
    first = None
    for ra, rb in zip(ea, eb):
        if _record(ra) != _record(rb):
            keys = sorted((set(ra) | set(rb)) - set(TIMING_KEYS))
            key = next(k for k in keys if json.dumps(ra.get(k)) != json.dumps(rb.get(k)))
            first = (ra.get("epoch"), key, ra.get(key), rb.get(key))
            break
    compared = min(len(ea), len(eb))
    complete = a["status"] == DONE and b["status"] == DONE and len(ea) == len(eb) and compared > 0
    return {"identical": first is None and complete, "same_so_far": first is None and compared > 0,
            "compared": compared, "epochs": (len(ea), len(eb)), "status": (a["status"], b["status"]),
            "first_difference": first, "reasons": provenance_differences(a, b)}


def _value(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else json.dumps(v)


def equivalence_sentence(cmp: dict, names=("microcircuit", "SC-FA")) -> str:
    """What :func:`compare_logs` found, as a sentence the report prints."""
    na, nb = cmp["epochs"]
    if cmp["identical"]:
        return f"bit-identical: all {na} per-epoch records equal (wall time aside)."
    if cmp["first_difference"] is not None:
        epoch, key, va, vb = cmp["first_difference"]
        why = ("; the provenance shows " + ", ".join(cmp["reasons"]) if cmp["reasons"]
               else "; the provenance shows no difference that would explain it")
        return f"differ from epoch {epoch} on (first: {key} {_value(va)} vs {_value(vb)}){why}."
    if not cmp["compared"]:
        return "nothing to compare yet: a run has no finished epoch."
    open_ = [f"{n} {s} at epoch {k}" for n, s, k in zip(names, cmp["status"], cmp["epochs"]) if s != DONE]
    return (f"identical so far: the {cmp['compared']} epochs both have are equal "
            f"({', '.join(open_) or 'different lengths'}).")

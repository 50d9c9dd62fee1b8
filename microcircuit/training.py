"""Training runs that survive interruption: an epoch loop with checkpoints, logs and provenance.

``run(...)`` trains a :class:`~microcircuit.network.Network` on a dataset and writes, in its
output folder, after every epoch (each file atomically: written aside, then renamed):

- ``checkpoint.npz``: the network, optimiser and random state: ``resume=True`` continues
  to exactly the weights an uninterrupted run would reach;
- ``log.json``: provenance (library version, git commit, backend, dtype, seed, dataset
  checksum, wall time) and one record per epoch (training loss; accuracy on the first
  training images and on the test set, and test loss; alignment angles; seconds);
- ``log.csv``: the same per-epoch records as a table.

A non-finite loss stops the run with :class:`~microcircuit.network.DivergenceError`; the last
good checkpoint stays, and the log records the failure.
"""

from __future__ import annotations

import csv
import errno
import dataclasses
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import backend, environment, logs, runspec
from .checkpoint import read_log as checkpoint_log, save as save_checkpoint
from ._version import __version__
from .config import NetworkConfig, encode_layers
from .files import check_writable, remove_temp_files, write_atomic
from .identity import RESUME_OVERRIDES, data_source, differences, fingerprint, of_log
from .locks import lock_checkpoint, lock_run
from .network import DivergenceError, Network

def git_commit() -> str | None:
    """The commit of the library's checkout, if it is one (``None`` for an installed wheel)."""
    if sys.platform == "emscripten":  # a browser (Pyodide, JupyterLite) starts no processes
        return None
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(seed: int, dataset: str | None = None, data_checksum: str | None = None) -> dict:
    """What produced a result: versions, commit, backend, dtype, seed, data checksum, machine."""
    return {
        "library_version": __version__,
        "git_commit": git_commit(),
        "backend": backend.name(),
        "dtype": backend.dtype().name,
        "seed": seed,
        "dataset": dataset,
        "data_checksum": data_checksum,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "blas_threads": environment.recorded("OPENBLAS_NUM_THREADS"),  # results differ in the last bits with it
    }


def _csv(records: list[dict]) -> str:
    keys = []
    for rec in records:
        keys += [k for k in rec if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for rec in records:
        writer.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in rec.items()})
    return buf.getvalue()


def write_log(folder, log: dict):
    """Write a run's ``log.json`` and its per-epoch table ``log.csv`` into ``folder``, atomically."""
    folder = Path(folder)
    write_atomic(folder / "log.json", json.dumps(log, indent=1))
    write_atomic(folder / "log.csv", _csv(log["epochs"]))


def _progress(iterable, quiet: bool, **kwargs):
    if quiet:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


# ----------------------------------------------------------------------- runs
class ResumeMismatchError(ValueError):
    """``resume`` was asked with settings that contradict the run it would continue."""


def _plain(key, value):
    """A setting as it is stored in a log or checkpoint (JSON), for comparison."""
    if key == "layers":
        try:
            value = encode_layers(NetworkConfig(layers=value).layers)
        except (ValueError, TypeError):
            pass  # compared as given: it differs from any stored one
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _count(n: int, what: str = "epoch") -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _stored_log(ckpt: Path) -> dict | None:
    """The copy of the run's log inside the checkpoint ``ckpt``, if it holds one that is a log."""
    stored = checkpoint_log(ckpt)
    return stored if stored is not None and logs.check_log(stored) is None else None


def _keep_aside(log_path: Path, problem: str, rebuilt: bool) -> None:
    """Move a log that cannot be used out of the way, with a warning, never deleting or overwriting
    a record: ``log.json.corrupt-<time>`` (unreadable), ``log.json.invalid-<time>`` (JSON, not a log)."""
    import warnings

    invalid = problem.startswith(logs.NOT_A_LOG)
    kind, stamp = "invalid" if invalid else "corrupt", time.strftime("%Y%m%d-%H%M%S")
    aside, n = log_path.with_name(f"log.json.{kind}-{stamp}"), 1
    while aside.exists():  # two in one second: each keeps its own name
        aside, n = log_path.with_name(f"log.json.{kind}-{stamp}-{n}"), n + 1
    os.replace(log_path, aside)
    warnings.warn(f"{log_path} {'is' if invalid else 'was unreadable:'} {problem}; kept as {aside.name}"
                  + ("; its records are rebuilt from the checkpoint" if rebuilt else ""), stacklevel=4)


def _check_run_args(train, test, epochs, train_eval_samples, alignment_samples=1, network_kwargs=()):
    if not (isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool) and epochs > 0):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not (isinstance(alignment_samples, (int, np.integer)) and not isinstance(alignment_samples, bool)
            and alignment_samples >= 1):
        raise ValueError(f"alignment_samples must be an int >= 1, got {alignment_samples!r}")
    names = {f.name for f in dataclasses.fields(NetworkConfig)} | {"progress"}
    unknown = sorted(set(network_kwargs) - names)
    if unknown:
        raise ValueError(f"unknown network setting(s) {', '.join(unknown)}: choose from {', '.join(sorted(names))}")
    if not (isinstance(train_eval_samples, (int, np.integer)) and train_eval_samples >= 0):
        raise ValueError(f"train_eval_samples must be an int >= 0 (0: no training-set evaluation), got {train_eval_samples!r}")
    for name, split in (("train", train), ("test", test)):
        if split is None and name == "test":
            continue
        n = len(split[0])
        if n == 0:
            raise ValueError(f"{name} has no samples: pass at least one")
        if len(split[1]) != n:
            raise ValueError(f"{name} has {n} inputs but {len(split[1])} labels")


def _mismatches(net_config: dict, given: dict, run_data: dict, data_given: dict) -> list[str]:
    """The settings in which a resume contradicts the run: ``key (run's -> given)``."""
    net_config = net_config.to_dict() if isinstance(net_config, NetworkConfig) else net_config
    out = []
    for key, value in given.items():
        if key in RESUME_OVERRIDES or key not in net_config:
            continue
        if _plain(key, value) != _plain(key, net_config[key]):
            out.append(f"{key} ({_plain(key, net_config[key])!r} -> {_plain(key, value)!r})")
    for key, value in data_given.items():
        old = run_data.get(key)
        if key == "source":  # compared as the identity compares it (auto and full: the same files)
            old, value = (None if v is None else data_source(v) for v in (old, value))
        if value is not None and old is not None and _plain(key, value) != _plain(key, old):
            out.append(f"{key} ({old!r} -> {value!r})")
    return out


def _check_same_run(out: Path, ckpt: Path, log: dict | None, stored: dict | None):
    """Refuse a checkpoint that is not this run's: one that lies in another run's folder (recorded
    in it), one of a run whose folder still holds its log brought here without that log, or one whose
    run differs from the log's in anything but lr and epochs. (A run folder copied whole, log and
    checkpoint, is a copy of the run: it resumes.)"""
    home = (stored or {}).get("run_folder")
    here = Path(out).resolve()
    parents = Path(ckpt).resolve().parents
    inside = home is not None and Path(home) in parents and here not in parents  # in another run's folder
    if home and Path(home) != here and (inside or ((Path(home) / "log.json").exists()
                                                   and not (here / "log.json").exists())):
        raise ResumeMismatchError(
            f"{ckpt} is the checkpoint of the run in {home}, not of {out}: resume that run "
            f"(--out {home}), or give this one its own --checkpoint")
    ours, theirs = of_log(log), of_log(stored)
    wrong = differences(theirs, ours, allow=RESUME_OVERRIDES) if ours and theirs else []
    if wrong:
        raise ResumeMismatchError(
            f"{ckpt} belongs to another run than the log in {out} (the checkpoint's -> the log's: "
            f"{', '.join(wrong)}): give each run its own --checkpoint, or move the one that is not this run's away")


def run(
    train,
    test,
    out,
    *,
    epochs: int,
    resume: bool = False,
    quiet: bool = False,
    dataset: str | None = None,
    data_checksum: str | None = None,
    data_subset: dict | None = None,
    alignment_samples: int = 256,
    train_eval_samples: int = 10_000,
    checkpoint=None,
    allow=RESUME_OVERRIDES,
    **network_kwargs,
) -> dict:
    """Train a network on ``train = (x, y)``, evaluate on ``test`` after each epoch.

    ``out`` is the run folder. With ``resume=True`` an existing checkpoint there is
    continued; without it an existing checkpoint is an error, and so is a log that holds
    epochs, so that no run is overwritten by accident. A resume refuses settings that
    contradict the run (:class:`ResumeMismatchError` naming them: the network's settings,
    ``dataset``, ``data_checksum`` and ``data_subset``), except ``lr`` and ``epochs``
    (``allow``, default :data:`~microcircuit.identity.RESUME_OVERRIDES`), which it records in its
    segment of the log. The run's fingerprint (:mod:`microcircuit.identity`) goes into the log and
    the checkpoint; a resume refuses a checkpoint whose run is not the log's, or that belongs to
    another run folder that still holds its log.
    ``data_checksum`` names the dataset split; ``data_subset`` says how the arrays were cut
    from it (e.g. ``{"validation": 10000, "limit": None}``), and the sample counts are
    recorded too. Returns the log.

    One process at a time: the folder is locked while the run trains
    (:func:`microcircuit.locks.lock_run`), and temporary files of writes killed earlier are
    removed. The checkpoint holds the log too, so a kill between writing the two loses
    nothing; an unreadable ``log.json`` (``log.json.corrupt-...``), or JSON that is not a run's
    log (:func:`microcircuit.logs.check_log`: ``log.json.invalid-...``), is kept aside with a
    warning and rebuilt from the checkpoint, never overwritten. A resume whose checkpoint has
    trained epochs that neither the log nor the checkpoint records is refused
    (``FileExistsError``): it would leave a log with a gap.

    After each epoch the network is evaluated on the test set (``test_accuracy``,
    ``test_loss``) and, as it is evaluated there (no augmentation), on the first
    ``train_eval_samples`` training images (``train_accuracy``, ``train_eval_loss``; 0 turns
    this off): the gap between the two says whether a network overfits or underfits.
    ``train_loss`` is the mean loss over the epoch's mini-batches, as trained. A non-finite
    loss or a saturated network (:func:`~microcircuit.metrics.saturation`: ``partial_fit`` checks
    both) stops the run with :class:`~microcircuit.network.DivergenceError` before that epoch is saved.

    The log's ``provenance`` is that of the call that started the run; every call that
    trains epochs (the first and each resume) appends a record to ``segments``
    (``from_epoch``, ``to_epoch``, its own provenance and any ``overrides``), so a resumed
    run says which code produced which epochs. ``status`` is ``running``, ``done``,
    ``interrupted``, ``diverged: ...`` or ``failed: ...``. A resume with nothing left to
    train changes nothing.
    """
    _check_run_args(train, test, epochs, train_eval_samples, alignment_samples, network_kwargs)
    out = Path(out)
    ckpt = Path(checkpoint or out / "checkpoint.npz")
    if ckpt.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"the checkpoint {ckpt} is a folder: name a file, such as "
                                f"{ckpt / 'checkpoint.npz'}", str(ckpt))
    with lock_run(out), lock_checkpoint(ckpt):
        check_writable(ckpt.parent)
        for path in (ckpt, out / "log.json", out / "log.csv"):
            remove_temp_files(path)
        return _run_locked(train, test, out, ckpt, epochs=epochs, resume=resume, quiet=quiet, dataset=dataset,
                           data_checksum=data_checksum, data_subset=data_subset,
                           alignment_samples=alignment_samples, train_eval_samples=train_eval_samples,
                           network_kwargs=network_kwargs, allow=tuple(allow))


def _run_locked(train, test, out, ckpt, *, epochs, resume, quiet, dataset, data_checksum, data_subset,
                alignment_samples, train_eval_samples, network_kwargs, allow) -> dict:
    log_path = out / "log.json"
    log, problem = logs.read_log(log_path)
    if ckpt.exists() and not resume:
        raise FileExistsError(f"{ckpt} exists: pass resume=True (--resume) to continue it, or choose another output folder")
    if not ckpt.exists() and log and log.get("epochs"):
        raise FileExistsError(
            f"{log_path} holds {_count(len(log['epochs']))} but its checkpoint {ckpt} is missing, so the run cannot "
            f"continue and its log is not overwritten: move that folder away to start it again, or choose another "
            f"output folder")
    overrides = {}
    restored = problem is not None
    if ckpt.exists():
        saved = Network.load(ckpt)
        stored = _stored_log(ckpt)
        _check_same_run(out, ckpt, log, stored)
        if log is None or (stored and len([r for r in log.get("epochs", []) if r["epoch"] <= saved.epoch_])
                           < len([r for r in stored.get("epochs", []) if r["epoch"] <= saved.epoch_])):
            log, restored = (stored or {"epochs": []}), restored or stored is not None
        kept = {r["epoch"] for r in log.get("epochs", []) if r["epoch"] <= saved.epoch_}
        if len(kept) < saved.epoch_:  # e.g. log.json deleted beside a checkpoint that carries no log
            raise FileExistsError(
                f"{ckpt} has trained {_count(saved.epoch_)} but the records of only {len(kept)} survive (in "
                f"{log_path} or the checkpoint), so a resume would leave a log with a gap: restore that log.json, "
                f"or move the checkpoint away to train the run again from the start")
        run_prov = log.get("provenance", {})
        run_data = {"dataset": run_prov.get("dataset"), "data_checksum": run_prov.get("data_checksum"),
                    **(run_prov.get("data_subset") or {})}
        run_data["train_samples"] = run_prov.get("train_samples")
        wrong = _mismatches(saved.config, network_kwargs, run_data,
                            {"dataset": dataset, "data_checksum": data_checksum, **(data_subset or {}),
                             "train_samples": int(len(train[0]))})
        if wrong:
            raise ResumeMismatchError(
                f"{out}: resume (--resume) would continue a run made with other settings: {', '.join(wrong)}. "
                f"Drop those settings (the run keeps its own), or start a new run in another output folder; "
                f"a resume may change only {' and '.join(RESUME_OVERRIDES)}")
        for key, value in (("lr", network_kwargs.get("lr")), ("epochs", epochs)):
            if value is not None and _plain(key, value) != _plain(key, getattr(saved.config, key)):
                if key not in allow:
                    raise ResumeMismatchError(
                        f"{out}: this run was made with {key}={getattr(saved.config, key)!r}, not {value!r}, and "
                        f"here a resume may change nothing: move {out} and {ckpt} away to start it again, or "
                        f"extend it with `train --out {out} --checkpoint {ckpt} --resume --{key} {value}`")
                overrides[key] = {"from": getattr(saved.config, key), "to": value}
        net = Network.load(ckpt, progress=not quiet, **{k: v["to"] for k, v in overrides.items()})
    if problem is not None:  # keep the unusable log aside, never delete a record
        _keep_aside(log_path, problem, rebuilt=ckpt.exists())
    if ckpt.exists():
        log["epochs"] = [r for r in log.get("epochs", []) if r["epoch"] <= net.epoch_]
        for seg in log.get("segments", []):
            if seg.get("to_epoch") is not None and seg["to_epoch"] > net.epoch_:
                seg["to_epoch"] = net.epoch_
    else:
        net = Network(epochs=epochs, progress=not quiet, **network_kwargs)
        log = {"epochs": []}
    if net.epoch_ >= epochs:
        finished_now = bool(log.get("epochs")) and log.get("status") != "done" and \
            log["epochs"][-1]["epoch"] >= epochs  # the last epoch saved, its "done" never written
        if finished_now:
            log["status"] = "done"
        if restored or finished_now:
            write_log(out, log)
        return log
    prov = provenance(net.config.seed, dataset, data_checksum)
    prov["data_subset"] = data_subset
    prov["train_samples"] = int(train[0].shape[0])
    prov["test_samples"] = None if test is None else int(test[0].shape[0])
    prov["train_eval_samples"] = min(int(train_eval_samples), prov["train_samples"])
    log["config"] = net.config.to_dict()
    log.setdefault("provenance", prov)
    log["fingerprint"] = fingerprint(of_log(log))
    log.setdefault("segments", []).append({"from_epoch": net.epoch_, "to_epoch": None, **prov,
                                           **({"overrides": overrides} if overrides else {})})
    log["status"] = "running"
    write_log(out, log)
    try:
        _epochs(net, train, test, out, ckpt, log, epochs, quiet, alignment_samples, train_eval_samples)
    except DivergenceError as exc:
        log["status"] = f"diverged: {exc}"
        write_log(out, log)
        raise
    except KeyboardInterrupt:
        log["status"] = "interrupted"
        write_log(out, log)
        raise
    except BaseException as exc:
        log["status"] = f"failed: {type(exc).__name__}: {exc}"
        try:
            write_log(out, log)
        except OSError:
            pass  # the disk may be what failed: the last log written stays
        raise
    log["status"] = "done"
    write_log(out, log)
    return log


def _epochs(net, train, test, out, ckpt, log, epochs, quiet, alignment_samples, train_eval_samples):
    """The epoch loop of :func:`run`: train, evaluate, check, checkpoint (with the log), log."""
    x, y = backend.asarray(train[0]), train[1]  # to the device once, not every epoch
    if test is not None:
        test = (backend.asarray(test[0]), test[1])
    x_align, y_align = x[:alignment_samples], y[:alignment_samples]
    x_fit, y_fit = x[:train_eval_samples], y[:train_eval_samples]
    wall = sum(r["seconds"] for r in log["epochs"])
    bar = _progress(range(net.epoch_, epochs), quiet, desc="epochs", initial=net.epoch_, total=epochs)
    for _ in bar:
        t0 = time.perf_counter()
        loss = net.partial_fit(x, y)
        seconds = time.perf_counter() - t0  # partial_fit stops on divergence or saturation
        record = {"epoch": net.epoch_, "train_loss": round(loss, 6), "seconds": round(seconds, 3)}
        if train_eval_samples > 0:
            ev = net.evaluate(x_fit, y_fit)
            record.update(train_accuracy=ev["accuracy"], train_eval_loss=round(ev["loss"], 6))
        if test is not None:
            ev = net.evaluate(*test)
            record.update(test_accuracy=ev["accuracy"], test_loss=round(ev["loss"], 6))
        record["alignment_deg"] = [round(a, 3) for a in net.alignment(x_align, y_align)]
        wall += seconds
        # the checkpoint (holding the new record) first: the log never claims an epoch that a
        # failed or interrupted checkpoint write did not keep
        after = dict(log, epochs=log["epochs"] + [record], wall_seconds=round(wall, 3),
                     segments=log["segments"][:-1] + [dict(log["segments"][-1], to_epoch=net.epoch_)])
        save_checkpoint(net, ckpt, log=dict(after, run_folder=str(Path(out).resolve())))
        log.update(after)
        write_log(out, log)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss:.4f}", acc=record.get("test_accuracy"))


run_paths = runspec.paths
run_log = runspec.run_log


def train(spec: runspec.RunSpec, *, quiet: bool = False, arrays=None) -> dict:
    """Run (or resume) the run ``spec`` specifies (:func:`microcircuit.runspec.build`): read its data
    (or take ``arrays = (train, test)`` already read from it) and train it with :func:`run`."""
    check_writable(spec.out)
    check_writable(spec.checkpoint.parent)
    train_set, test = arrays if arrays is not None else spec.load()
    return run(train_set, test, spec.out, epochs=spec.epochs, resume=spec.resume, quiet=quiet, dataset=spec.dataset,
               data_checksum=spec.data_checksum(), data_subset=spec.data_subset, checkpoint=spec.checkpoint,
               train_eval_samples=spec.train_eval, allow=spec.allow, **spec.settings)


def finished(out, epochs: int) -> bool:
    """True when the log in ``out`` says its run is done with at least ``epochs`` epochs."""
    return _done(logs.read_log(Path(out) / "log.json")[0], epochs)


def _done(log: dict | None, epochs: int) -> bool:
    return log is not None and log.get("status") == "done" and len(log["epochs"]) >= epochs


def run_preset(name: str, rule: str, *, seed: int = 0, quiet: bool = True, resume: bool = True,
               results=None, runs=None, source: str = "full", epochs: int | None = None) -> dict:
    """Run (or resume) one rule on a preset, where the book looks for it.

    ``rule`` is a name of the rule registry (:data:`microcircuit.rules.RUN_RULES`). The log and checkpoint go to :func:`run_paths`. A run whose log says
    it is done is returned as it is (its checkpoint, not committed, may be absent), provided it is
    the run asked for: a finished run of other settings (other epochs or lr, the sample, another
    subset) is refused in one line, never taken for this one, and so is resuming one (a sweep may
    change nothing; ``train --resume --epochs N`` extends a run explicitly). A log that holds epochs
    but has lost its checkpoint is refused, never overwritten.
    ``source="sample"`` trains on the bundled sample (tests); ``epochs`` overrides the
    preset's. This is what ``python -m microcircuit runs`` and ``sweep`` and the ``full``
    tier of the chapters call.
    """
    spec = runspec.for_preset(name, rule, seed=seed, results=results, runs=runs, source=source, epochs=epochs,
                              resume=resume)
    log, _problem = logs.read_log(spec.out / "log.json")
    if _done(log, spec.epochs):
        wrong = differences(of_log(log), spec.identity()) if of_log(log) else []
        if wrong:  # e.g. a trial on the sample, or with fewer epochs, in the same folder
            raise ResumeMismatchError(
                f"{spec.out} holds a finished run made with other settings ({', '.join(wrong)}): move it away to "
                f"run {name}/{rule}/seed-{seed} as asked, or write to other --results/--runs folders")
        return log
    return train(spec, quiet=quiet)

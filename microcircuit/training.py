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
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import backend, data
from ._version import __version__
from .config import is_dense
from .files import results_dir, runs_dir, write_atomic
from .network import DivergenceError, Network
from .presets import preset, run_settings

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
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),  # results differ in the last bits with it
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
    **network_kwargs,
) -> dict:
    """Train a network on ``train = (x, y)``, evaluate on ``test`` after each epoch.

    ``out`` is the run folder. With ``resume=True`` an existing checkpoint there is
    continued (its settings win; ``epochs`` may extend the run); without it an existing
    checkpoint is an error, so that no run is overwritten by accident.
    ``data_checksum`` names the dataset split; ``data_subset`` says how the arrays were cut
    from it (e.g. ``{"validation": 10000, "limit": None}``), and the sample counts are
    recorded too. Returns the log.

    After each epoch the network is evaluated on the test set (``test_accuracy``,
    ``test_loss``) and, as it is evaluated there (no augmentation), on the first
    ``train_eval_samples`` training images (``train_accuracy``, ``train_eval_loss``; 0 turns
    this off): the gap between the two says whether a network overfits or underfits.
    ``train_loss`` is the mean loss over the epoch's mini-batches, as trained.

    The log's ``provenance`` is that of the call that started the run; every call that
    trains epochs (the first and each resume) appends a record to ``segments``
    (``from_epoch``, ``to_epoch`` and its own provenance), so a resumed run says which code
    produced which epochs. A resume with nothing left to train changes nothing.
    """
    if not (isinstance(train_eval_samples, (int, np.integer)) and train_eval_samples >= 0):
        raise ValueError(f"train_eval_samples must be an int >= 0 (0: no training-set evaluation), got {train_eval_samples!r}")
    out = Path(out)
    ckpt, log_path = Path(checkpoint or out / "checkpoint.npz"), out / "log.json"
    if ckpt.exists() and not resume:
        raise FileExistsError(f"{ckpt} exists: pass resume=True (--resume) to continue it, or choose another output folder")
    if ckpt.exists():
        net = Network.load(ckpt, epochs=epochs, progress=not quiet)
        log = json.loads(log_path.read_text()) if log_path.exists() else {"epochs": []}
        log["epochs"] = [r for r in log.get("epochs", []) if r["epoch"] <= net.epoch_]
    else:
        net = Network(epochs=epochs, progress=not quiet, **network_kwargs)
        log = {"epochs": []}
    if net.epoch_ >= epochs:
        return log
    prov = provenance(net.config.seed, dataset, data_checksum)
    prov["data_subset"] = data_subset
    prov["train_samples"] = int(train[0].shape[0])
    prov["test_samples"] = None if test is None else int(test[0].shape[0])
    prov["train_eval_samples"] = min(int(train_eval_samples), prov["train_samples"])
    log["config"] = net.config.to_dict()
    log.setdefault("provenance", prov)
    log.setdefault("segments", []).append({"from_epoch": net.epoch_, "to_epoch": None, **prov})
    log["status"] = "running"
    x, y = backend.asarray(train[0]), train[1]  # to the device once, not every epoch
    if test is not None:
        test = (backend.asarray(test[0]), test[1])
    x_align, y_align = x[:alignment_samples], y[:alignment_samples]
    x_fit, y_fit = x[:train_eval_samples], y[:train_eval_samples]
    wall = sum(r["seconds"] for r in log["epochs"])
    bar = _progress(range(net.epoch_, epochs), quiet, desc="epochs", initial=net.epoch_, total=epochs)
    for _ in bar:
        t0 = time.perf_counter()
        try:
            loss = net.partial_fit(x, y)
        except DivergenceError as exc:
            log["status"] = f"diverged: {exc}"
            write_log(out, log)
            raise
        seconds = time.perf_counter() - t0
        record = {"epoch": net.epoch_, "train_loss": round(loss, 6), "seconds": round(seconds, 3)}
        if train_eval_samples > 0:
            ev = net.evaluate(x_fit, y_fit)
            record.update(train_accuracy=ev["accuracy"], train_eval_loss=round(ev["loss"], 6))
        if test is not None:
            ev = net.evaluate(*test)
            record.update(test_accuracy=ev["accuracy"], test_loss=round(ev["loss"], 6))
        record["alignment_deg"] = [round(a, 3) for a in net.alignment(x_align, y_align)]
        wall += seconds
        log["epochs"].append(record)
        log["segments"][-1]["to_epoch"] = net.epoch_
        log["wall_seconds"] = round(wall, 3)
        net.save(ckpt)
        write_log(out, log)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss:.4f}", acc=record.get("test_accuracy"))
    log["status"] = "done"
    write_log(out, log)
    return log


def run_paths(name: str, rule: str, seed: int = 0, *, results=None, runs=None) -> tuple[Path, Path]:
    """``(log folder, checkpoint)`` of one (preset, rule, seed) run.

    Logs: ``results/<dataset>/<name>/<rule>/seed-<seed>/`` (default :func:`results_dir`);
    checkpoints: ``runs/<name>/<rule>/seed-<seed>.npz`` (default :func:`runs_dir`).
    """
    dataset = preset(name)["dataset"]
    out = Path(results or results_dir()) / dataset / name / rule / f"seed-{int(seed)}"
    checkpoint = Path(runs or runs_dir()) / name / rule / f"seed-{int(seed)}.npz"
    return out, checkpoint


def finished(out, epochs: int) -> bool:
    """True when the log in ``out`` says its run is done with at least ``epochs`` epochs."""
    try:
        log = json.loads((Path(out) / "log.json").read_text())
    except (OSError, ValueError):
        return False
    return log.get("status") == "done" and len(log.get("epochs", [])) >= epochs


def run_preset(name: str, rule: str, *, seed: int = 0, quiet: bool = True, resume: bool = True,
               results=None, runs=None, source: str = "full", epochs: int | None = None) -> dict:
    """Run (or resume) one rule on a preset, where the book looks for it.

    ``rule`` is a name of the rule registry (:data:`microcircuit.rules.RUN_RULES`). The log and checkpoint go to :func:`run_paths`. A run whose log says
    it is done is returned as it is (its checkpoint, not committed, may be absent); a log
    that holds epochs but has lost its checkpoint is refused, never overwritten.
    ``source="sample"`` trains on the bundled sample (tests); ``epochs`` overrides the
    preset's. This is what ``python -m microcircuit runs`` and ``sweep`` and the ``full``
    tier of the chapters call.
    """
    dataset, preset_epochs, settings = run_settings(name, rule, seed=seed)
    epochs = preset_epochs if epochs is None else epochs
    out, checkpoint = run_paths(name, rule, seed, results=results, runs=runs)
    if finished(out, epochs):
        return json.loads((out / "log.json").read_text())
    if not checkpoint.exists() and (out / "log.json").exists():
        log = json.loads((out / "log.json").read_text())
        if log.get("epochs"):
            raise FileExistsError(
                f"{out / 'log.json'} holds {len(log['epochs'])} epochs but its checkpoint {checkpoint} is "
                f"missing, so the run cannot continue: move that folder away to start it again")
    flatten = is_dense(settings["layers"])
    train = data.load_dataset(dataset, "train", flatten=flatten, source=source)
    test = data.load_dataset(dataset, "test", flatten=flatten, source=source)
    checksum = data.sample_checksum(dataset, "train") if source == "sample" else data.data_checksum(dataset, "train")
    return run(train, test, out, epochs=epochs, resume=resume and checkpoint.exists(), quiet=quiet,
               dataset=dataset, data_checksum=checksum,
               data_subset={"source": source, "validation": None, "limit": None}, checkpoint=checkpoint, **settings)

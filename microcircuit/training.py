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

from . import __version__, backend
from .files import write_atomic
from .layers import spec_from_dict
from .network import DivergenceError, Network

_MLP = dict(T=8, epochs=20, batch_size=64, optimizer="adam", lr=1e-3, lr_schedule="cosine",
            surrogate="fast_sigmoid", output_scale=8.0, augment=2)
_CONV = dict(T=4, batch_size=64, optimizer="adam", lr=3e-4, lr_schedule="cosine", surrogate="fast_sigmoid",
             output_scale=8.0, augment=2)

PRESETS = {
    "mnist-mlp": dict(_MLP, dataset="mnist", layers=[784, 800, 10]),
    "mnist-mlp2": dict(_MLP, dataset="mnist", layers=[784, 800, 800, 10]),
    # Fashion-MNIST's items are centred: shifts made the MLP underfit (87.6 % test with
    # augment=2 vs 89.7 % validation accuracy after 10 epochs without, T=8; T=16 no better)
    "fashion-mlp": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 10], augment=0),
    "fashion-mlp2": dict(_MLP, dataset="fashion-mnist", layers=[784, 800, 800, 10], augment=0),
    # CIFAR-10: with weight_scale=1 the deep layers start almost silent (mean rates 0.13,
    # 0.025, 0.001, 0, 0 on sample images) and bp drove conv3 into saturation and the dense
    # layer silent: its test accuracy collapsed (38.7 -> 30.2 % by epoch 3 at lr 1e-3, and
    # 51.3 -> 29.6 % by epoch 6 at lr 5e-4) while the microcircuit kept learning. With
    # weight_scale=2 every layer starts active and bp stays stable even at lr 3e-3: validation
    # accuracy after 3 epochs 40.8 % vs 24.0 % with weight_scale=1 (`python scripts/
    # probe_preset.py cifar10-conv-cpu --rule bp --set lr=3e-3 lr_schedule=constant
    # warmup=0.1 weight_scale=2`, or =1). Plus a short warm-up and left-right flips.
    # Over full runs, lr 1e-3 was still too high: bp's test accuracy peaked at 58.3 % at
    # epoch 4, then fell to 48.5 % by epoch 7 (train loss 1.35 -> 1.60), with 41 % of its
    # dense-256 cells silent on all of 500 test images and mean surrogate gain 0.016; the
    # microcircuit's peaked at 64.0 % at epoch 12 and slid to 62.8 % by epoch 15 (train loss
    # 1.145 -> 1.175) as its weights kept growing (rms of conv2/conv3/dense 0.18/0.15/0.09 at
    # epoch 9, 0.22/0.19/0.11 at 15) and its dense layer's silent cells rose from 4 % (epoch
    # 7) to 10 %, gain 0.19 -> 0.08 (those logs: commits 19e68f9 and 0458e5c). At 3e-4 both
    # stay active: at bp's epoch 15 and the microcircuit's epoch 8, the dense layer has 3 % and
    # 2 % silent cells, gain 0.24 and 0.29, weight rms 0.14/0.11/0.06 and 0.13/0.09/0.05.
    "cifar10-conv-cpu": dict(
        _CONV, dataset="cifar10", epochs=30, weight_scale=2.0, warmup=0.05, flip=True,
        layers=[[3, 32, 32], {"type": "Conv", "channels": 32, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"},
                {"type": "Conv", "channels": 64, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"},
                {"type": "Conv", "channels": 128, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"}, 256, 10],
    ),
    "cifar10-conv-gpu": dict(
        _CONV, dataset="cifar10", epochs=60, T=6, weight_scale=2.0, warmup=0.05, flip=True,
        layers=[[3, 32, 32], {"type": "Conv", "channels": 64, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Conv", "channels": 64, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"},
                {"type": "Conv", "channels": 128, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Conv", "channels": 128, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"},
                {"type": "Conv", "channels": 256, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "Pool", "size": 2, "kind": "avg"}, 512, 10],
    ),
}
"""Named settings for the command line (``--preset``): the dataset plus ``Network`` keyword
arguments, the same for every rule. Layers are JSON-friendly: an input shape list, dicts for
``Conv``/``Pool``, ints."""

PRESET_RULES = ("bp", "fa", "dfa", "scfa", "microcircuit", "microcircuit-spiking")
"""The rules a preset runs (``run_preset``): the five of ``Network`` and the spiking microcircuit."""


def results_dir() -> Path:
    """Where run logs live: ``$MICROCIRCUIT_RESULTS`` if set, else the repository's ``data/results``."""
    env = os.environ.get("MICROCIRCUIT_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data" / "results"


def runs_dir() -> Path:
    """Where checkpoints live (large, not committed): ``$MICROCIRCUIT_RUNS`` or the repository's ``runs``."""
    env = os.environ.get("MICROCIRCUIT_RUNS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "runs"


def preset(name: str) -> dict:
    """A copy of the preset ``name`` (dataset plus ``Network`` keyword arguments)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {sorted(PRESETS)}")
    out = json.loads(json.dumps(PRESETS[name]))
    out["layers"] = [spec_from_dict(s) if isinstance(s, dict) else (tuple(s) if isinstance(s, list) else s)
                     for s in out["layers"]]
    return out


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
    prov = provenance(net.config["seed"], dataset, data_checksum)
    prov["data_subset"] = data_subset
    prov["train_samples"] = int(train[0].shape[0])
    prov["test_samples"] = None if test is None else int(test[0].shape[0])
    prov["train_eval_samples"] = min(int(train_eval_samples), prov["train_samples"])
    log["config"] = net.config
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


def run_settings(name: str, rule: str, *, seed: int = 0) -> tuple[str, int, dict]:
    """``(dataset, epochs, settings)`` of one rule on a preset: ``settings`` are the
    ``Network`` keyword arguments; ``"microcircuit-spiking"`` is the microcircuit in spiking
    mode with ``T_e=16``."""
    if rule not in PRESET_RULES:
        raise ValueError(f"unknown rule {rule!r}: choose one of {PRESET_RULES}")
    settings = preset(name)
    dataset, epochs = settings.pop("dataset"), settings.pop("epochs")
    spiking = rule == "microcircuit-spiking"
    settings.update(rule="microcircuit" if spiking else rule, seed=seed)
    if spiking:
        settings.update(mode="spiking", T_e=16)
    return dataset, epochs, settings


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

    ``rule`` is one of the rules or ``"microcircuit-spiking"`` (the microcircuit in spiking
    mode, ``T_e=16``). The log and checkpoint go to :func:`run_paths`. A run whose log says
    it is done is returned as it is (its checkpoint, not committed, may be absent); a log
    that holds epochs but has lost its checkpoint is refused, never overwritten.
    ``source="sample"`` trains on the bundled sample (tests); ``epochs`` overrides the
    preset's. This is what ``python -m microcircuit sweep`` and the ``full`` tier of the
    chapters call.
    """
    from . import data

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
    flatten = all(isinstance(v, int) for v in settings["layers"])
    train = data.load_dataset(dataset, "train", flatten=flatten, source=source)
    test = data.load_dataset(dataset, "test", flatten=flatten, source=source)
    checksum = data.sample_checksum(dataset, "train") if source == "sample" else data.data_checksum(dataset, "train")
    return run(train, test, out, epochs=epochs, resume=resume and checkpoint.exists(), quiet=quiet,
               dataset=dataset, data_checksum=checksum,
               data_subset={"source": source, "validation": None, "limit": None}, checkpoint=checkpoint, **settings)

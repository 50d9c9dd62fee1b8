"""A run specified once: the network, the data and how it is cut, the schedule, the seed, where
it writes, and (on a resume) what the run's own log says.

    spec = runspec.build(preset="mnist-mlp", typed={"rule": "bp"}, out="runs/mnist-bp")
    log = training.train(spec)

:func:`build` is the one function that turns a request (a preset, the settings typed on the
command line or given to the API, a run folder and a checkpoint) into a :class:`RunSpec`;
``train``, ``runs`` and ``sweep`` all go through it (:func:`for_preset` is the request of one
(preset, rule, seed) where the book looks for it). It owns the resume rules: on a resume, what is
not typed is the run's own (dataset, data subset, settings, epochs, training-set evaluation);
what is typed must agree with the run, except ``lr`` and ``epochs`` for ``train --resume``
(:data:`~microcircuit.identity.RESUME_OVERRIDES`), which :func:`microcircuit.training.run`
records in the log's segment; a sweep may change nothing. A preset's ``epochs`` and ``lr`` are
defaults, not requests: they never override a resumed run's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from . import data
from .checkpoint import read_log as checkpoint_log
from .config import NetworkConfig
from .files import results_dir, runs_dir
from .identity import RESUME_OVERRIDES, identity
from .logs import check_log, read_log
from .presets import preset as preset_settings
from .presets import run_settings
from .rules import network_settings

TRAIN_EVAL = 10_000
"""Training images evaluated after every epoch, as the test set is (``--train-eval``)."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run and where it goes.

    ``config``: the network (every setting, ``epochs``: the schedule, ``seed``); ``settings``: the
    network settings to pass (all of ``config`` for a new run; on a resume only those the request
    named, which must agree with the run's); ``dataset`` and how the arrays are cut from it
    (``source``: ``"auto"``, ``"full"`` or ``"sample"``; ``validation``: held-out samples or a
    fraction, 0 for the test set; ``limit``: the first N training samples); ``train_eval``:
    training images evaluated after every epoch; ``out`` and ``checkpoint``; ``resume``;
    ``allow``: the settings the resume may change.
    """

    config: NetworkConfig
    dataset: str
    out: Path
    checkpoint: Path
    settings: dict = field(default_factory=dict)
    source: str = "auto"
    validation: float = 0
    limit: int | None = None
    train_eval: int = TRAIN_EVAL
    resume: bool = False
    allow: tuple = RESUME_OVERRIDES

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def data_subset(self) -> dict:
        return {"source": self.source, "validation": self.validation or None, "limit": self.limit}

    def data_checksum(self) -> str | None:
        """The checksum of the training split this run reads (the sample's for ``source="sample"``)."""
        if self.source == "sample":
            return data.sample_checksum(self.dataset, "train")
        return data.data_checksum(self.dataset, "train")

    def identity(self, data_checksum=None) -> dict:
        """What the request defines (:mod:`microcircuit.identity`)."""
        return identity(self.config.to_dict(), self.dataset, data_checksum, self.data_subset)

    def load(self):
        """``(train, test)`` arrays: the test set, or the held-out part of the training set."""
        flatten = self.config.is_dense()
        if self.validation:
            cut = dict(validation=self.validation, source=self.source, seed=self.config.seed)
            train = data.load_dataset(self.dataset, "train", flatten=flatten, **cut)
            test = data.load_dataset(self.dataset, "validation", flatten=flatten, **cut)
        else:
            train = data.load_dataset(self.dataset, "train", flatten=flatten, source=self.source)
            test = data.load_dataset(self.dataset, "test", flatten=flatten, source=self.source)
        if self.limit:
            train = (train[0][: self.limit], train[1][: self.limit])
        return train, test


def run_log(out, checkpoint=None) -> dict:
    """The log of the run in folder ``out``: its ``log.json``, or the copy inside its checkpoint
    (default ``out/checkpoint.npz``) when that is missing or unreadable; ``{}`` if neither."""
    log, problem = read_log(Path(out) / "log.json")
    if log is None or problem is not None:
        log = checkpoint_log(Path(checkpoint or Path(out) / "checkpoint.npz"))
        log = log if check_log(log) is None else None
    return log or {}


def build(*, out, preset: str | None = None, dataset: str | None = None, typed: dict | None = None,
          checkpoint=None, resume: bool = False, sample: bool | None = None, validation=None, limit=None,
          train_eval=None, allow=RESUME_OVERRIDES) -> RunSpec:
    """The :class:`RunSpec` of a request, checked before any data is read.

    ``typed``: the network settings asked for (a run variant's name as ``rule``, such as
    ``microcircuit-spiking``, stands for its registry settings; typed ones win); ``preset``: named
    defaults; on a resume (``resume`` and a checkpoint that exists) the run's own log fills in what
    is not typed. Raises ValueError naming the problem.
    """
    out = Path(out)
    ckpt = Path(checkpoint) if checkpoint else out / "checkpoint.npz"
    resuming = bool(resume and ckpt.exists())
    previous = run_log(out, ckpt) if resuming else {}
    run_prov = previous.get("provenance") if isinstance(previous.get("provenance"), dict) else {}
    run_config = previous.get("config") if isinstance(previous.get("config"), dict) else {}
    subset = run_prov.get("data_subset") or {}
    typed = {k: v for k, v in (typed or {}).items() if v is not None}
    if "rule" in typed:
        typed = {**network_settings(typed["rule"]), **{k: v for k, v in typed.items() if k != "rule"}}
    settings = preset_settings(preset) if preset else {}
    dataset = dataset or settings.pop("dataset", None) or run_prov.get("dataset")
    settings.pop("dataset", None)
    settings.update(typed)
    config = NetworkConfig(**settings)  # every setting checked before any data is read
    if dataset is None:
        raise ValueError(f"name a --dataset ({', '.join(data.DATASETS)}) or a --preset")
    preset_epochs = settings.pop("epochs", None)
    # a resume keeps the run's epochs and lr unless they are typed (a preset's are not a request)
    epochs = (typed.get("epochs") or run_config.get("epochs") or config.epochs) if resuming else \
        (preset_epochs or config.epochs)
    sample = sample if sample is not None else subset.get("source") == "sample"
    source = "sample" if sample else ("full" if subset.get("source") == "full" else "auto")
    validation = validation if validation is not None else (subset.get("validation") or 0)
    if validation < 0:
        raise ValueError(f"argument --validation: must be a count or a fraction >= 0, got {validation!r}")
    limit = limit if limit is not None else subset.get("limit")
    train_eval = train_eval if train_eval is not None else run_prov.get("train_eval_samples", TRAIN_EVAL)
    if resuming:  # only what was asked: the run keeps its own settings (a preset's lr is not an override)
        passed = {k: v for k, v in settings.items() if k in typed or k != "lr"}
        own = NetworkConfig.from_dict({k: v for k, v in run_config.items() if k in NetworkConfig.__dataclass_fields__})
        config = own.replace(**{k: v for k, v in passed.items() if k not in RESUME_OVERRIDES}, epochs=epochs)
    else:
        if "layers" not in settings:  # the default hidden and output layers on this dataset's input
            config = config.replace(layers=(_input_size(dataset), *config.layers[1:]))
        passed = {k: v for k, v in config.to_dict().items() if k != "epochs"}
        config = config.replace(epochs=epochs)
    return RunSpec(config=config, dataset=dataset, out=out, checkpoint=ckpt, settings=passed, source=source,
                   validation=validation, limit=limit, train_eval=train_eval, resume=resume, allow=tuple(allow))


def _input_size(dataset: str) -> int:
    n = 1
    for v in data.input_shape(dataset):
        n *= v
    return n


def for_preset(name: str, rule: str, *, seed: int = 0, results=None, runs=None, source: str = "full",
               epochs: int | None = None, resume: bool = True) -> RunSpec:
    """The run of one rule on a preset where the book looks for it (:func:`paths`): the preset's
    settings and the rule's registry settings, nothing typed over them; a resume may change nothing."""
    dataset, preset_epochs, settings = run_settings(name, rule, seed=seed)
    out, ckpt = paths(name, rule, seed, results=results, runs=runs)
    config = NetworkConfig(epochs=preset_epochs if epochs is None else epochs, **settings)
    return RunSpec(config=config, dataset=dataset, out=out, checkpoint=ckpt, settings=settings, source=source,
                   resume=resume and ckpt.exists(), allow=())


def paths(name: str, rule: str, seed: int = 0, *, results=None, runs=None) -> tuple[Path, Path]:
    """``(log folder, checkpoint)`` of one (preset, rule, seed) run.

    Logs: ``results/<dataset>/<name>/<rule>/seed-<seed>/`` (default :func:`~microcircuit.files.results_dir`);
    checkpoints: ``runs/<name>/<rule>/seed-<seed>.npz`` (default :func:`~microcircuit.files.runs_dir`).
    """
    dataset = preset_settings(name)["dataset"]
    out = Path(results or results_dir()) / dataset / name / rule / f"seed-{int(seed)}"
    checkpoint = Path(runs or runs_dir()) / name / rule / f"seed-{int(seed)}.npz"
    return out, checkpoint


def fields() -> tuple:
    """The network settings a request may type (the fields of :class:`~microcircuit.config.NetworkConfig`)."""
    return tuple(f.name for f in dataclasses.fields(NetworkConfig))

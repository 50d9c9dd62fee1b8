"""Sweeps: every (preset, rule, seed) as one resumable run, spread over Dask workers.

    python -m microcircuit sweep --presets mnist-mlp fashion-mlp --rules all --seeds 0 1 2

Each task is :func:`microcircuit.training.run_preset`: its log goes to
``data/results/<dataset>/<preset>/<rule>/seed-<k>/`` and its checkpoint, written after every
epoch, to ``runs/<preset>/<rule>/seed-<k>.npz``. A sweep stopped at any moment and started
again skips the finished runs, resumes the others from their last epoch, and never trains
an epoch twice. One failing task is reported and does not stop the others.

The tasks run on Dask distributed (the optional extra ``pip install 'microcircuit[sweep]'``):
a ``LocalCluster`` of one single-threaded worker process per core by default, or the
cluster whose scheduler is at ``scheduler`` (``tcp://host:8786``). Without Dask they run
one after another in this process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from . import training
from .presets import preset
from .rules import RUN_RULES

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Task:
    """One run of a sweep: a rule on a preset with one seed."""

    preset: str
    rule: str
    seed: int

    def __str__(self):
        return f"{self.preset}/{self.rule}/seed-{self.seed}"


def tasks(presets, rules, seeds) -> list[Task]:
    """Every (preset, rule, seed), preset by preset and seed by seed; ``rules="all"`` means
    every rule a preset runs (:data:`microcircuit.rules.RUN_RULES`)."""
    rules = RUN_RULES if rules in ("all", ["all"], ("all",)) else tuple(rules)
    for name in presets:
        preset(name)  # unknown names fail here, before any work starts
    for rule in rules:
        if rule not in RUN_RULES:
            raise ValueError(f"unknown rule {rule!r}: choose from {', '.join(RUN_RULES)} or all")
    for seed in seeds:
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"seeds must be ints >= 0, got {seed!r}")
    return [Task(p, r, s) for p in presets for s in seeds for r in rules]


def run_task(task: Task, *, results=None, runs=None, source: str = "full", epochs=None) -> dict:
    """Run (or resume, or skip when done) one task; returns a short summary of its log."""
    t0 = time.perf_counter()
    log = training.run_preset(task.preset, task.rule, seed=task.seed, results=results, runs=runs,
                              source=source, epochs=epochs, quiet=True)
    last = log["epochs"][-1] if log.get("epochs") else {}
    return {"task": str(task), "status": log.get("status"), "epoch": last.get("epoch"),
            "test_accuracy": last.get("test_accuracy"), "seconds": round(time.perf_counter() - t0, 1)}


def _dask():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return None
    return Client, LocalCluster


def run(task_list, *, scheduler: str | None = None, workers: int | None = None, results=None, runs=None,
        source: str = "full", epochs=None, progress: bool = True, echo=print) -> dict:
    """Run every task; returns ``{"done": [...], "failed": [(task, message), ...]}``.

    With Dask: on the cluster at ``scheduler``, or on a ``LocalCluster`` of ``workers``
    single-threaded processes (default: one per core), BLAS at one thread each. Without Dask
    (or with ``workers=0``), one task after another in this process.
    """
    done, failed = [], []
    kwargs = dict(results=results, runs=runs, source=source, epochs=epochs)
    dask = _dask() if workers != 0 else None
    if dask is None:
        if workers != 0:
            echo("sweep: Dask is not installed (pip install 'microcircuit[sweep]'); running the tasks one by one")
        bar = _bar(len(task_list), progress)
        for k, task in enumerate(task_list):
            _postfix(bar, done, failed, 1, len(task_list) - k - 1)
            try:
                done.append(run_task(task, **kwargs))
            except Exception as exc:  # one failing run must not stop the others
                failed.append((str(task), f"{type(exc).__name__}: {exc}"))
                echo(f"sweep: {task} failed: {failed[-1][1]}")
            bar.update(1)
        bar.close()
        return {"done": done, "failed": failed}
    Client, LocalCluster = dask
    for name in BLAS_THREADS:  # the worker processes inherit it: one BLAS thread per worker
        os.environ.setdefault(name, "1")
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=":0")  # any free port: never clashes with another cluster
        try:
            client = Client(cluster)
        except BaseException:  # no worker processes left behind
            cluster.close()
            raise
    try:
        futures = {client.submit(run_task, task, pure=False, key=f"run-{task}".replace("/", "-"), **kwargs): task
                   for task in task_list}
        bar = _bar(len(task_list), progress)
        pending = set(futures)
        while pending:  # poll, so that the bar says how many run now, not only at each finish
            finished = [f for f in pending if f.done()]
            for future in finished:
                task = futures[future]
                try:
                    done.append(future.result())
                except Exception as exc:
                    failed.append((str(task), f"{type(exc).__name__}: {exc}"))
                    echo(f"sweep: {task} failed: {failed[-1][1]}")
            pending.difference_update(finished)
            running = min(len(pending), sum(len(keys) for keys in client.processing().values()))
            _postfix(bar, done, failed, running, len(pending) - running)
            bar.update(len(finished))
            if pending and not finished:
                time.sleep(1.0)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return {"done": done, "failed": failed}


def _bar(total, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="runs", unit="run", disable=not progress)


def _postfix(bar, done, failed, running: int, queued: int):
    bar.set_postfix_str(f"done {len(done)}, failed {len(failed)}, running {running}, queued {queued}")

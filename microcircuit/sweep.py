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

Dask stays quiet and bounded: a failing task comes back as one line naming it (the worker logs
no "Compute Failed" block, and its warnings come back as lines too), Dask's own log lines are
silenced while the sweep runs (in this process and in the workers it starts), the local workers
ignore Ctrl-C (a terminal sends it to all of them; this process stops them), and connecting to
``scheduler`` first asks it who it is, within ``connect_timeout`` seconds: an address that is
not a Dask scheduler (nothing listening, silence, another server) is a :class:`SchedulerError`
in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from asyncio import CancelledError
from dataclasses import dataclass

from . import training
from .environment import THREAD_VARS, temporarily
from .files import results_dir, runs_dir
from .presets import preset
from .rules import RUN_RULES



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


def _failure(exc: BaseException) -> str:
    """A task's failure in one line: its type and message (detail lines joined)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_task_quietly(task: Task, **kwargs) -> dict:
    """:func:`run_task` as a Dask worker runs it: never raises, so that Dask logs no "Compute
    Failed" block with a traceback: ``{"row": summary}`` or ``{"failed": one line}``, with the
    ``warnings`` it gave as lines."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            out = {"row": run_task(task, **kwargs)}
        except Exception as exc:  # the message goes back to the sweep, the traceback nowhere
            out = {"failed": _failure(exc)}
    return dict(out, warnings=[" ".join(str(w.message).split()) for w in caught])


def _dask():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return None
    return Client, LocalCluster


class SchedulerError(ConnectionError):
    """The ``scheduler`` address does not answer as a Dask scheduler within the timeout."""


DASK_LOGGERS = ("distributed", "distributed.client", "distributed.gc", "tornado", "tornado.application", "bokeh",
                "asyncio")
"""The loggers silenced while a sweep runs on Dask (in this process and in the local workers)."""


@contextlib.contextmanager
def _quiet_dask():
    """No Dask log line reaches the user while the sweep runs: here, by the loggers' levels; in
    the worker processes started meanwhile, by ``DASK_LOGGING`` (they inherit the environment and
    read it as they import Dask). Both are restored afterwards."""
    loggers = [logging.getLogger(name) for name in DASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with temporarily("DASK_LOGGING", repr({name: "critical" for name in DASK_LOGGERS})):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


WITNESS = "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); sys.stdin.read()"
"""A process that only a SIGINT ends early (or its parent's end, closing its stdin)."""


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Processes started inside ignore SIGINT, and this process still answers a Ctrl-C given meanwhile.

    Ctrl-C in a terminal goes to the whole process group, and only this process should act on it
    (it closes the cluster), not each worker with a traceback of its own. An ignored signal stays
    ignored in a child (a caught one does not), so this process ignores SIGINT while the workers
    start; a small witness process, started first and in the same group, keeps the default action:
    if a Ctrl-C ended it meanwhile, the list this yields holds ``True`` afterwards, and the caller
    raises KeyboardInterrupt as soon as it can close what it started: the Ctrl-C is not lost.
    (POSIX only; elsewhere nothing changes.)"""
    import subprocess
    import sys

    try:
        previous = signal.getsignal(signal.SIGINT)
        if os.name != "posix" or previous in (None, signal.SIG_IGN):  # ignored already, or set outside Python
            raise ValueError("nothing to do")
        witness = subprocess.Popen([sys.executable, "-I", "-S", "-c", WITNESS], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no signals or processes here
        yield []
        return
    pressed = []
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
        if witness.poll() == -signal.SIGINT:
            pressed.append(True)
        witness.kill()
        witness.communicate()


def _timeout(seconds) -> float:
    """``seconds``, or Dask's ``distributed.comm.timeouts.connect`` (30 s unless configured)."""
    if seconds is not None:
        return float(seconds)
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s"))


def _ask_identity(address: str, timeout: float):
    """What the server at ``address`` says it is (Dask's ``identity``), within ``timeout`` seconds
    in all (connecting, the handshake, the answer), in a thread of its own (a notebook's event
    loop may be running in this one)."""
    import asyncio
    import concurrent.futures

    from distributed.comm import connect
    from distributed.security import Security

    async def ask():
        comm = await connect(address, timeout=timeout, deserialize=False,
                             **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded():
        return await asyncio.wait_for(ask(), timeout)

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="microcircuit-scheduler-check")
    try:
        return pool.submit(asyncio.run, bounded()).result(timeout + 10)
    finally:
        pool.shutdown(wait=False)


def connect(Client, address: str, timeout=None):
    """A ``Client`` of the Dask scheduler at ``address``, once it has answered as one within
    ``timeout`` seconds (default :func:`_timeout`); a :class:`SchedulerError` in one line otherwise."""
    timeout = _timeout(timeout)
    advice = "check the address (such as tcp://HOST:8786) and that a Dask scheduler runs there"
    try:
        reply = _ask_identity(address, timeout)
    except TimeoutError:
        raise SchedulerError(f"scheduler {address}: no Dask scheduler answered within {timeout:g} s; "
                             f"{advice}") from None
    except Exception as exc:  # noqa: BLE001 -- refused, unreachable, malformed, or garbage where a reply should be
        said = _failure(exc).replace(address, "it")[:200]
        raise SchedulerError(f"scheduler {address}: no Dask scheduler there ({said}); {advice}") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        said = f"a Dask {kind}" if isinstance(kind, str) else "something else"
        raise SchedulerError(f"scheduler {address}: the server there is {said}, not a Dask scheduler; {advice}")
    return Client(address, timeout=timeout)


def run(task_list, *, scheduler: str | None = None, workers: int | None = None, results=None, runs=None,
        source: str = "full", epochs=None, progress: bool = True, echo=print, connect_timeout=None) -> dict:
    """Run every task; returns ``{"done": [...], "failed": [(task, message), ...]}`` (each message
    one line).

    With Dask: on the cluster at ``scheduler`` (which must answer within ``connect_timeout``
    seconds, default Dask's connect timeout: :func:`connect`), or on a ``LocalCluster`` of
    ``workers`` single-threaded processes (default: one per core), BLAS at one thread each.
    Without Dask (or with ``workers=0``), one task after another in this process.
    """
    done, failed = [], []
    kwargs = dict(results=results, runs=runs, source=source, epochs=epochs)
    if results is None:  # $MICROCIRCUIT_RESULTS and $MICROCIRCUIT_RUNS checked here, not in each task
        results_dir()
    if runs is None:
        runs_dir()
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
                failed.append((str(task), _failure(exc)))
                echo(f"sweep: {task} failed: {failed[-1][1]}")
            bar.update(1)
        bar.close()
        return {"done": done, "failed": failed}
    Client, LocalCluster = dask
    for name in THREAD_VARS:  # the worker processes inherit it: one BLAS thread per worker
        os.environ.setdefault(name, "1")
    with _quiet_dask():
        _on_dask(Client, LocalCluster, task_list, scheduler, workers, connect_timeout, kwargs, progress, echo,
                 done, failed)
    return {"done": done, "failed": failed}


def _on_dask(Client, LocalCluster, task_list, scheduler, workers, connect_timeout, kwargs, progress, echo,
             done, failed):
    """The Dask part of :func:`run`: start or reach the cluster, submit, collect, close."""
    cluster = None
    if scheduler:
        client = connect(Client, scheduler, connect_timeout)
    else:
        with _children_ignore_ctrl_c() as ctrl_c:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=":0",  # any free port: never clashes with another cluster
                                   silence_logs=logging.CRITICAL)
        try:
            if ctrl_c:  # given while the workers started
                raise KeyboardInterrupt
            client = Client(cluster)
        except BaseException:  # no worker processes left behind
            cluster.close()
            raise
    try:
        futures = {client.submit(run_task_quietly, task, pure=False, key=f"run-{task}".replace("/", "-"),
                                 **kwargs): task for task in task_list}
        bar = _bar(len(task_list), progress)
        pending = set(futures)
        while pending:  # poll, so that the bar says how many run now, not only at each finish
            finished = [f for f in pending if f.done()]
            for future in finished:
                task = futures[future]
                try:
                    out = future.result()
                except (Exception, CancelledError) as exc:  # the worker died, or the cluster went away
                    out = {"failed": _failure(exc), "warnings": []}
                for line in out["warnings"]:
                    echo(f"sweep: {task}: warning: {line}")
                if "failed" in out:
                    failed.append((str(task), out["failed"]))
                    echo(f"sweep: {task} failed: {out['failed']}")
                else:
                    done.append(out["row"])
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


def _bar(total, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="runs", unit="run", disable=not progress)


def _postfix(bar, done, failed, running: int, queued: int):
    bar.set_postfix_str(f"done {len(done)}, failed {len(failed)}, running {running}, queued {queued}")

"""Dask quiet and bounded (issue 26, item 4): a failing task is one line naming it (no "Compute
Failed" block, no traceback); Ctrl-C and SIGTERM end a sweep in the one line of the command line,
with no worker's traceback or Dask log line; ``--scheduler`` at an address that is not a Dask
scheduler (a closed port, a server that says nothing, one that sends garbage) ends within the
timeout in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from reliability_helpers import cli, user_error

from microcircuit import sweep, training

ROOT = Path(__file__).resolve().parent.parent
DASK_NOISE = ("Traceback", "Compute Failed", "distributed.", "KeyboardInterrupt", "CancelledError")


def _sweep_args(tmp_path, *extra, epochs=1, workers=1):
    return ["sweep", "--presets", "mnist-mlp", "--rules", "bp", "--seeds", "0", "--sample", "--epochs", str(epochs),
            "--workers", str(workers), "--results", tmp_path / "results", "--runs", tmp_path / "runs", "--quiet",
            *extra]


# ------------------------------------------------------------------ --scheduler
class FakeServer:
    """A TCP server on 127.0.0.1 that accepts connections and then sends ``reply`` (bytes, or
    nothing for ``None``) and keeps them open."""

    def __init__(self, reply: bytes | None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply, self.open = reply, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            if self.reply is not None:
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for conn in self.open:
            conn.close()


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"tcp://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["closed port", "silent server", "garbage", "an HTTP server"])
def test_cli_scheduler_that_is_not_one_is_one_line_within_the_timeout(tmp_path, kind):
    pytest.importorskip("dask.distributed")
    replies = {"silent server": None, "garbage": b"\xff" * 64, "an HTTP server": b"HTTP/1.1 200 OK\r\n\r\nhello"}
    server = None if kind == "closed port" else FakeServer(replies[kind])
    address = _closed_port() if server is None else server.address
    try:
        t0 = time.time()
        proc = cli(*_sweep_args(tmp_path, "--scheduler", address, "--connect-timeout", "2"), timeout=90)
        took = time.time() - t0
    finally:
        if server is not None:
            server.close()
    line = user_error(proc, "sweep", address, "scheduler")
    assert took < 30, took  # bounded: the timeout (2 s) and the start of Python and Dask
    assert not (tmp_path / "results").exists() and line.count(address) == 1


def test_cli_connect_timeout_must_be_positive(tmp_path):
    user_error(cli(*_sweep_args(tmp_path, "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "0")),
               "sweep", "--connect-timeout", code=2)


def test_connect_reaches_a_scheduler_and_refuses_a_worker():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c:
        client = sweep.connect(distributed.Client, c.scheduler_address, timeout=10)
        try:
            assert client.scheduler_info()["address"] == c.scheduler_address
            worker = next(iter(client.scheduler_info()["workers"]))
        finally:
            client.close()
        with pytest.raises(sweep.SchedulerError, match="Dask Worker, not a Dask scheduler"):
            sweep.connect(distributed.Client, worker, timeout=10)


# ------------------------------------------------------------------ failures
def test_a_failing_task_comes_back_as_one_line_with_its_warnings(monkeypatch):
    def fake(name, rule, seed=0, **kw):
        import warnings

        warnings.warn("something to know\n  over two lines")
        raise ValueError("first line\n  second line")

    monkeypatch.setattr(training, "run_preset", fake)
    out = sweep.run_task_quietly(sweep.Task("mnist-mlp", "bp", 0))
    assert out == {"failed": "ValueError: first line second line", "warnings": ["something to know over two lines"]}
    lines = []
    with pytest.warns(UserWarning, match="something to know"):  # in this process: the caller's to show
        res = sweep.run([sweep.Task("mnist-mlp", "bp", 0)], workers=0, progress=False, echo=lines.append)
    assert res["failed"] == [("mnist-mlp/bp/seed-0", "ValueError: first line second line")]


def test_dask_logging_is_restored_after_a_sweep():
    import logging

    before = [logging.getLogger(n).level for n in sweep.DASK_LOGGERS], os.environ.get("DASK_LOGGING")
    with sweep._quiet_dask():
        assert logging.getLogger("distributed").level > logging.CRITICAL and "critical" in os.environ["DASK_LOGGING"]
    assert ([logging.getLogger(n).level for n in sweep.DASK_LOGGERS], os.environ.get("DASK_LOGGING")) == before


@pytest.mark.slow
def test_cli_a_failing_task_on_a_local_cluster_is_one_line_naming_it(tmp_path):
    pytest.importorskip("dask.distributed")
    # a log of other settings, without its checkpoint, in the folder: the run refuses it, in the worker
    folder = tmp_path / "results" / "mnist" / "mnist-mlp" / "bp" / "seed-0"
    folder.mkdir(parents=True)
    (folder / "log.json").write_text(json.dumps({"config": {"rule": "bp", "epochs": 7}, "status": "done",
                                                 "epochs": [{"epoch": 1}]}))
    proc = cli(*_sweep_args(tmp_path, epochs=2), timeout=240)
    assert proc.returncode == 1, proc.stderr
    assert not any(noise in proc.stderr for noise in DASK_NOISE), proc.stderr
    assert proc.stderr.strip().splitlines() == [
        line for line in proc.stderr.strip().splitlines() if line.startswith("sweep: mnist-mlp/bp/seed-0 failed: ")]
    assert len(proc.stderr.strip().splitlines()) == 1 and str(folder) in proc.stderr


# ------------------------------------------------------------------ Ctrl-C, SIGTERM
def _start(tmp_path, epochs):
    cmd = [sys.executable, "-m", "microcircuit", *map(str, _sweep_args(tmp_path, epochs=epochs))]
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(ROOT))
    env.pop("MICROCIRCUIT_DEBUG", None)
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # a process group of its own, as a terminal's job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
@pytest.mark.parametrize("when, sig, group, code", [
    ("training", signal.SIGINT, True, 130),  # Ctrl-C in a terminal: the whole process group
    ("training", signal.SIGTERM, False, 143),  # kill, a batch scheduler's stop: the sweep's process
    ("starting", signal.SIGINT, True, 130),  # while the workers start: not lost
])
def test_cli_sweep_stopped_is_one_line_without_worker_tracebacks(tmp_path, when, sig, group, code):
    pytest.importorskip("dask.distributed")
    proc = _start(tmp_path, epochs=40)
    try:
        deadline = time.time() + 180
        if when == "training":
            while not list((tmp_path / "results").rglob("log.json")):
                assert proc.poll() is None and time.time() < deadline, proc.communicate()
                time.sleep(0.1)
            time.sleep(1.0)  # inside an epoch
        else:
            time.sleep(1.5)  # Python and Dask imported, the workers starting
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microcircuit sweep: interrupted"), err
    assert not any(noise in err for noise in DASK_NOISE), err
    assert '"status": "done"' not in out  # stopped, not run to the end

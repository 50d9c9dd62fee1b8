"""The sweep: every (preset, rule, seed) once, resumable, on a Dask LocalCluster."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from microcircuit import Network, sweep, training
from microcircuit.rules import RUN_RULES

ROOT = Path(__file__).resolve().parent.parent
RULES, SEEDS, EPOCHS = ("bp", "scfa"), (0, 1), 2


def _sweep_cmd(tmp_path, workers=2):
    return [sys.executable, "-m", "microcircuit", "sweep", "--presets", "mnist-mlp", "--rules", *RULES,
            "--seeds", *map(str, SEEDS), "--sample", "--epochs", str(EPOCHS), "--workers", str(workers),
            "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs"), "--quiet"]


def _env():
    return dict(os.environ, TQDM_DISABLE="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))


@pytest.mark.slow
def test_sweep_killed_and_rerun_finishes_every_run_once(tmp_path):
    pytest.importorskip("dask.distributed")
    # start a sweep on a 2-process LocalCluster and kill the whole process group partway
    proc = subprocess.Popen(_sweep_cmd(tmp_path), env=_env(), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "runs").rglob("seed-*.npz")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    checkpoints = list((tmp_path / "runs").rglob("seed-*.npz"))
    assert checkpoints, "the sweep wrote no checkpoint before the kill"
    logs = list((tmp_path / "results").rglob("log.json"))
    assert not all(json.loads(p.read_text())["status"] == "done" for p in logs) or len(logs) < 4  # partway
    # run it again: it finishes the missing work
    out = subprocess.run(_sweep_cmd(tmp_path), env=_env(), cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    direct = _direct_runs(tmp_path)
    for rule in RULES:
        for seed in SEEDS:
            out_dir, ckpt = training.run_paths("mnist-mlp", rule, seed, results=tmp_path / "results",
                                               runs=tmp_path / "runs")
            log = json.loads((out_dir / "log.json").read_text())
            assert log["status"] == "done"
            assert [e["epoch"] for e in log["epochs"]] == list(range(1, EPOCHS + 1))
            # every epoch trained exactly once: the segments tile 0..EPOCHS without overlap
            spans = [(s["from_epoch"], s["to_epoch"]) for s in log["segments"]]
            assert spans[0][0] == 0 and spans[-1][1] == EPOCHS
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), spans
            # the same weights as a run made directly, without the sweep
            swept = Network.load(ckpt)
            for i, layer in enumerate(swept.plastic_layers):
                assert np.array_equal(direct[f"{rule}-{seed}-W{i}"], layer.W)
                assert np.array_equal(direct[f"{rule}-{seed}-b{i}"], layer.b)
    # a third sweep finds everything done and trains nothing
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.npz")}
    sweep.run(sweep.tasks(["mnist-mlp"], RULES, SEEDS), workers=0, results=tmp_path / "results",
              runs=tmp_path / "runs", source="sample", epochs=EPOCHS, progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.npz")}


DIRECT = """
import sys, numpy as np
from microcircuit import Network, data, presets, training
x, y = data.load_sample("mnist", "train")
out = {}
for rule in sys.argv[2].split(","):
    for seed in map(int, sys.argv[3].split(",")):
        _, _, settings = presets.run_settings("mnist-mlp", rule, seed=seed)
        net = Network(epochs=int(sys.argv[4]), **settings).fit(x, y)
        for i, layer in enumerate(net.plastic_layers):
            out[f"{rule}-{seed}-W{i}"], out[f"{rule}-{seed}-b{i}"] = layer.W, layer.b
np.savez(sys.argv[1], **out)
"""


def _direct_runs(tmp_path):
    """The same runs made directly with ``Network.fit``, with one BLAS thread as the sweep's
    workers have (OpenBLAS's results depend on its thread count in the last bits)."""
    path = tmp_path / "direct.npz"
    subprocess.run([sys.executable, "-c", DIRECT, str(path), ",".join(RULES), ",".join(map(str, SEEDS)), str(EPOCHS)],
                   env=_env(), check=True, timeout=600)
    return dict(np.load(path))


def test_a_failing_task_does_not_stop_the_others(tmp_path, monkeypatch):
    calls = []

    def fake(name, rule, seed=0, **kw):
        calls.append((rule, seed))
        if rule == "fa":
            raise RuntimeError("boom")
        return {"status": "done", "epochs": [{"epoch": 1, "test_accuracy": 0.5}]}

    monkeypatch.setattr(training, "run_preset", fake)
    lines = []
    out = sweep.run(sweep.tasks(["mnist-mlp"], ["fa", "bp"], [0, 1]), workers=0, progress=False, echo=lines.append)
    assert sorted(calls) == [("bp", 0), ("bp", 1), ("fa", 0), ("fa", 1)]
    assert [t for t, _ in out["failed"]] == ["mnist-mlp/fa/seed-0", "mnist-mlp/fa/seed-1"]
    assert len(out["done"]) == 2 and all("RuntimeError: boom" in m for _, m in out["failed"])
    assert any("mnist-mlp/fa/seed-0 failed" in line for line in lines)


def test_tasks_check_their_names_before_any_work():
    assert len(sweep.tasks(["mnist-mlp"], "all", [0, 1, 2])) == 3 * len(RUN_RULES)
    with pytest.raises(ValueError, match="unknown preset 'mnist-mpl'"):
        sweep.tasks(["mnist-mpl"], ["bp"], [0])
    with pytest.raises(ValueError, match="unknown rule 'hebb'"):
        sweep.tasks(["mnist-mlp"], ["hebb"], [0])
    with pytest.raises(ValueError, match="seeds must be ints >= 0"):
        sweep.tasks(["mnist-mlp"], ["bp"], [-1])

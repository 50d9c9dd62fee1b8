"""The command line's errors (issue 15): a user's mistake is one line ``microcircuit <command>:
error: ...`` with exit code 2 for bad options and usage, 1 otherwise, and no traceback (unless
``MICROCIRCUIT_DEBUG`` asks for it); a programming error keeps its traceback; Ctrl-C and SIGTERM
stop a run with one line, exit 130 or 143 and a log that says "interrupted"; the benchmark's
failing measurement process is reported in one line too. The CLI runs in fresh processes.
"""

from __future__ import annotations

import signal
import time

import pytest
from reliability_helpers import (
    SMALL, cli, epochs_of, injected_bug, no_training, options, pause_after_log, read_log, snapshot, temp_files,
    user_error,
)


@pytest.mark.parametrize("change, needles", [
    (["--rule", "hebb"], ["hebb", "rule"]),
    (["--layers", "784,abc,10"], ["--layers", "784,abc,10"]),
    (["--layers", "784,32.5,10"], ["--layers"]),
    (["--layers", "784,0,10"], ["--layers"]),
    (["--epochs", "0"], ["--epochs", "0"]),
    (["--epochs", "-2"], ["--epochs", "-2"]),
    (["--limit", "0"], ["--limit", "0"]),
    (["--limit", "-5"], ["--limit", "-5"]),
    (["--T", "0"], ["T"]),
    (["--lr", "-1"], ["lr"]),
    (["--lr", "nan"], ["lr"]),
    (["--batch-size", "0"], ["batch_size"]),
    (["--momentum", "1.5"], ["momentum"]),
    (["--flip", "maybe"], ["--flip", "maybe"]),
    (["--rule", "bp", "--mode", "spiking"], ["mode", "microcircuit"]),
    (["--train-eval", "-1"], ["--train-eval"]),
    (["--validation", "-1"], ["validation"]),
    (["--preset", "nope"], ["nope", "preset"]),
])
def test_cli_train_bad_option_is_one_line_before_anything_is_written(tmp_path, change, needles):
    out = tmp_path / "run"
    proc = cli("train", *options(SMALL, change), "--out", out, prelude=no_training())
    user_error(proc, "train", *needles, code=2)
    assert snapshot(out) == {}


def test_cli_train_without_dataset_names_the_fix(tmp_path):
    proc = cli("train", "--out", tmp_path / "run", "--quiet")
    user_error(proc, "train", "--dataset", "--preset", code=2)


@pytest.mark.parametrize("argv, command", [([], "microcircuit"), (["frobnicate"], "microcircuit"),
                                           (["train", "--dataset", "mnist"], "microcircuit train"),
                                           (["data", "fetch", "imagenet"], "microcircuit data fetch")])
def test_cli_usage_errors_are_one_line(argv, command):
    proc = cli(*argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: error: "), proc.stderr


@pytest.mark.parametrize("change, needles", [
    (["--rules", "bp,hebb"], ["hebb"]),
    (["--batches", "0"], ["--batches"]),
    (["--batches", "-3"], ["--batches"]),
    (["--T", "0"], ["--T"]),
    (["--preset", "nope"], ["nope"]),
    (["--batch-size", "0"], ["--batch-size"]),
])
def test_cli_bench_bad_option_is_one_line_and_starts_no_process(tmp_path, change, needles):
    out = tmp_path / "b.json"
    proc = cli("bench", *options(["--batches", "1", "--rules", "bp", "--out", str(out)], change, epochs=False))
    user_error(proc, "bench", *needles, code=2)
    assert not out.exists()


@pytest.mark.parametrize("args, needles", [
    (["--presets", "nope"], ["nope"]),
    (["--presets", "mnist-mlp", "--rules", "hebb"], ["hebb"]),
    (["--presets", "mnist-mlp", "--seeds", "-1"], ["-1"]),
    (["--presets", "mnist-mlp", "--epochs", "0"], ["--epochs"]),
])
def test_cli_sweep_bad_option_is_one_line(tmp_path, args, needles):
    proc = cli("sweep", *args, "--results", tmp_path / "res", "--runs", tmp_path / "runs", "--workers", "0",
               "--sample", "--quiet")
    user_error(proc, "sweep", *needles, code=2)
    assert not (tmp_path / "res").exists() and not (tmp_path / "runs").exists()


def test_cli_report_root_that_does_not_exist_is_one_line(tmp_path):
    proc = cli("report", "--root", tmp_path / "nowhere")
    user_error(proc, "report", str(tmp_path / "nowhere"))


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cli_cupy_backend_without_cupy_is_one_line(tmp_path):
    proc = cli("train", *SMALL, "--epochs", "1", "--out", tmp_path / "run", "--backend", "cupy")
    user_error(proc, "train", "CuPy")
    assert snapshot(tmp_path / "run") == {}


def test_cli_bug_keeps_its_traceback_and_the_log_stops_running(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", *SMALL, "--epochs", "1", "--out", out, prelude=injected_bug())
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError: injected bug" in proc.stderr
    if (out / "log.json").exists():
        assert read_log(out)["status"] != "running"


def test_cli_debug_switch_shows_the_traceback_of_a_user_error(run_copy):
    proc = cli("train", *SMALL, "--epochs", "1", "--out", run_copy, env={"MICROCIRCUIT_DEBUG": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "--resume" in proc.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_ctrl_c_is_one_line_exit_130_and_the_log_says_so(tmp_path, sig, code):
    """Ctrl-C (SIGINT), and SIGTERM (a scheduler's or ``kill``'s stop) the same way."""
    out = tmp_path / "run"
    proc = cli("train", *SMALL, "--epochs", "3", "--out", out, prelude=pause_after_log(1), popen=True)
    deadline = time.time() + 120
    while not ((out / "log.json").exists() and epochs_of(out) == [1]):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microcircuit train: "), err
    assert "interrupted after epoch 1" in lines[0] and "--resume" in lines[0]
    log = read_log(out)
    assert log["status"] == "interrupted" and epochs_of(out) == [1]
    assert temp_files(out) == []
    resumed = cli("train", *SMALL, "--epochs", "3", "--out", out, "--resume")
    assert resumed.returncode == 0 and epochs_of(out) == [1, 2, 3]


def test_bench_a_failing_measurement_process_is_one_line(tmp_path):
    from microcircuit import bench

    with pytest.raises(bench.BenchmarkError, match="benchmark of bp failed in its process: .*Error") as info:
        bench.run(rules=("bp",), Ts=(2,), batch_size=4, batches=1, layers=(784, 8, 0), bptt=False)
    assert "\n" not in str(info.value)

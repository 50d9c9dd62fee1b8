"""A hostile user (issue 15): bad inputs and faults against the API and the command line.

Every case asserts the exact outcome -- the one-line error ``microcircuit <command>: error:
...`` and its exit code, the warning, or the ``ValueError`` naming the argument -- and, where
files are involved, that nothing on disk was lost or overwritten. The CLI runs in fresh
processes (``python -m microcircuit``); faults (SIGKILL, Ctrl-C, a full disk, a bug) are
injected into those processes by the preludes of ``reliability_helpers``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import (
    SMALL, cli, disk_full_on, epochs_of, fake_mnist, injected_bug, kill_before_replace, no_training,
    pause_after_log, read_log, snapshot, temp_files, user_error, weights,
)

from microcircuit import DivergenceError, Network, backend, data, training

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
LINUX = sys.platform.startswith("linux")


def _toy(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int) + 2 * (x[:, 0] > 0.5)
    return x, y


KW = dict(layers=[16, 12, 4], rule="bp", T=4, seed=1, lr=3e-3, surrogate="fast_sigmoid")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One finished 1-epoch CLI run on the MNIST sample (copied by each test that needs one)."""
    out = tmp_path_factory.mktemp("base") / "run"
    proc = cli("train", *SMALL, "--epochs", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def run_copy(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


@pytest.fixture
def api_run(tmp_path):
    """A finished 1-epoch API run of the toy network (its folder)."""
    x, y = _toy()
    training.run((x, y), (x, y), tmp_path / "api", epochs=1, quiet=True, **KW)
    return tmp_path / "api"


# ======================================================================= the command line
# ----------------------------------------------------------- bad options: usage errors (2)
def options(base, changes, epochs: bool = True) -> list:
    """``base`` with each ``--flag value`` of ``changes`` replaced (or appended); with
    ``epochs``, ``--epochs 1`` unless ``changes`` sets it."""
    args = list(base)
    for flag, value in zip(changes[::2], changes[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args if "--epochs" in args or not epochs else args + ["--epochs", "1"]


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


# ----------------------------------------------------------- the output folder
def test_cli_out_is_a_file_fails_before_training(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = cli("train", *SMALL, "--epochs", "1", "--out", target, prelude=no_training())
    user_error(proc, "train", str(target))
    assert target.read_text() == "keep me"


def test_cli_out_below_a_file_fails_before_training(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = cli("train", *SMALL, "--epochs", "1", "--out", target / "run", prelude=no_training())
    user_error(proc, "train", str(target))
    assert target.read_text() == "keep me"


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders")
def test_cli_read_only_out_fails_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        proc = cli("train", *SMALL, "--epochs", "1", "--out", folder / "run", prelude=no_training())
        user_error(proc, "train", str(folder))
    finally:
        folder.chmod(0o755)


def test_cli_unwritable_checkpoint_fails_before_training(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = cli("train", *SMALL, "--epochs", "1", "--out", tmp_path / "run", "--checkpoint", target / "c.npz",
               prelude=no_training())
    user_error(proc, "train", str(target))
    assert target.read_text() == "keep me"


def test_cli_existing_run_without_resume_is_refused(run_copy):
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "1", "--out", run_copy)
    user_error(proc, "train", "--resume")
    assert snapshot(run_copy) == before


def test_cli_log_with_epochs_is_never_overwritten_by_a_new_run(run_copy):
    """The checkpoint went elsewhere (or was lost): a new run into the folder is refused."""
    (run_copy / "checkpoint.npz").unlink()
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "1", "--out", run_copy)
    user_error(proc, "train", "log.json", "1 epoch")
    assert snapshot(run_copy) == before


def test_cli_log_with_epochs_and_no_checkpoint_cannot_be_resumed(run_copy):
    (run_copy / "checkpoint.npz").unlink()
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume")
    user_error(proc, "train", "checkpoint")
    assert snapshot(run_copy) == before


# ----------------------------------------------------------- resume: contradictions refused
@pytest.mark.parametrize("change, keys", [
    (["--rule", "fa"], ["rule"]),
    (["--layers", "784,24,10"], ["layers"]),
    (["--T", "3"], ["T"]),
    (["--seed", "5"], ["seed"]),
    (["--limit", "100"], ["limit"]),
    (["--surrogate", "box", "--T", "3"], ["surrogate", "T"]),
])
def test_cli_resume_refuses_contradicting_settings(run_copy, change, keys):
    before = snapshot(run_copy)
    proc = cli("train", *options(SMALL, change + ["--epochs", "2"]), "--out", run_copy, "--resume")
    line = user_error(proc, "train", *keys)
    assert "--resume" in line or "--out" in line  # says how to go on
    assert snapshot(run_copy) == before


def test_cli_resume_refuses_another_dataset(run_copy):
    before = snapshot(run_copy)
    args = [a if a != "mnist" else "fashion-mnist" for a in SMALL]
    proc = cli("train", *args, "--epochs", "2", "--out", run_copy, "--resume")
    user_error(proc, "train", "dataset", "mnist", "fashion-mnist")
    assert snapshot(run_copy) == before


def test_cli_resume_refuses_a_preset_that_contradicts_the_run(run_copy):
    before = snapshot(run_copy)
    proc = cli("train", "--preset", "mnist-mlp", "--sample", "--limit", "200", "--quiet", "--epochs", "2",
               "--out", run_copy, "--resume")
    user_error(proc, "train", "layers", "T")
    assert snapshot(run_copy) == before


def test_cli_resume_allows_lr_and_epochs_and_records_them(run_copy):
    proc = cli("train", *SMALL, "--lr", "5e-4", "--epochs", "2", "--out", run_copy, "--resume")
    assert proc.returncode == 0, proc.stderr
    log = read_log(run_copy)
    assert epochs_of(run_copy) == [1, 2] and log["status"] == "done"
    assert log["config"]["lr"] == 5e-4
    first, second = log["segments"]
    assert "overrides" not in first or not first["overrides"]
    assert second["overrides"] == {"lr": {"from": 1e-3, "to": 5e-4}, "epochs": {"from": 1, "to": 2}}


def test_cli_resume_takes_the_runs_own_settings_when_none_are_given(run_copy):
    """``train --out RUN --resume --epochs N`` alone continues the run as it was made."""
    proc = cli("train", "--out", run_copy, "--resume", "--epochs", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    log = read_log(run_copy)
    assert epochs_of(run_copy) == [1, 2]
    assert log["config"]["layers"] == [784, 16, 10] and log["config"]["T"] == 2
    assert log["segments"][-1]["data_checksum"] == data.sample_checksum("mnist", "train")
    assert log["segments"][-1]["train_samples"] == 200


def test_cli_resume_of_a_corrupt_checkpoint_is_one_line(run_copy):
    ckpt = run_copy / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume")
    user_error(proc, "train", str(ckpt))
    assert snapshot(run_copy) == before


def test_cli_resume_with_a_corrupt_log_keeps_it_aside_and_goes_on(run_copy):
    (run_copy / "log.json").write_text('{"epochs": [{"epoch": 1, "tra')
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "log.json" in warning[0], proc.stderr
    assert epochs_of(run_copy) == [1, 2]  # epoch 1's record restored from the checkpoint
    kept = [p for p in run_copy.iterdir() if p.name.startswith("log.json.") and not p.name.endswith(".tmp")]
    assert len(kept) == 1 and kept[0].read_text() == '{"epochs": [{"epoch": 1, "tra'


def test_cli_resume_of_another_dtype_is_one_line(run_copy):
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume", "--dtype", "float64")
    user_error(proc, "train", "float32", "float64")
    assert snapshot(run_copy) == before


# ----------------------------------------------------------- faults during a run
def test_cli_two_runs_into_one_folder_second_is_refused(tmp_path):
    out = tmp_path / "run"
    first = cli("train", *SMALL, "--epochs", "3", "--out", out, prelude=pause_after_log(1), popen=True)
    try:
        deadline = time.time() + 120
        while not ((out / "log.json").exists() and epochs_of(out) == [1]):
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.1)
        before = snapshot(out)
        for extra in ([], ["--resume"]):
            second = cli("train", *SMALL, "--epochs", "3", "--out", out, *extra)
            user_error(second, "train", "in use", str(out))
            assert snapshot(out) == before
    finally:
        first.kill()
        first.communicate()
    resumed = cli("train", *SMALL, "--epochs", "2", "--out", out, "--resume")  # the lock died with it
    assert resumed.returncode == 0, resumed.stderr
    assert epochs_of(out) == [1, 2]


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


@pytest.mark.skipif(not LINUX, reason="finds the temporary file through /proc")
def test_cli_disk_full_names_the_file_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", *SMALL, "--epochs", "3", "--out", out, prelude=disk_full_on("checkpoint.npz", 2))
    line = user_error(proc, "train", str(out / "checkpoint.npz"))
    assert "No space left on device" in line or "disk is full" in line
    assert temp_files(out) == []
    assert Network.load(out / "checkpoint.npz").epoch_ == 1
    log = read_log(out)
    assert epochs_of(out) == [1] and log["status"] != "running"
    resumed = cli("train", *SMALL, "--epochs", "3", "--out", out, "--resume")
    assert resumed.returncode == 0 and epochs_of(out) == [1, 2, 3]


def test_cli_killed_write_leaves_no_temp_file_after_resume(tmp_path):
    out = tmp_path / "run"
    killed = cli("train", *SMALL, "--epochs", "2", "--out", out, prelude=kill_before_replace("checkpoint.npz", 2))
    assert killed.returncode == -signal.SIGKILL
    assert temp_files(out)  # the write that was killed left its temporary file
    resumed = cli("train", *SMALL, "--epochs", "2", "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert temp_files(out) == [] and epochs_of(out) == [1, 2]


def test_cli_divergence_is_one_line_and_the_log_says_diverged(tmp_path):
    """lr=1e3 saturates the network (every cell fires at every step or never): caught after
    the first epoch, not written as a checkpoint, and reported with the fix."""
    out = tmp_path / "run"
    proc = cli("train", *SMALL, "--lr", "1e3", "--epochs", "2", "--out", out)
    user_error(proc, "train", "diverged", "--lr")
    log = read_log(out)
    assert log["status"].startswith("diverged") and log["epochs"] == []
    assert not (out / "checkpoint.npz").exists()
    again = cli("train", *SMALL, "--epochs", "1", "--out", out)  # a log with no epochs may be replaced
    assert again.returncode == 0, again.stderr


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


@pytest.mark.skipif(IS_ROOT, reason="root reads unreadable files")
def test_cli_unreadable_dataset_file_names_it(tmp_path):
    paths = fake_mnist(tmp_path / "data" / "mnist")
    paths["train"][0].chmod(0)
    proc = cli("train", "--dataset", "mnist", "--out", tmp_path / "run", "--quiet",
               env={"MICROCIRCUIT_DATA": tmp_path / "data", "MICROCIRCUIT_CACHE": tmp_path / "cache"})
    line = user_error(proc, "train", str(paths["train"][0]), detail=True)
    assert "permission" in line.lower() and "truncated" not in proc.stderr


def test_cli_corrupt_dataset_file_is_reported_without_traceback(tmp_path):
    paths = fake_mnist(tmp_path / "data" / "mnist")
    images = paths["train"][0]
    images.write_bytes(images.read_bytes()[:100])
    proc = cli("train", "--dataset", "mnist", "--out", tmp_path / "run", "--quiet",
               env={"MICROCIRCUIT_DATA": tmp_path / "data", "MICROCIRCUIT_CACHE": tmp_path / "cache"})
    user_error(proc, "train", "mnist", detail=True)
    assert str(images) in proc.stderr and snapshot(tmp_path / "run") == {}


def test_cli_missing_dataset_hints_at_the_sample_flag(tmp_path):
    env = {"MICROCIRCUIT_DATA": tmp_path / "empty", "MICROCIRCUIT_CACHE": tmp_path / "cache",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    (tmp_path / "empty").mkdir()
    proc = cli("train", "--dataset", "mnist", "--out", tmp_path / "run", "--quiet", env=env)
    # pooch says which downloads it tries before the error
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("Downloading data from"))
    user_error(proc, "train", "mnist", "not found", detail=True)
    assert "--sample" in proc.stderr and 'source="sample"' not in proc.stderr


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cli_cupy_backend_without_cupy_is_one_line(tmp_path):
    proc = cli("train", *SMALL, "--epochs", "1", "--out", tmp_path / "run", "--backend", "cupy")
    user_error(proc, "train", "CuPy")
    assert snapshot(tmp_path / "run") == {}


# ----------------------------------------------------------- data, bench, sweep, report
def test_cli_data_info_says_when_microcircuit_data_does_not_exist(tmp_path):
    proc = cli("data", "info", "--no-verify",
               env={"MICROCIRCUIT_DATA": tmp_path / "nowhere", "MICROCIRCUIT_CACHE": tmp_path / "cache"})
    assert "Traceback" not in proc.stderr
    first = proc.stdout.splitlines()[0]
    assert str(tmp_path / "nowhere") in first and "does not exist" in first


def test_cli_data_info_reports_only_the_damaged_split(tmp_path):
    paths = fake_mnist(tmp_path / "data" / "mnist")
    train_images = paths["train"][0]
    train_images.write_bytes(train_images.read_bytes()[:-50])  # a truncated train file
    proc = cli("data", "info", env={"MICROCIRCUIT_DATA": tmp_path / "data", "MICROCIRCUIT_CACHE": tmp_path / "cache"})
    assert "Traceback" not in proc.stderr and proc.returncode == 1
    lines = proc.stdout.splitlines()
    mnist = next(line for line in lines if line.startswith("mnist "))
    assert "MISMATCH" in mnist and "content-verified" not in mnist
    details = {line.split(":")[0].strip(): line for line in lines if line.startswith("  train:")
               or line.startswith("  test:")}
    assert train_images.name in details["train"]
    assert train_images.name not in details["test"] and "truncated" not in details["test"]


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


def test_cli_report_unwritable_out_is_one_line(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = cli("report", "--root", tmp_path, "--out", target / "REPORT.md")
    user_error(proc, "report", str(target))
    assert target.read_text() == "keep me"


# =============================================================================== the API
# ----------------------------------------------------------- Network arguments
@pytest.mark.parametrize("layers", [[16, 8.5, 4], ["16", 8, 4], [16, 0, 4], [16, -3, 4], [16, 8, 0], [16, None, 4]])
def test_network_rejects_bad_layer_sizes(layers):
    with pytest.raises(ValueError, match="layers"):
        Network(layers)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict", "evaluate"])
def test_empty_inputs_are_a_value_error(method):
    net = Network([16, 8, 4], seed=0)
    x, y = np.zeros((0, 16), np.float32), np.zeros(0, int)
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises(ValueError, match="no samples"):
        getattr(net, method)(*args)
    assert net.epoch_ == 0


@pytest.mark.parametrize("labels", [np.array(["a", "b"] * 16), np.array([0.0, np.nan] * 16), [None] * 32])
def test_labels_that_are_not_class_indices_are_a_value_error(labels):
    net = Network([16, 8, 4], seed=0)
    x = np.random.default_rng(0).random((32, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="labels"):
        net.fit(x, labels)
    assert net.epoch_ == 0


@pytest.mark.parametrize("epochs", [0, -1, 2.5, "3"])
def test_fit_epochs_must_be_a_positive_int(epochs):
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    before = backend.to_numpy(net.plastic_layers[0].W).copy()
    with pytest.raises(ValueError, match="epochs"):
        net.fit(x, y, epochs=epochs)
    assert net.epoch_ == 0
    np.testing.assert_array_equal(backend.to_numpy(net.plastic_layers[0].W), before)


def test_uint8_images_warn_once_per_call_and_floats_do_not():
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    with pytest.warns(UserWarning, match="255") as caught:
        with pytest.raises(DivergenceError, match="scale them"):  # 0..255 saturates it: stopped, as a run is
            net.partial_fit((x * 255).astype(np.uint8), y)
    assert len([w for w in caught if "255" in str(w.message)]) == 1
    with pytest.warns(UserWarning, match="255"):
        net.predict((x * 255).astype(np.uint8))
    net = Network([16, 8, 4], seed=0)  # a fresh one: the epoch on raw pixels moved the weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.partial_fit(x, y)
        net.evaluate(x, y)


# ----------------------------------------------------------- checkpoints
@pytest.fixture
def saved(tmp_path):
    net = Network([16, 8, 4], seed=0)
    net.partial_fit(*_toy(64))
    return net.save(tmp_path / "net.npz")


def test_load_of_random_bytes_names_the_file(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(os.urandom(300))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Network.load(path)


def test_load_of_a_truncated_checkpoint_names_the_file(saved):
    saved.write_bytes(saved.read_bytes()[:-200])
    with pytest.raises(ValueError, match=re.escape(str(saved)) + ".*(damaged|truncated)"):
        Network.load(saved)


def test_load_of_an_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Network.load(path)


def test_load_of_a_checkpoint_missing_weights_names_file_and_key(saved):
    with np.load(saved) as f:
        arrays = {k: f[k] for k in f.files if k != "W_0"}
    np.savez(saved, **arrays)
    with pytest.raises(ValueError, match=re.escape(str(saved)) + ".*W_0"):
        Network.load(saved)


def test_load_of_a_checkpoint_with_broken_metadata_names_the_file(saved):
    with np.load(saved) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["meta"] = np.frombuffer(b'{"config": ', dtype=np.uint8)
    np.savez(saved, **arrays)
    with pytest.raises(ValueError, match=re.escape(str(saved))):
        Network.load(saved)


def test_load_of_pickled_arrays_names_the_file_not_pickle(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=re.escape(str(path))) as err:
        Network.load(path)
    assert "allow_pickle" not in str(err.value)


def test_load_of_a_plain_npy_file_names_the_file(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Network.load(path)


def test_load_into_another_architecture_names_file_and_shapes(saved):
    with pytest.raises(ValueError, match=re.escape(str(saved)) + ".*(architecture|shape)"):
        Network.load(saved, layers=[16, 9, 4])


def test_load_of_a_missing_file_or_a_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.npz"))):
        Network.load(tmp_path / "nope.npz")
    with pytest.raises((IsADirectoryError, ValueError), match=re.escape(str(tmp_path))):
        Network.load(tmp_path)


@pytest.mark.skipif(not LINUX, reason="finds the temporary file through /proc")
def test_save_on_a_full_disk_names_the_file_and_keeps_the_old_one(saved, monkeypatch):
    import errno

    old = saved.read_bytes()
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            return False

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    net = Network([16, 8, 4], seed=1)
    with pytest.raises(OSError, match=re.escape(str(saved))) as err:
        net.save(saved)
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert saved.read_bytes() == old and temp_files(saved.parent) == []


# ----------------------------------------------------------- training.run
def test_run_resume_refuses_contradicting_settings_and_changes_nothing(api_run):
    x, y = _toy()
    before = snapshot(api_run)
    with pytest.raises(ValueError, match=r"rule.*\bT\b|\bT\b.*rule") as err:
        training.run((x, y), (x, y), api_run, epochs=2, quiet=True, resume=True, **dict(KW, rule="fa", T=5))
    assert "resume" in str(err.value)
    assert snapshot(api_run) == before


def test_run_resume_refuses_another_dataset(api_run):
    x, y = _toy()
    log = read_log(api_run)
    log["provenance"]["data_checksum"] = "abc"
    log["segments"][0]["data_checksum"] = "abc"
    (api_run / "log.json").write_text(json.dumps(log))
    before = snapshot(api_run)
    with pytest.raises(ValueError, match="data_checksum"):
        training.run((x, y), (x, y), api_run, epochs=2, quiet=True, resume=True, data_checksum="xyz", **KW)
    assert snapshot(api_run) == before


def test_run_new_run_into_a_folder_whose_log_holds_epochs_is_refused(api_run):
    x, y = _toy()
    (api_run / "checkpoint.npz").unlink()
    before = snapshot(api_run)
    with pytest.raises(FileExistsError, match="log.json"):
        training.run((x, y), (x, y), api_run, epochs=1, quiet=True, **KW)
    assert snapshot(api_run) == before


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_run_epochs_must_be_a_positive_int(tmp_path, epochs):
    x, y = _toy()
    with pytest.raises(ValueError, match="epochs"):
        training.run((x, y), None, tmp_path / "r", epochs=epochs, quiet=True, **KW)
    assert snapshot(tmp_path / "r") == {}


def test_run_on_no_samples_is_a_value_error_before_any_file(tmp_path):
    x, y = _toy()
    with pytest.raises(ValueError, match="no samples"):
        training.run((x[:0], y[:0]), None, tmp_path / "r", epochs=1, quiet=True, **KW)
    assert snapshot(tmp_path / "r") == {}


def test_run_removes_the_temp_files_of_killed_writes_and_only_those(api_run):
    x, y = _toy()
    stale = [api_run / ".checkpoint.npz.a1b2c3.tmp", api_run / ".log.json.x9y8z7.tmp", api_run / ".log.csv.q.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    other = api_run / ".notes.txt.tmp"
    other.write_text("not ours")
    training.run((x, y), (x, y), api_run, epochs=2, quiet=True, resume=True, **KW)
    assert not any(p.exists() for p in stale) and other.read_text() == "not ours"


def test_run_divergence_by_saturation_keeps_the_last_good_checkpoint_and_lr_can_be_lowered(api_run):
    """lr=1e3 from epoch 2 on: detected (not at float overflow), epoch 1 kept; a resume
    with a sane lr is allowed, and the log records which lr made which epochs."""
    x, y = _toy()
    good = snapshot(api_run)["checkpoint.npz"]
    with pytest.raises(DivergenceError, match="lr"):
        training.run((x, y), (x, y), api_run, epochs=3, quiet=True, resume=True, **dict(KW, lr=1e3))
    assert (api_run / "checkpoint.npz").read_bytes() == good
    log = read_log(api_run)
    assert log["status"].startswith("diverged") and epochs_of(api_run) == [1]
    training.run((x, y), (x, y), api_run, epochs=3, quiet=True, resume=True, **dict(KW, lr=1e-3))
    log = read_log(api_run)
    assert epochs_of(api_run) == [1, 2, 3] and log["status"] == "done"
    assert log["segments"][-1]["overrides"]["lr"] == {"from": 3e-3, "to": 1e-3}


def test_run_that_does_not_saturate_is_not_called_diverged(tmp_path):
    """The saturation check does not fire on a healthy run, even a silent start (T=1 aside)."""
    x, y = _toy()
    log = training.run((x, y), (x, y), tmp_path, epochs=2, quiet=True, **dict(KW, weight_scale=0.05))
    assert log["status"] == "done" and len(log["epochs"]) == 2


# ----------------------------------------------------------- datasets
def test_unreadable_dataset_file_is_a_permission_error_naming_it(tmp_path, monkeypatch):
    import gzip

    paths = fake_mnist(tmp_path / "mnist")
    denied = paths["train"][0]
    real_open = gzip.open

    def guarded(path, *a, **k):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(gzip, "open", guarded)
    with pytest.raises(PermissionError, match=re.escape(str(denied))) as err:
        data.load_dataset("mnist", "train", data_dir=tmp_path / "mnist", verify=False)
    assert "truncated" not in str(err.value)


@pytest.mark.skipif(IS_ROOT, reason="root reads unreadable folders")
def test_unreadable_dataset_folder_is_a_permission_error_naming_it(tmp_path):
    fake_mnist(tmp_path / "mnist")
    (tmp_path / "mnist").chmod(0)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(tmp_path / "mnist"))):
            data.load_dataset("mnist", "train", data_dir=tmp_path / "mnist", verify=False)
    finally:
        (tmp_path / "mnist").chmod(0o755)


def test_verify_dataset_blames_only_the_split_whose_file_is_damaged(tmp_path):
    paths = fake_mnist(tmp_path / "mnist")
    paths["train"][1].write_bytes(paths["train"][1].read_bytes()[:30])
    report = data.verify_dataset("mnist", data_dir=tmp_path / "mnist")
    assert paths["train"][1].name in report["splits"]["train"]["error"]
    assert report["splits"]["test"]["error"] is None and report["splits"]["test"]["count"] == 64


# ----------------------------------------------------------- files and locks
def test_run_folder_lock_is_exclusive_and_released(tmp_path):
    from microcircuit.locks import RunInUseError, lock_run

    with lock_run(tmp_path / "run"):
        with pytest.raises(RunInUseError, match=re.escape(str(tmp_path / "run")) + ".*in use"):
            with lock_run(tmp_path / "run"):
                pass
    with lock_run(tmp_path / "run"):  # released on exit
        pass
    assert list((tmp_path / "run").iterdir()) == []


def test_write_atomic_failure_names_the_target_not_the_temp_file(tmp_path):
    from microcircuit.files import write_atomic

    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(OSError, match=re.escape(str(blocker / "sub" / "log.json"))):
        write_atomic(blocker / "sub" / "log.json", "{}")
    assert blocker.read_text() == "keep me"


# ------------------------------------------- found by the session's code review
PRESET_SMALL = ["--preset", "mnist-mlp", "--rule", "bp", "--sample", "--limit", "64", "--train-eval", "0",
                "--T", "2", "--quiet"]


def test_cli_resume_with_the_preset_keeps_the_runs_own_lr_and_epochs(tmp_path):
    """Naming the preset again on --resume is no request to change lr or epochs: only typed
    options are overrides (the preset's 20 epochs and lr 1e-3 were silently applied before)."""
    out = tmp_path / "run"
    first = cli("train", *PRESET_SMALL, "--lr", "1e-4", "--epochs", "1", "--out", out)
    assert first.returncode == 0, first.stderr
    again = cli("train", *PRESET_SMALL[:4], "--T", "2", "--quiet", "--resume", "--out", out)
    assert again.returncode == 0, again.stderr
    assert epochs_of(out) == [1]  # the run's own epochs: nothing left to train
    more = cli("train", *PRESET_SMALL[:4], "--T", "2", "--quiet", "--epochs", "2", "--resume", "--out", out)
    assert more.returncode == 0, more.stderr
    log = read_log(out)
    assert epochs_of(out) == [1, 2] and log["config"]["lr"] == 1e-4
    assert log["segments"][-1]["overrides"] == {"epochs": {"from": 1, "to": 2}}


def test_a_resume_with_nothing_left_marks_a_finished_run_done(tmp_path):
    """The last checkpoint was saved but the final "done" never written (killed, disk full):
    the resume the error message advises finishes the log instead of leaving it running."""
    from microcircuit import training
    from microcircuit.data import load_sample

    x, y = load_sample("mnist", "train")
    kw = dict(layers=[784, 8, 10], T=2, train_eval_samples=0, quiet=True)
    training.run((x[:64], y[:64]), None, tmp_path, epochs=2, **kw)
    log = read_log(tmp_path)
    log["status"] = "running"
    (tmp_path / "log.json").write_text(json.dumps(log))
    assert not training.finished(tmp_path, 2)
    again = training.run((x[:64], y[:64]), None, tmp_path, epochs=2, resume=True, **kw)
    assert again["status"] == "done" and training.finished(tmp_path, 2)
    assert [r["epoch"] for r in again["epochs"]] == [1, 2]


def test_numpy_scalars_are_settings_like_any_other(tmp_path):
    from microcircuit import training
    from microcircuit.data import load_sample

    net = Network([784, 8, 10], seed=np.int64(1), lr=np.float32(0.01), T=np.int64(2))
    net.save(tmp_path / "c.npz")
    back = Network.load(tmp_path / "c.npz")
    assert (back.config.seed, back.config.T) == (1, 2) and type(back.config.seed) is int
    x, y = load_sample("mnist", "train")
    log = training.run((x[:32], y[:32]), None, tmp_path / "run", epochs=1, layers=[784, 8, 10], T=2,
                       seed=np.int64(3), train_eval_samples=0, quiet=True)
    assert log["status"] == "done" and log["config"]["seed"] == 3


def test_run_names_an_unknown_setting_and_a_bad_alignment_count_before_training(tmp_path):
    from microcircuit import training
    from microcircuit.data import load_sample

    x, y = load_sample("mnist", "train")
    data = (x[:32], y[:32])
    with pytest.raises(ValueError, match="unknown network setting.*lrr"):
        training.run(data, None, tmp_path / "a", epochs=1, layers=[784, 8, 10], lrr=0.1, quiet=True)
    with pytest.raises(ValueError, match="alignment_samples must be an int >= 1"):
        training.run(data, None, tmp_path / "b", epochs=1, layers=[784, 8, 10], alignment_samples=0, quiet=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bench_a_failing_measurement_process_is_one_line(tmp_path):
    from microcircuit import bench

    with pytest.raises(bench.BenchmarkError, match="benchmark of bp failed in its process: .*Error") as info:
        bench.run(rules=("bp",), Ts=(2,), batch_size=4, batches=1, layers=(784, 8, 0), bptt=False)
    assert "\n" not in str(info.value)


def test_write_atomic_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A power cut must not leave an empty file in place of the old one (no fsync before the
    rename could, on some file systems)."""
    from microcircuit import files

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    files.write_atomic(tmp_path / "x.json", "{}")
    assert events[:2] == ["fsync", "replace"] and events.count("fsync") >= 1
    assert (tmp_path / "x.json").read_text() == "{}"

"""Resume rules and refusals (issue 15): ``--resume`` (and ``training.run(resume=True)``) refuses
settings, a dataset, a preset or a dtype that contradict the run, and a run with no checkpoint,
changing nothing; it allows a new lr and more epochs and records them as overrides, takes the
run's own settings when none are typed, keeps a corrupt log aside and goes on, and marks a run
with nothing left to train done.
"""

from __future__ import annotations

import json

import pytest
from reliability_helpers import KW, SMALL, cli, epochs_of, options, read_log, snapshot, toy as _toy, user_error

from microcircuit import data, training


def test_cli_log_with_epochs_and_no_checkpoint_cannot_be_resumed(run_copy):
    (run_copy / "checkpoint.npz").unlink()
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume")
    user_error(proc, "train", "checkpoint")
    assert snapshot(run_copy) == before


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

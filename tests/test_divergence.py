"""Divergence of a run (issue 15): a saturating lr is caught after the epoch, from the command line
(one line naming ``--lr``) and ``training.run`` (``DivergenceError``), the last good checkpoint is
kept, the log says "diverged", a resume with a lower lr is allowed; a healthy run is never
called diverged.
"""

from __future__ import annotations


import pytest
from reliability_helpers import KW, SMALL, cli, epochs_of, read_log, snapshot, toy as _toy, user_error

from microcircuit import DivergenceError, training


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

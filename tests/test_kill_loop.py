"""A run killed again and again (issues 15 and 26): a storm of 30 SIGKILLs at random moments, one between the
checkpoint and the log, one in the middle of a checkpoint write, each followed by
``--resume``. The log ends with every epoch once, records equal to an uninterrupted run's,
no temporary file is left, and the final weights equal the uninterrupted run's bit for bit.
"""

from __future__ import annotations

import random
import signal
import time

import numpy as np
import pytest
from reliability_helpers import cli, epochs_of, kill_after_replace, kill_before_replace, read_log, temp_files, weights

EPOCHS = 60  # room for the storm: a kill can land an epoch or two after the previous one
RANDOM_KILLS = 30  # the storm: at least this many SIGKILLs at random moments of training
ARGS = ["train", "--dataset", "mnist", "--sample", "--limit", "1000", "--layers", "784,24,10", "--T", "3",
        "--quiet", "--train-eval", "200", "--epochs", str(EPOCHS)]
RECORD_KEYS = ("epoch", "train_loss", "train_accuracy", "train_eval_loss", "test_accuracy", "test_loss", "alignment_deg")


def _same_records(a: dict, b: dict):
    assert [{k: r.get(k) for k in RECORD_KEYS} for r in a["epochs"]] == \
        [{k: r.get(k) for k in RECORD_KEYS} for r in b["epochs"]]


def _last_epoch(out) -> int:
    try:
        return max(epochs_of(out), default=0)
    except (OSError, ValueError):
        return 0


def _epoch_wall_seconds(out) -> float:
    """Train the uninterrupted run, timing the epochs as they reach the log (training,
    evaluation and writes: what a kill can land in); the shortest, so that a kill drawn
    within it lands before the next epoch or two are done on a machine whose load varies."""
    running = cli(*ARGS, "--out", out, popen=True)
    seen = {}
    while running.poll() is None:
        seen.setdefault(_last_epoch(out), time.perf_counter())
        time.sleep(0.002)
    _, err = running.communicate()
    assert running.returncode == 0, err
    times = [seen[k] for k in sorted(seen) if k > 0]
    return min(b - a for a, b in zip(times, times[1:]))


@pytest.mark.slow  # CI runs it (make test deselects nothing): about a minute
def test_killed_at_random_moments_and_resumed_equals_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    epoch_wall = _epoch_wall_seconds(straight)

    out = tmp_path / "killed"
    # 1. killed between the checkpoint of epoch 2 and its log record
    proc = cli(*ARGS, "--out", out, prelude=kill_after_replace("checkpoint.npz", 2))
    assert proc.returncode == -signal.SIGKILL
    # 2. resumed, and killed in the middle of the next checkpoint write (its temp file stays)
    proc = cli(*ARGS, "--out", out, "--resume", prelude=kill_before_replace("checkpoint.npz", 1))
    assert proc.returncode == -signal.SIGKILL
    # 3. resumed and killed at random moments of training (in an epoch, an evaluation, a
    #    checkpoint or a log write): once the resumed process has logged an epoch and at
    #    least two are left, wait a random part of an epoch's time, then SIGKILL it
    rng = random.Random(15)
    kills, random_kills = 2, 0
    while random_kills < RANDOM_KILLS and _last_epoch(out) < EPOCHS - 2:
        before = _last_epoch(out)
        running = cli(*ARGS, "--out", out, "--resume", popen=True)
        while running.poll() is None and _last_epoch(out) <= before:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.8 * epoch_wall))
        if running.poll() is None:
            running.send_signal(signal.SIGKILL)
            kills, random_kills = kills + 1, random_kills + 1
        _, err = running.communicate()
        assert running.returncode in (0, -signal.SIGKILL), err
    proc = cli(*ARGS, "--out", out, "--resume")
    assert proc.returncode == 0, proc.stderr
    print(f"kills: {kills} ({random_kills} at random moments), epoch {epoch_wall:.3f} s")
    assert random_kills >= RANDOM_KILLS

    log, reference = read_log(out), read_log(straight)
    assert epochs_of(out) == list(range(1, EPOCHS + 1)) and log["status"] == "done"
    _same_records(log, reference)
    segments = log["segments"]
    assert segments[0]["from_epoch"] == 0 and segments[-1]["to_epoch"] == EPOCHS
    assert temp_files(out) == []
    for a, b in zip(weights(out / "checkpoint.npz"), weights(straight / "checkpoint.npz")):
        np.testing.assert_array_equal(a, b)

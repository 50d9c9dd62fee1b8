"""Run folder locks (issue 15): a run folder is used by one run at a time -- a second run into it,
new or ``--resume``, is refused in one line and changes nothing -- and the lock is released on
exit or when its process dies.
"""

from __future__ import annotations

import re
import time

import pytest
from reliability_helpers import SMALL, cli, epochs_of, pause_after_log, snapshot, user_error


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


def test_run_folder_lock_is_exclusive_and_released(tmp_path):
    from microcircuit.locks import RunInUseError, lock_run

    with lock_run(tmp_path / "run"):
        with pytest.raises(RunInUseError, match=re.escape(str(tmp_path / "run")) + ".*in use"):
            with lock_run(tmp_path / "run"):
                pass
    with lock_run(tmp_path / "run"):  # released on exit
        pass
    assert list((tmp_path / "run").iterdir()) == []

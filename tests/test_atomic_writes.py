"""Atomic writes (issue 15): a write that fails (a full disk) or is killed (SIGKILL before the
rename) leaves the previous file in place; the error names the target, not the temporary file;
the leftover temporary files are removed by the next run, and only those; the data is synced
before the rename and the folder after it.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from reliability_helpers import (
    KW, LINUX, SMALL, cli, disk_full_on, epochs_of, kill_before_replace, read_log, temp_files, toy as _toy,
    user_error,
)

from microcircuit import Network, training


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


def test_run_removes_the_temp_files_of_killed_writes_and_only_those(api_run):
    x, y = _toy()
    stale = [api_run / ".checkpoint.npz.a1b2c3.tmp", api_run / ".log.json.x9y8z7.tmp", api_run / ".log.csv.q.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    other = api_run / ".notes.txt.tmp"
    other.write_text("not ours")
    training.run((x, y), (x, y), api_run, epochs=2, quiet=True, resume=True, **KW)
    assert not any(p.exists() for p in stale) and other.read_text() == "not ours"


def test_write_atomic_failure_names_the_target_not_the_temp_file(tmp_path):
    from microcircuit.files import write_atomic

    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(OSError, match=re.escape(str(blocker / "sub" / "log.json"))):
        write_atomic(blocker / "sub" / "log.json", "{}")
    assert blocker.read_text() == "keep me"


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

"""Where a run writes (issue 15): an ``--out``, ``--checkpoint`` or report ``--out`` that is a
file, lies below a file or is read-only fails in one line before training and loses nothing; a
folder holding a run (or a log with epochs) is never overwritten by a new run, from the command
line or ``training.run``.
"""

from __future__ import annotations


import pytest
from reliability_helpers import IS_ROOT, KW, SMALL, cli, no_training, snapshot, toy as _toy, user_error

from microcircuit import training


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


def test_run_new_run_into_a_folder_whose_log_holds_epochs_is_refused(api_run):
    x, y = _toy()
    (api_run / "checkpoint.npz").unlink()
    before = snapshot(api_run)
    with pytest.raises(FileExistsError, match="log.json"):
        training.run((x, y), (x, y), api_run, epochs=1, quiet=True, **KW)
    assert snapshot(api_run) == before


def test_cli_report_unwritable_out_is_one_line(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = cli("report", "--root", tmp_path, "--out", target / "REPORT.md")
    user_error(proc, "report", str(target))
    assert target.read_text() == "keep me"

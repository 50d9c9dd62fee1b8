"""Damaged, missing and unreadable dataset files (issue 15): the command line names the file in
one error line (with detail lines), hints at ``--sample`` when the dataset is missing, and ``data
info`` says when ``MICROCIRCUIT_DATA`` does not exist; ``load_dataset`` raises a
``PermissionError`` naming the file or folder; verification blames only the damaged split.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reliability_helpers import IS_ROOT, cli, fake_mnist, snapshot, user_error

from microcircuit import data


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

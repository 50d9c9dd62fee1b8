"""Messages that mislead no one: each names the real problem and the fix, in the terms of
where it was asked (the command line's options, not Python's arguments)."""

from __future__ import annotations

import errno

import pytest

from microcircuit import data
from microcircuit.cli import cli_fetch, main


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _downloads_failing_with(monkeypatch, exc):
    def downloader(progress):
        def get(url, output, pooch):
            raise exc
        return get

    monkeypatch.setattr(data, "_downloader", downloader)


def test_a_full_disk_is_named_as_such_not_as_missing_files(cache, monkeypatch):
    _downloads_failing_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match=r"no space left to download .* free some space there, or set MICROCIRCUIT_CACHE"):
        data.fetch("mnist", progress=False)
    assert main(["data", "fetch", "mnist", "--no-progress"]) == 1  # one line, exit 1 (main catches OSError)


def test_a_failed_download_on_the_command_line_gives_command_line_advice(cache, monkeypatch):
    _downloads_failing_with(monkeypatch, ConnectionError("network down"))
    lines = []
    assert cli_fetch("mnist", progress=False, out=lines.append) == 1
    text = "\n".join(lines)
    assert "--sample" in text and "download=True" not in text and 'source="sample"' not in text
    with pytest.raises(data.DatasetNotFoundError, match="download=True"):  # the API keeps its own terms
        data.fetch("mnist", progress=False)


def test_a_checkpoint_that_is_a_folder_is_named_not_blamed_on_resume(tmp_path, capsys):
    (tmp_path / "ckdir").mkdir()
    code = main(["train", "--dataset", "mnist", "--sample", "--limit", "64", "--layers", "784,8,10", "--T", "2",
                 "--epochs", "1", "--out", str(tmp_path / "run"), "--checkpoint", str(tmp_path / "ckdir"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "is a folder: name a file" in err[0] and "--resume" not in err[0], err

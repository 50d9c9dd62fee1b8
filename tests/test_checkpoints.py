"""Damaged checkpoint files (issue 15): random bytes, a truncated or empty file, missing weights,
broken metadata, pickled arrays, a plain ``.npy``, another architecture, a missing file or a
folder -- ``Network.load`` raises an error naming the file (and the key or shapes), and a resume
from a corrupt checkpoint is one line that changes nothing.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from reliability_helpers import SMALL, cli, snapshot, user_error

from microcircuit import Network


def test_cli_resume_of_a_corrupt_checkpoint_is_one_line(run_copy):
    ckpt = run_copy / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    before = snapshot(run_copy)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", run_copy, "--resume")
    user_error(proc, "train", str(ckpt))
    assert snapshot(run_copy) == before


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

"""A run's identity: its fingerprint in the log and the checkpoint, and the resumes it refuses
(another run's checkpoint, a shared checkpoint, a trial sweep continued as the real one)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import toy

from microcircuit import identity, training
from microcircuit.checkpoint import read_log
from microcircuit.locks import RunInUseError, lock_checkpoint

NET = dict(layers=[16, 12, 4], rule="scfa", T=3, batch_size=32)


def _run(out, ckpt=None, epochs=1, resume=False, **settings):
    x, y = toy(96)
    return training.run((x, y), (x[:32], y[:32]), out, epochs=epochs, resume=resume, quiet=True, dataset="toy",
                        data_checksum="c" * 64, checkpoint=ckpt, train_eval_samples=0, **{**NET, **settings})


def test_the_fingerprint_is_in_the_log_and_the_checkpoint_and_names_the_run(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b")
    c = _run(tmp_path / "c", seed=3)
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert read_log(tmp_path / "a" / "checkpoint.npz")["fingerprint"] == a["fingerprint"]
    assert identity.fingerprint(identity.of_log(a)) == a["fingerprint"]  # derived again from the log alone
    assert "run_folder" not in json.loads((tmp_path / "a" / "log.json").read_text())  # no machine path in a log


def test_a_log_without_a_fingerprint_gets_the_same_identity_from_its_config():
    log = {"config": {"rule": "bp", "seed": 0}, "provenance": {"dataset": "mnist", "data_checksum": "x",
                                                                 "data_subset": {"source": "auto", "limit": None}}}
    same = identity.identity({"seed": 0, "rule": "bp"}, "mnist", "x", {"source": "full"})
    assert identity.of_log(log) == same
    assert identity.of_log([1, 2]) is None and identity.of_log({"epochs": []}) is None


def test_differences_name_each_setting_and_allow_the_overrides():
    run = identity.identity({"lr": 1e-3, "epochs": 5, "seed": 0}, "mnist", "x", {"source": "full"})
    other = identity.identity({"lr": 2e-3, "epochs": 9, "seed": 1}, "mnist", "x", {"source": "sample"})
    assert identity.differences(run, other) == ["epochs (5 -> 9)", "lr (0.001 -> 0.002)", "seed (0 -> 1)",
                                                "data source ('full' -> 'sample')"]
    assert identity.differences(run, other, allow=("lr", "epochs")) == ["seed (0 -> 1)",
                                                                       "data source ('full' -> 'sample')"]


def test_another_runs_checkpoint_placed_in_the_folder_is_refused(tmp_path):
    _run(tmp_path / "a", epochs=1)
    _run(tmp_path / "b", epochs=1, seed=5)
    shutil.copy(tmp_path / "b" / "checkpoint.npz", tmp_path / "a" / "checkpoint.npz")
    with pytest.raises(training.ResumeMismatchError, match=r"belongs to another run .*seed \(5 -> 0\)"):
        _run(tmp_path / "a", epochs=2, resume=True)
    assert len(json.loads((tmp_path / "a" / "log.json").read_text())["epochs"]) == 1  # nothing written


def test_a_checkpoint_shared_by_two_run_folders_is_refused(tmp_path):
    shared = tmp_path / "ckpt" / "shared.npz"
    _run(tmp_path / "a", ckpt=shared, epochs=1)
    with pytest.raises(FileExistsError, match="exists: pass resume"):  # a new run never takes it over
        _run(tmp_path / "b", ckpt=shared, epochs=2)
    with pytest.raises(training.ResumeMismatchError, match=r"is the checkpoint of the run in .*/a"):
        _run(tmp_path / "b", ckpt=shared, epochs=2, resume=True)
    assert read_log(shared)["epochs"][-1]["epoch"] == 1 and not (tmp_path / "b" / "log.json").exists()


def test_another_runs_checkpoint_file_is_refused_even_beside_a_copy_of_its_log(tmp_path):
    _run(tmp_path / "a", epochs=1)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with pytest.raises(training.ResumeMismatchError, match="is the checkpoint of the run in"):
        _run(tmp_path / "b", ckpt=tmp_path / "a" / "checkpoint.npz", epochs=2, resume=True)
    log = _run(tmp_path / "b", epochs=2, resume=True)  # the copy with its own checkpoint is a copy: it resumes
    assert [r["epoch"] for r in log["epochs"]] == [1, 2]


def test_a_checkpoint_in_use_by_another_run_is_refused_at_once(tmp_path):
    shared = tmp_path / "shared.npz"
    with lock_checkpoint(shared):
        with pytest.raises(RunInUseError, match="checkpoint .*shared.npz is in use by another run"):
            _run(tmp_path / "b", ckpt=shared)
    assert not (tmp_path / "b" / "log.json").exists()


def test_a_trial_sweep_is_never_continued_as_the_real_one(tmp_path):
    where = dict(results=tmp_path / "results", runs=tmp_path / "runs", source="sample")
    trial = training.run_preset("mnist-mlp", "scfa", epochs=2, **where)
    assert trial["status"] == "done" and trial["fingerprint"]
    with pytest.raises(training.ResumeMismatchError, match=r"holds a finished run made with other settings "
                                                           r"\(epochs \(2 -> 1\)\)"):
        training.run_preset("mnist-mlp", "scfa", epochs=1, **where)  # finished, but not the run asked for
    out, ckpt = training.run_paths("mnist-mlp", "scfa", 0, results=where["results"], runs=where["runs"])
    log = json.loads((out / "log.json").read_text())
    log["status"] = "running"  # as if the trial had been stopped: the real sweep must still not continue it
    (out / "log.json").write_text(json.dumps(log))
    with pytest.raises(training.ResumeMismatchError, match=r"epochs=2, not 3, and here a resume may change nothing"):
        training.run_preset("mnist-mlp", "scfa", epochs=3, **where)
    assert len(read_log(ckpt)["epochs"]) == 2


def test_the_command_line_refuses_another_runs_checkpoint_in_one_line(tmp_path, capsys):
    from microcircuit.cli import main

    common = ["train", "--dataset", "mnist", "--sample", "--limit", "64", "--layers", "784,8,10", "--T", "2",
              "--train-eval", "0", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "a"), "--epochs", "1"]) == 0
    capsys.readouterr()
    code = main(common + ["--out", str(tmp_path / "b"), "--checkpoint", str(tmp_path / "a" / "checkpoint.npz"),
                          "--resume", "--epochs", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "is the checkpoint of the run in" in err[0], err
    assert "Traceback" not in "\n".join(err)


def test_a_run_moved_into_a_subfolder_of_its_old_place_resumes(tmp_path):
    _run(tmp_path / "nest", epochs=1)
    (tmp_path / "nest" / "v1").mkdir()
    for name in ("log.json", "log.csv", "checkpoint.npz"):
        shutil.move(tmp_path / "nest" / name, tmp_path / "nest" / "v1" / name)
    log = _run(tmp_path / "nest" / "v1", epochs=2, resume=True)
    assert [r["epoch"] for r in log["epochs"]] == [1, 2]


def test_auto_and_full_data_are_the_same_data_for_a_resume(tmp_path):
    """A run begun by `train --preset` (data found automatically) is continued by `runs` (the full data)."""
    x, y = toy(96)
    common = dict(quiet=True, dataset="toy", data_checksum="c" * 64, train_eval_samples=0, **NET)
    training.run((x, y), None, tmp_path / "r", epochs=1, data_subset={"source": "auto"}, **common)
    log = training.run((x, y), None, tmp_path / "r", epochs=2, resume=True, data_subset={"source": "full"}, **common)
    assert len(log["epochs"]) == 2
    with pytest.raises(training.ResumeMismatchError, match="source"):  # the sample is other data
        training.run((x, y), None, tmp_path / "r", epochs=3, resume=True, data_subset={"source": "sample"}, **common)

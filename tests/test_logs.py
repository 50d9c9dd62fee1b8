"""A run's log has one schema (``microcircuit.logs.check_log``), checked wherever a log is read
(issue 26, item 2): JSON that is not a log (a list, records without ``epoch``, another tool's
file) is kept aside and rebuilt from the checkpoint by training, never crashed on or overwritten,
and skipped by the report with one warning line, never listed as a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import SMALL, cli, epochs_of

from microcircuit import logs, report, training

ROOT = Path(__file__).resolve().parent.parent
KW = dict(layers=[16, 12, 4], rule="bp", T=4, seed=1, lr=3e-3, surrogate="fast_sigmoid")

NOT_LOGS = {  # valid JSON, not a run's log
    "a list": "[1, 2, 3]",
    "records without epoch": json.dumps({"config": {"rule": "bp"}, "epochs": [{"loss": 0.5}]}),
    "another tool's file": json.dumps({"name": "left-pad", "version": "1.3.0", "dependencies": {}}),
}


def _toy(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int) + 2 * (x[:, 0] > 0.5)
    return x, y


@pytest.fixture
def api_run(tmp_path):
    """A finished 1-epoch API run of the toy network (its folder)."""
    x, y = _toy()
    training.run((x, y), (x, y), tmp_path / "api", epochs=1, quiet=True, **KW)
    return tmp_path / "api"


def _aside(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("log.json.") and not p.name.endswith(".tmp"))


# ------------------------------------------------------------------ the schema itself
def test_a_log_written_by_a_run_and_every_bundled_log_pass(api_run):
    assert logs.check_log(json.loads((api_run / "log.json").read_text())) is None
    bundled = sorted((ROOT / "data" / "results").glob("**/log.json"))
    assert len(bundled) >= 60  # the stored runs are there to be checked
    bad = {str(p): logs.check_log(json.loads(p.read_text())) for p in bundled}
    assert not {p: why for p, why in bad.items() if why}  # the report must never skip a real result


@pytest.mark.parametrize("value, words", [
    ([1, 2], "list"),
    ("a log", "string"),
    (None, "null"),
    ({"config": {}}, "no 'epochs'"),
    ({"config": {}, "epochs": {"1": {}}}, "not a list"),
    ({"epochs": []}, "config"),
    ({"config": {}, "epochs": [3]}, "epochs[0]"),
    ({"config": {}, "epochs": [{"epoch": "1"}]}, "int 'epoch'"),
    ({"config": {}, "epochs": [{"epoch": True}]}, "int 'epoch'"),
    ({"config": {}, "epochs": [{"epoch": 2}, {"epoch": 1}]}, "not in order"),
    ({"config": {}, "epochs": [{"epoch": 1, "test_accuracy": "high"}]}, "test_accuracy"),
    ({"config": {}, "epochs": [{"epoch": 1, "alignment_deg": "45"}]}, "alignment_deg"),
    ({"config": {}, "epochs": [], "status": 3}, "status"),
    ({"config": {}, "epochs": [], "segments": [1]}, "segments"),
])
def test_check_log_names_what_is_wrong(value, words):
    problem = logs.check_log(value)
    assert problem is not None and words in problem and "\n" not in problem


# ------------------------------------------------------------------ training reads it
@pytest.mark.parametrize("kind", sorted(NOT_LOGS))
def test_resume_keeps_a_json_that_is_not_a_log_aside_and_rebuilds_it(api_run, kind):
    x, y = _toy()
    (api_run / "log.json").write_text(NOT_LOGS[kind])
    with pytest.warns(UserWarning, match="not a run's log") as caught:
        log = training.run((x, y), (x, y), api_run, epochs=2, quiet=True, resume=True, **KW)
    assert [r["epoch"] for r in log["epochs"]] == [1, 2] and log["status"] == "done"  # epoch 1 from the checkpoint
    assert "rebuilt from the checkpoint" in str(caught[0].message)
    kept = _aside(api_run)
    assert [p.name.split("-")[0] for p in kept] == ["log.json.invalid"] and kept[0].read_text() == NOT_LOGS[kind]


@pytest.mark.parametrize("kind", sorted(NOT_LOGS))
def test_a_new_run_never_overwrites_another_tools_file(tmp_path, kind):
    x, y = _toy()
    (tmp_path / "log.json").write_text(NOT_LOGS[kind])
    with pytest.warns(UserWarning, match="kept as log.json.invalid-"):
        log = training.run((x, y), (x, y), tmp_path, epochs=1, quiet=True, **KW)
    assert log["status"] == "done" and _aside(tmp_path)[0].read_text() == NOT_LOGS[kind]


def test_two_logs_kept_aside_in_one_second_keep_both(api_run, monkeypatch):
    x, y = _toy()
    monkeypatch.setattr(training.time, "strftime", lambda fmt, *a: "20260101-000000")
    for k, text in enumerate(["[1]", "[2]"], start=2):
        (api_run / "log.json").write_text(text)
        with pytest.warns(UserWarning):
            training.run((x, y), (x, y), api_run, epochs=k, quiet=True, resume=True, **KW)
    assert sorted(p.read_text() for p in _aside(api_run)) == ["[1]", "[2]"]


def test_finished_is_false_for_a_file_that_is_not_a_log(tmp_path):
    (tmp_path / "log.json").write_text(json.dumps({"status": "done", "epochs": "all of them"}))
    assert training.finished(tmp_path, 1) is False


def test_cli_resume_over_a_list_is_one_warning_and_goes_on(tmp_path):
    out = tmp_path / "run"
    first = cli("train", *SMALL, "--epochs", "1", "--out", out)
    assert first.returncode == 0, first.stderr
    (out / "log.json").write_text("[1, 2, 3]")
    proc = cli("train", *SMALL, "--epochs", "2", "--out", out, "--resume")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microcircuit train: warning: ") and "not a run's log" in lines[0]
    assert epochs_of(out) == [1, 2] and _aside(out)[0].read_text() == "[1, 2, 3]"


# ------------------------------------------------------------------ the report reads it
def _results_with_bad_logs(tmp_path, api_run) -> Path:
    root = tmp_path / "results"
    good = root / "mnist" / "toy" / "bp" / "seed-0"
    shutil.copytree(api_run, good)
    bad = dict(NOT_LOGS, **{"mixed epochs": json.dumps({"config": {}, "epochs": [{"epoch": 1}, {"epoch": "2"}]})})
    for k, text in enumerate(bad.values()):
        folder = root / "mnist" / "toy" / "fa" / f"seed-{k}"
        folder.mkdir(parents=True)
        (folder / "log.json").write_text(text)
    return root


def test_report_skips_every_file_that_is_not_a_log_with_one_line_each(tmp_path, api_run):
    root = _results_with_bad_logs(tmp_path, api_run)
    res = report.load_results(root)
    assert [(r["rule"], r["seed"]) for r in res.runs] == [("bp", 0)]
    assert len(res.problems) == 4 and all("not a run's log" in p and "\n" not in p for p in res.problems)
    assert "fa" not in {r["rule"] for r in report.runs_table(res)}


def test_cli_report_warns_once_per_bad_log_and_never_crashes(tmp_path, api_run):
    root = _results_with_bad_logs(tmp_path, api_run)
    proc = cli("report", "--root", root)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 4 and all(w.startswith("warning: skipped ") for w in warnings), proc.stderr
    assert "/fa/" not in proc.stdout.split("## Unreadable files")[0]

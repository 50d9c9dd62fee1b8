"""The environment variables the library reads (issue 26, item 3): all read and checked in one
place (``microcircuit.environment``), when first read; a value the library cannot use is one line
naming the variable, the value and the choices, on the command line ``microcircuit CMD: error:
...``; ``MICROCIRCUIT_DEBUG=1`` still shows the traceback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from reliability_helpers import SMALL, cli, user_error

import microcircuit
from microcircuit import backend, data, environment, files, tiers

PACKAGE = Path(microcircuit.__file__).parent


def test_every_environment_read_goes_through_one_module():
    """No module but ``environment`` reads ``os.environ`` (``.get``, ``[...]`` as a value,
    ``os.getenv``); writing it, or handing all of it to a child process, is no read."""
    reads = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "environment.py":
            continue
        tree = ast.parse(path.read_text())
        stores = {id(t) for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AugAssign))
                  for t in (n.targets if isinstance(n, ast.Assign) else [n.target])}
        for node in ast.walk(tree):
            src = ast.unparse(node) if isinstance(node, (ast.Call, ast.Subscript)) else ""
            if isinstance(node, ast.Call) and src.startswith(("os.environ.get(", "os.getenv(")):
                reads.append(f"{path.name}:{node.lineno}: {src}")
            elif isinstance(node, ast.Subscript) and src.startswith("os.environ[") and id(node) not in stores:
                reads.append(f"{path.name}:{node.lineno}: {src}")
    assert not reads, "read environment variables in microcircuit/environment.py:\n" + "\n".join(reads)


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize("name, value, needles", [
    ("MICROCIRCUIT_DTYPE", "float16", ["float32", "float64"]),
    ("MICROCIRCUIT_DTYPE", "garbage", ["float32", "float64"]),
    ("MICROCIRCUIT_BACKEND", "numpyy", ["numpy", "cupy"]),
    ("MICROCIRCUIT_JIT", "maybe", ["yes", "no"]),
])
def test_cli_bad_setting_is_one_line_naming_variable_value_and_choices(tmp_path, name, value, needles):
    proc = cli("train", *SMALL, "--epochs", "1", "--out", tmp_path / "run", env={name: value})
    user_error(proc, "train", name, repr(value), *needles)


def test_cli_results_folder_naming_a_file_is_refused_as_root_is(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    for args, env in ((["--root", target], {}), ([], {"MICROCIRCUIT_RESULTS": target})):
        user_error(cli("report", *args, env=env), "report", str(target))
    user_error(cli("report", env={"MICROCIRCUIT_RESULTS": tmp_path / "nowhere"}), "report", "MICROCIRCUIT_RESULTS")
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("name", ["MICROCIRCUIT_RESULTS", "MICROCIRCUIT_RUNS"])
def test_cli_sweep_folder_naming_a_file_is_one_line_before_any_run(tmp_path, name):
    target = tmp_path / "taken"
    target.write_text("keep me")
    other = {"MICROCIRCUIT_RESULTS": "--runs", "MICROCIRCUIT_RUNS": "--results"}[name]
    proc = cli("sweep", "--presets", "mnist-mlp", "--rules", "bp", "--seeds", "0", "--sample", "--epochs", "1",
               "--workers", "0", other, tmp_path / "other", "--quiet", env={name: target})
    user_error(proc, "sweep", name, "file")
    assert target.read_text() == "keep me" and not (tmp_path / "other").exists()


def test_cli_data_folder_naming_a_file_is_one_line(tmp_path):
    (tmp_path / "data").write_text("x")
    proc = cli("data", "info", "--no-verify", env={"MICROCIRCUIT_DATA": tmp_path / "data",
                                                   "MICROCIRCUIT_CACHE": tmp_path / "cache"})
    user_error(proc, "data info", "MICROCIRCUIT_DATA", "file")


def test_cli_bad_debug_switch_is_one_line_and_debug_still_shows_tracebacks(tmp_path):
    user_error(cli("report", "--root", tmp_path, env={"MICROCIRCUIT_DEBUG": "maybe"}), "report",
               "MICROCIRCUIT_DEBUG", "'maybe'")
    proc = cli("train", *SMALL, "--epochs", "1", "--out", tmp_path / "run",
               env={"MICROCIRCUIT_DTYPE": "float16", "MICROCIRCUIT_DEBUG": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "EnvironmentVariableError" in proc.stderr


# ------------------------------------------------------------------ the API
@pytest.mark.parametrize("value, on", [("1", True), (" YES ", True), ("On", True), ("true", True), ("0", False),
                                       ("no", False), ("OFF", False), ("False", False), ("", True)])
def test_switches_take_every_spelling_and_empty_is_the_default(monkeypatch, value, on):
    monkeypatch.setenv("MICROCIRCUIT_JIT", value)
    assert environment.flag(environment.JIT, default=True) is on


def test_a_bad_value_is_caught_when_first_read_by_each_reader(monkeypatch, tmp_path):
    monkeypatch.setitem(backend._state, "dtype", None)  # not read yet in this process
    monkeypatch.setenv("MICROCIRCUIT_DTYPE", "int8")
    with pytest.raises(environment.EnvironmentVariableError, match="MICROCIRCUIT_DTYPE='int8'.*float32"):
        backend.dtype()
    monkeypatch.setenv("MICROCIRCUIT_DTYPE", "f8")  # NumPy's names of the same dtypes are fine
    assert backend.dtype().name == "float64"
    monkeypatch.setitem(backend._state, "jit", None)
    monkeypatch.setenv("MICROCIRCUIT_JIT", "maybe")
    with pytest.raises(ValueError, match="MICROCIRCUIT_JIT='maybe'"):
        backend.jit_enabled()
    monkeypatch.setenv("MICROCIRCUIT_TIER", "paper")
    with pytest.raises(ValueError, match="MICROCIRCUIT_TIER='paper'.*smoke, book or full"):
        tiers.tier()
    (tmp_path / "file").write_text("")
    for name, read in (("MICROCIRCUIT_RESULTS", files.results_dir), ("MICROCIRCUIT_RUNS", files.runs_dir),
                       ("MICROCIRCUIT_CACHE", data.cache_dir)):
        monkeypatch.setenv(name, str(tmp_path / "file"))
        with pytest.raises(ValueError, match=f"{name}=.*names a file, not a folder"):
            read()
    monkeypatch.setenv("MICROCIRCUIT_RUNS", "~/somewhere")
    assert files.runs_dir() == Path("~/somewhere").expanduser()


def test_every_variable_has_one_entry_and_one_line_errors(monkeypatch):
    for name, (kind, *_rest) in environment.VARIABLES.items():
        assert name.startswith("MICROCIRCUIT_")
        if kind == "folder":
            continue
        monkeypatch.setenv(name, "bogus\nvalue")
        with pytest.raises(environment.EnvironmentVariableError) as err:
            environment.choice(name) if kind == "choice" else environment.flag(name, False)
        assert "\n" not in str(err.value) and name in str(err.value)

"""The wheel carries what the chapters need, and every chapter runs from it, installed.

The first test builds the wheel (from a copy of the sources, outside the checkout) and
checks what it holds. The second installs it into a fresh virtual environment outside the
checkout and executes every chapter there in the smoke tier; it takes minutes, so it runs
only with ``MICROCIRCUIT_TEST_WHEEL=1`` (``make wheel-test``, part of ``make test``). The
fresh environment borrows the test environment's third-party packages through a ``.pth``
line (so that it works offline), never its ``microcircuit``: the library comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from zipfile import ZipFile

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEEL_LIMIT_MB = 8.0


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the library, built from a copy of its sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("microcircuit", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("microcircuit-*.whl")
    return path


def test_the_wheel_carries_the_samples_and_the_stored_results_and_stays_small(wheel):
    names = set(ZipFile(wheel).namelist())
    samples = ROOT / "data" / "samples"
    for line in (samples / "SHA256SUMS").read_text().split("\n"):
        if line.strip():
            assert f"microcircuit/resources/samples/{line.split()[-1]}" in names
    stored = {f"microcircuit/resources/{p.relative_to(ROOT / 'data').as_posix()}"
              for p in (ROOT / "data" / "results").rglob("*.json")}
    assert stored and stored <= names  # every log and benchmark the chapters read
    assert not [n for n in names if n.endswith((".csv", ".md", ".pyc"))]  # what no chapter reads
    assert "microcircuit/registry.json" in names and "microcircuit/plots/results.py" in names
    size_mb = wheel.stat().st_size / 2**20
    print(f"wheel: {wheel.name}, {size_mb:.2f} MiB")
    assert size_mb < WHEEL_LIMIT_MB


def _fresh_venv(where: Path, wheel: Path) -> Path:
    """A new venv at ``where`` with the wheel installed; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MICROCIRCUIT_TEST_WHEEL") != "1",
                    reason="minutes: run with MICROCIRCUIT_TEST_WHEEL=1 (make wheel-test)")
def test_every_chapter_runs_from_the_installed_wheel(wheel, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    python = _fresh_venv(tmp_path / "venv", wheel)
    where = subprocess.run(
        [str(python), "-c", "import json, microcircuit, microcircuit.files as f; print(json.dumps("
         "[microcircuit.__file__, str(f.checkout_root()), str(f.resource('samples')), len(__import__("
         "'microcircuit.report').report.load_results().runs)]))"],
        capture_output=True, text=True, cwd=tmp_path, env={k: v for k, v in os.environ.items()
                                                           if k not in ("PYTHONPATH", "MICROCIRCUIT_RESULTS")})
    assert where.returncode == 0, where.stderr
    module, checkout, samples, runs = json.loads(where.stdout)
    assert module.startswith(str(tmp_path / "venv")) and checkout == "None"
    assert samples.startswith(str(tmp_path / "venv")) and runs > 0  # the stored results, from the wheel

    kernels = tmp_path / "jupyter" / "kernels" / "wheel"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "microcircuit wheel", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MICROCIRCUIT_TIER", "smoke")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name in ("PYTHONPATH", "MICROCIRCUIT_RESULTS", "MICROCIRCUIT_RUNS"):
        monkeypatch.delenv(name, raising=False)
    chapters = tmp_path / "chapters"
    shutil.copytree(ROOT / "chapters", chapters, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    guard = nbformat.v4.new_code_cell(
        "import microcircuit, microcircuit.files\n"
        f"assert microcircuit.__file__.startswith({str(tmp_path / 'venv')!r}), microcircuit.__file__\n"
        "assert microcircuit.files.checkout_root() is None")
    for path in sorted(chapters.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(0, guard)
        NotebookClient(nb, timeout=600, kernel_name="wheel", resources={"metadata": {"path": str(chapters)}}).execute()
        text = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "the folder does not exist" not in text and "No training runs found" not in text, path.name

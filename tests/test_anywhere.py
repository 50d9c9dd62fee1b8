"""Every chapter runs where readers are (issue 13): the setup cell, Binder, JupyterLite, the
publish workflow, truthful stored outputs and the site's weight.

The slow checks (building the JupyterLite site, ``jupyter lite check``) are marked ``slow``
and need the ``lite`` extra; they skip with a reason without it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
URL = CONFIG["repository"]["url"]


# ------------------------------------------------------------------- the setup cell
def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_starts_with_the_generated_setup_cell(path, load_script):
    mod = load_script("setup_cell")
    first = _code_cells(path)[0]
    assert "".join(first["source"]) == mod.cell_source(URL), "run `python scripts/setup_cell.py`"
    assert "remove-cell" in first["metadata"]["tags"]  # hidden in the HTML book
    assert sum(mod.is_setup_cell(c) for c in _code_cells(path)) == 1
    assert first["outputs"] == []  # it does nothing where the library is installed


def test_setup_cell_script_is_idempotent_and_checks(tmp_path, load_script):
    mod = load_script("setup_cell")
    (tmp_path / "chapters").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path)
    shutil.copy(CHAPTERS[2], tmp_path / "chapters" / CHAPTERS[2].name)
    (tmp_path / "README.md").write_text(f"# x\n\n{mod.README_BEGIN}\nold\n{mod.README_END}\n")
    nb = json.loads((tmp_path / "chapters" / CHAPTERS[2].name).read_text())
    nb["cells"] = [c for c in nb["cells"] if not mod.is_setup_cell(c)]
    (tmp_path / "chapters" / CHAPTERS[2].name).write_text(json.dumps(nb))
    assert mod.main(["--check"], root=tmp_path) == 1
    assert mod.main([], root=tmp_path) == 0
    first = (tmp_path / "chapters" / CHAPTERS[2].name).read_text()
    assert mod.main(["--check"], root=tmp_path) == 0
    assert mod.main([], root=tmp_path) == 0
    assert (tmp_path / "chapters" / CHAPTERS[2].name).read_text() == first  # a second run changes nothing
    # the URL comes from _config.yml: change it there and everything follows
    config = (tmp_path / "_config.yml").read_text().replace(URL, "https://github.com/someone/fork")
    (tmp_path / "_config.yml").write_text(config)
    assert mod.main(["--check"], root=tmp_path) == 1
    mod.main([], root=tmp_path)
    text = (tmp_path / "chapters" / CHAPTERS[2].name).read_text()
    assert "someone/fork" in text and URL not in text
    assert "someone.github.io/fork" in (tmp_path / "README.md").read_text()


def _run_setup_cell(monkeypatch, *, installed: bool, platform: str) -> list[tuple[str, str]]:
    """Run the setup cell as IPython would (magics transformed) and record the magics it calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell("".join(_code_cells(CHAPTERS[0])[0]["source"]))
    calls: list[tuple[str, str]] = []

    class Shell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real_find_spec(name, *a) if installed or name != "microcircuit" else None))
    monkeypatch.setattr(sys, "platform", platform)
    exec(compile(code, "setup-cell", "exec"), {"get_ipython": Shell})
    return calls


def test_setup_cell_does_nothing_where_the_library_is_importable(monkeypatch):
    assert _run_setup_cell(monkeypatch, installed=True, platform="linux") == []


def test_setup_cell_installs_from_the_repository_or_the_lite_site(monkeypatch):
    assert _run_setup_cell(monkeypatch, installed=False, platform="linux") == [
        ("pip", f'install -q "microcircuit[widgets] @ git+{URL}"')]
    # JupyterLite: piplite answers `%pip install microcircuit` from the site's own wheels
    assert _run_setup_cell(monkeypatch, installed=False, platform="emscripten") == [
        ("pip", "install -q microcircuit")]


def test_repository_url_is_written_once():
    """The URL lives in _config.yml; the README's links are generated from it, no other file spells it."""
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL)
    owner_repo = URL.removeprefix("https://github.com/")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    allowed = {"_config.yml", "README.md"} | {p.relative_to(ROOT).as_posix() for p in CHAPTERS}
    spelled = [f for f in tracked if f not in allowed and (ROOT / f).is_file()
               and owner_repo in (ROOT / f).read_text(errors="ignore")]
    assert spelled == []
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- launch:begin")[1].split("<!-- launch:end -->")[0]
    assert owner_repo in block and readme.count(owner_repo) == block.count(owner_repo)
    assert "<repository url>" not in readme


# -------------------------------------------------------------------------- Binder
def test_binder_pins_python_and_installs_the_library_with_widgets():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert match, runtime
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert int(match.group(1)) >= int(re.search(r">=\s*3\.(\d+)", requires).group(1))
    lines = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert any(re.fullmatch(r"(-e\s+)?\.\[([\w,]*widgets[\w,]*)\]", ln) for ln in lines), lines
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"ipywidgets", "matplotlib"} <= {re.split(r"[<>=\[ ;]", d)[0] for d in extras["widgets"]}

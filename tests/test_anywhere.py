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
        ("pip", 'install -q "microcircuit[widgets]"')]


def test_repository_url_is_written_once():
    """The URL lives in _config.yml; the README's links are generated from it, CITATION.cff and the
    README's citation (generated from that) copy it, held to it by tests/test_citation.py; no other
    file spells it."""
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL)
    owner_repo = URL.removeprefix("https://github.com/")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    allowed = {"_config.yml", "README.md", "CITATION.cff"} | {p.relative_to(ROOT).as_posix() for p in CHAPTERS}
    spelled = [f for f in tracked if f not in allowed and (ROOT / f).is_file()
               and owner_repo in (ROOT / f).read_text(errors="ignore")]
    assert spelled == []
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- launch:begin")[1].split("<!-- launch:end -->")[0]
    citing = readme.split("\n## Citing\n")[1].split("\n## ")[0]
    assert owner_repo in block and readme.count(owner_repo) == block.count(owner_repo) + citing.count(owner_repo)
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


# ------------------------------------------------------- JupyterLite (run in the browser)
def test_lite_bundle_holds_every_pure_dependency_of_the_library(load_script):
    """What `%pip install "microcircuit[widgets]"` needs under Pyodide is shipped, or Pyodide has it."""
    pytest.importorskip("jupyterlite_core", reason="needs the lite extra (pip install -e '.[lite]')")
    mod = load_script("build_lite")
    closure = mod.dependency_closure()
    assert {"tqdm", "pooch", "ipywidgets"} <= set(closure)
    assert not set(closure) & mod.PYODIDE_PROVIDES
    assert "numpy" not in closure and "matplotlib" not in closure  # Pyodide's own builds


def test_tier_defaults_to_smoke_in_a_browser(monkeypatch):
    from microcircuit import tiers

    monkeypatch.delenv("MICROCIRCUIT_TIER", raising=False)
    monkeypatch.setattr(sys, "platform", "emscripten")
    assert tiers.tier() == "smoke"
    monkeypatch.setenv("MICROCIRCUIT_TIER", "book")
    assert tiers.tier() == "book"  # the variable still wins


_PYODIDE_LIKE = r"""
# A CPython imitation of what Pyodide forbids: no processes, no threads, no sockets.
import socket, subprocess, sys, threading
import numpy, matplotlib.pyplot  # Pyodide's own builds, imported before the platform is faked
sys.platform = "emscripten"
def forbidden(*a, **k):
    raise RuntimeError("not possible in a browser")
subprocess.Popen.__init__ = forbidden
threading.Thread.start = forbidden
socket.socket.__init__ = forbidden
import numpy as np
import microcircuit
from microcircuit import Network, RULES, backend, data, plots, report, tiers, training, widgets
assert tiers.tier() == "smoke"
x, y = data.load_sample("mnist", "train")
net = Network([784, 16, 10], rule="microcircuit", T=4, seed=0, epochs=1)
net.fit(x[:64], y[:64])
acc = net.evaluate(*data.load_sample("mnist", "test"))["accuracy"]
prov = training.provenance(seed=0)
assert prov["git_commit"] is None
fig = plots.raster(np.eye(4))
w = widgets.hebbian_widget(values=(-0.5, 0.5))
print("ok", round(acc, 3), w.static.n_frames)
"""


def test_chapters_library_path_needs_no_process_thread_or_socket(tmp_path):
    """The library's chapter path runs where Pyodide would refuse processes, threads and sockets."""
    pytest.importorskip("matplotlib")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MICROCIRCUIT_TIER"}
    env["MPLBACKEND"] = "Agg"
    out = subprocess.run([sys.executable, "-c", _PYODIDE_LIKE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok ")


@pytest.mark.slow
def test_lite_site_builds_offline_and_lists_every_chapter_and_the_wheel(tmp_path, load_script):
    """`jupyter lite build` + `jupyter lite check` with no download; the site has the chapters and wheels."""
    pytest.importorskip("jupyterlite_core", reason="needs the lite extra (pip install -e '.[lite]')")
    mod = load_script("build_lite")
    wheels = ROOT / "_build" / "lite-wheels"
    have = {mod.wheel_name_version(w)[:2] for w in wheels.glob("*.whl")}
    if not set(mod.dependency_closure().items()) <= have:
        pytest.skip("dependency wheels not collected yet: run `make lite` once")
    out = tmp_path / "lite"
    had_build = (ROOT / "build").exists()
    stale = ROOT / "build" / "lib" / "microcircuit" / "_removed_module.py"  # left by an older build
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("raise ImportError\n")
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_lite.py"), "--offline", "--check",
                               "--output", str(out)], capture_output=True, text=True, timeout=600,
                              env={**__import__("os").environ, "PIP_NO_INDEX": "1"})
    finally:
        stale.unlink(missing_ok=True)
        if not had_build:
            __import__("shutil").rmtree(ROOT / "build", ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    listed = json.loads((out / "api" / "contents" / "chapters" / "all.json").read_text())
    assert sorted(c["name"] for c in listed["content"]) == [p.name for p in CHAPTERS]
    index = json.loads((out / "pypi" / "all.json").read_text())
    assert {"microcircuit", "tqdm", "pooch", "ipywidgets"} <= set(index)
    (wheel,) = (out / "pypi").glob("microcircuit-*-py3-none-any.whl")
    names = __import__("zipfile").ZipFile(wheel).namelist()
    assert "microcircuit/network.py" in names and "microcircuit/_removed_module.py" not in names
    config = json.loads((out / "jupyter-lite.json").read_text())["jupyter-config-data"]
    assert config["litePluginSettings"]["@jupyterlite/pyodide-kernel-extension:kernel"]["pipliteUrls"]


def test_chapter_pages_get_a_jupyterlite_button_relative_to_the_page(load_script):
    assert CONFIG["launch_buttons"]["jupyterlite_url"] == "lite/lab/index.html"  # where `make lite` builds
    mod = load_script("book_ext")
    buttons = [{"type": "group", "buttons": [
        {"text": "JupyterLite", "url": "lite/lab/index.html?path=chapters/03_x.ipynb"},
        {"text": "Colab", "url": "https://colab.research.google.com/github/a/b/blob/main/chapters/03_x.ipynb"}]}]
    context = {"header_buttons": buttons, "pathto": lambda path, resource=0: "../" + path}
    mod._relative_launch_links(None, "chapters/03_x", "page.html", context, None)
    assert buttons[0]["buttons"][0]["url"] == "../lite/lab/index.html?path=chapters/03_x.ipynb"
    assert buttons[0]["buttons"][1]["url"].startswith("https://colab")


# ---------------------------------------------------------------------- publishing
def test_workflow_builds_with_the_ci_make_targets_and_deploys_pages():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    build = workflow["jobs"]["build"]
    runs = [s["run"] for s in build["steps"] if "run" in s]
    uses = [s["uses"].split("@")[0] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    ci = (ROOT / ".ci" / "run").read_text()
    ci_targets = re.findall(r"^make (\w+)", ci, re.MULTILINE)
    assert ci_targets and [r.split()[1] for r in runs if r.startswith("make ")] == ci_targets
    makefile = (ROOT / "Makefile").read_text()
    assert "-W" in re.search(r"^book:.*?(?=^\S)", makefile, re.MULTILINE | re.DOTALL).group(0)  # warnings fail
    assert "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    cache = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert "_build/.jupyter_cache" in cache["with"]["path"]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html" and "main" in upload["if"]
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_browser_check_serves_the_site_under_a_sub_path(tmp_path, load_script):
    import urllib.error
    import urllib.request

    mod = load_script("browser_check")
    (tmp_path / "page.html").write_text("hello")
    server, base = mod.serve(tmp_path, "/microcircuit/")
    try:
        assert base.endswith("/microcircuit/")
        assert urllib.request.urlopen(base + "page.html").read() == b"hello"
        with pytest.raises(urllib.error.HTTPError):  # the site root is not served: links must be relative
            urllib.request.urlopen(base.replace("/microcircuit/", "/") + "page.html")
    finally:
        server.shutdown()


# -------------------------------------------------------------- truthful outputs
SMOKE_MARKERS = re.compile(r"tier '?smoke'?|'smoke' tier|smoke tier", re.IGNORECASE)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_outputs_are_book_tier_or_none(path):
    """A notebook opened on GitHub, nbviewer or Colab shows what the HTML book shows, or nothing."""
    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    if not outputs:
        return
    assert nb["metadata"].get("microcircuit", {}).get("tier") == "book", \
        "stored outputs of another tier: run `make notebooks` (book tier)"
    for o in outputs:
        text = "".join(o.get("text", "")) + "".join(
            "".join(v) if isinstance(v, list) else str(v)
            for k, v in o.get("data", {}).items() if k.startswith("text/"))
        assert not SMOKE_MARKERS.search(text), f"smoke-tier output stored: {SMOKE_MARKERS.search(text).group(0)!r}"


def test_execute_notebooks_stamps_the_tier_and_strips(tmp_path, load_script):
    nbformat = pytest.importorskip("nbformat")
    mod = load_script("execute_notebooks")
    path = tmp_path / "a.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    nb.metadata["widgets"] = {"x": 1}
    nbformat.write(nb, path)
    mod.strip(path)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert "widgets" not in nb.metadata and "microcircuit" not in nb.metadata
    mod._finish(nb, "book")
    assert nb.metadata["microcircuit"] == {"tier": "book"}


# ----------------------------------------------------------------------- site weight
def test_only_the_mathjax_variant_in_use_is_shipped(tmp_path, load_script):
    mod = load_script("book_ext")
    mathjax = tmp_path / "_static" / "mathjax"
    for rel in ("tex-chtml.js", "tex-svg.js", "tex-mml-chtml.js", "core.js", "output/chtml/fonts/woff-v2/a.woff",
                "output/svg/fonts/tex.js", "output/svg.js", "input/tex/extensions/ams.js", "input/mml.js",
                "ui/menu.js", "a11y/explorer.js", "sre/mathmaps/en.json"):
        (mathjax / rel).parent.mkdir(parents=True, exist_ok=True)
        (mathjax / rel).write_text("x")
    mod.prune_mathjax(tmp_path / "_static", CONFIG["sphinx"]["config"]["mathjax_path"].removeprefix("mathjax/"))
    left = sorted(p.relative_to(mathjax).as_posix() for p in mathjax.rglob("*") if p.is_file())
    assert left == ["a11y/explorer.js", "input/tex/extensions/ams.js", "output/chtml/fonts/woff-v2/a.woff",
                    "sre/mathmaps/en.json", "tex-chtml.js", "ui/menu.js"]

"""The book's API reference (``api/*.md``) lists the whole public API it covers.

The pages are written by hand (autodoc fills them from the docstrings), so a new public
name would silently go missing from the book. These checks fail instead: every name of
``microcircuit.__all__`` is on the front page (``api/index.md``), and every public function
and class defined in a covered module has an entry in that module's summary table and a
directive of its own on the module's page (``api/<module>.md``). The build
(``jupyter-book build . -W -n``) then fails on a docstring that is not valid reST.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import microcircuit

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "api"
# the modules a reader meets in the chapters, each with its page api/<module>.md
MODULES = ("neurons", "encoding", "layers", "losses", "feedback", "circuit", "bptt", "rules", "optim",
           "config", "network", "metrics", "data", "presets", "runspec", "identity", "training", "report",
           "stats", "seeds", "backend")

_DIRECTIVE = re.compile(r"^\.\. (?:auto(?:class|function|exception|data)|py:data)::\s+(\S+)", re.MULTILINE)


def _summaries(text: str) -> list[str]:
    """The entries of every ``.. autosummary::`` table of a page (``~`` removed)."""
    entries = []
    for block in re.findall(r"^\.\. autosummary::\n((?:(?:   .*)?\n)+)", text, re.MULTILINE):
        entries += [line.strip().lstrip("~") for line in block.splitlines()
                    if line.strip() and not line.strip().startswith(":")]
    return entries


def _public(module) -> list[str]:
    """Public functions and classes defined in ``module`` (not imported into it)."""
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
                  and (inspect.isclass(obj) or inspect.isfunction(obj) or hasattr(obj, "__wrapped__")))


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def test_front_page_lists_every_name_of_the_package():
    text = (API / "index.md").read_text()
    assert ".. automodule:: microcircuit\n" in text
    listed = {target.rsplit(".", 1)[-1]: target for target in _summaries(text) + _DIRECTIVE.findall(text)}
    missing = sorted(set(microcircuit.__all__) - set(listed))
    assert not missing, f"microcircuit.__all__ names missing from api/index.md: {missing}"
    for name in microcircuit.__all__:
        assert _resolve(listed[name]) is getattr(microcircuit, name), (name, listed[name])
    for module in MODULES:  # the module map links every page
        assert f"   microcircuit.{module}\n" in text, module


@pytest.mark.parametrize("name", MODULES)
def test_module_page_documents_every_public_name(name):
    module = importlib.import_module(f"microcircuit.{name}")
    page = API / f"{name}.md"
    assert page.is_file(), f"no API page {page.relative_to(ROOT)}"
    text = page.read_text()
    assert f".. automodule:: microcircuit.{name}\n" in text
    summary, documented = set(_summaries(text)), set(_DIRECTIVE.findall(text))
    public = _public(module)
    assert public, name
    missing = sorted(set(public) - summary)
    assert not missing, f"public names of microcircuit.{name} missing from the summary table of {page.name}: {missing}"
    missing = sorted(set(public) - documented)
    assert not missing, f"public names of microcircuit.{name} without an auto* directive on {page.name}: {missing}"
    for entry in summary | documented:  # no stale entries: each one still exists
        assert hasattr(module, entry), f"{page.name} lists {entry}, which microcircuit.{name} no longer has"


def test_toc_has_an_api_part_with_every_page():
    yaml = pytest.importorskip("yaml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (part,) = [p for p in toc["parts"] if p["caption"] == "API reference"]
    assert toc["parts"][-1] is part  # the last part of the book
    (index,) = part["chapters"]
    assert index["file"] == "api/index"
    assert [s["file"] for s in index["sections"]] == [f"api/{m}" for m in MODULES]
    assert sorted(p.stem for p in API.glob("*.md")) == sorted(("index", *MODULES))

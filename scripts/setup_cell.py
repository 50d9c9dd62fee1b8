"""Give every chapter the same first code cell, which installs the library where it is missing.

A chapter opened outside this repository (Colab, Kaggle, a bare Jupyter, JupyterLite) has no
``microcircuit`` to import. Each chapter therefore starts with one setup cell, generated here
from a single template so that the twelve copies never drift apart:

- where ``microcircuit`` is importable (a clone after ``make book``, CI, Binder) it does nothing;
- in JupyterLite (Pyodide, ``sys.platform == "emscripten"``) it runs ``%pip install "microcircuit[widgets]"``,
  which piplite answers from the wheels shipped with the site (``make lite``), not from PyPI;
- anywhere else it runs ``%pip install "microcircuit[widgets] @ git+<repository url>"``.

The cell carries the tag ``remove-cell`` (the HTML book does not show it) and ``mc-setup`` (how
this script finds it again). The repository URL is read from ``_config.yml``
(``repository.url``), the one place it is written; the same script writes the README's
"Run it" links between its ``<!-- launch:begin -->`` and ``<!-- launch:end -->`` markers.

Usage::

    python scripts/setup_cell.py            # insert or update the cell in chapters/[0-9][0-9]_*.ipynb and the README
    python scripts/setup_cell.py --check    # exit 1 (and name them) if any chapter or the README is out of date

Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "mc-setup"
CELL_ID = "mc-setup"
TAGS = ["remove-cell", TAG]
README_BEGIN = "<!-- launch:begin (written by scripts/setup_cell.py from _config.yml) -->"
README_END = "<!-- launch:end -->"

TEMPLATE = '''\
# Setup: installs the microcircuit library if this notebook runs outside the book's repository
# (Colab, Kaggle, JupyterLite, a bare Jupyter); does nothing where it is already installed.
import importlib
import importlib.util
import sys

if importlib.util.find_spec("microcircuit") is None:
    if sys.platform == "emscripten":  # JupyterLite: the wheel ships with the site
        %pip install -q "microcircuit[widgets]"
    else:
        %pip install -q "microcircuit[widgets] @ git+{url}"
    importlib.invalidate_caches()'''


def config(root: Path = ROOT) -> dict:
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def repository_url(root: Path = ROOT) -> str:
    """The repository URL, from ``_config.yml`` (``repository.url``), without a trailing slash."""
    url = str(config(root)["repository"]["url"]).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml repository.url {url!r} is not https://github.com/<owner>/<repo>")
    return url


def cell_source(url: str) -> str:
    return TEMPLATE.format(url=url)


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb"))


def is_setup_cell(cell: dict) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", []) or cell.get("id") == CELL_ID


def make_cell(url: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": CELL_ID,
            "metadata": {"tags": list(TAGS)}, "outputs": [], "source": _lines(cell_source(url))}


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def updated(nb: dict, url: str) -> dict:
    """``nb`` with exactly one setup cell, placed before its first other code cell."""
    cells = [c for c in nb["cells"] if not is_setup_cell(c)]
    old = [c for c in nb["cells"] if is_setup_cell(c)]
    cell = make_cell(url)
    if old and "".join(old[0].get("source", [])) == cell_source(url):
        cell = old[0]  # keep its execution count: unchanged code needs no re-execution
        cell["metadata"]["tags"] = list(TAGS)
        cell["id"] = CELL_ID
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    nb = dict(nb)
    nb["cells"] = cells[:first_code] + [cell] + cells[first_code:]
    return nb


def launch_block(url: str) -> str:
    owner_repo = url.removeprefix("https://github.com/")
    owner, repo = owner_repo.split("/")
    site = f"https://{owner}.github.io/{repo}/"
    return "\n".join([
        README_BEGIN,
        f"- **Read online**: <{site}> (built from `main` by `.github/workflows/book.yml`).",
        f"- **Run in the browser, no install** (JupyterLite): <{site}lite/lab/index.html>, or the",
        "  JupyterLite button at the top of any chapter page.",
        f"- **Colab**: <https://colab.research.google.com/github/{owner_repo}/blob/main/chapters/01_preface.ipynb>",
        "  (any chapter: replace the file name; the rocket button of a chapter page links to it).",
        f"- **Binder**: <https://mybinder.org/v2/gh/{owner_repo}/main?urlpath=lab/tree/chapters>",
        f"- **Install the library anywhere**: `pip install \"microcircuit[widgets] @ git+{url}\"`",
        README_END,
    ])


def updated_readme(text: str, url: str) -> str:
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {README_BEGIN!r} ... {README_END!r} block")
    return pattern.sub(lambda _: launch_block(url), text)


def _dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str], root: Path = ROOT) -> int:
    check = "--check" in argv
    url = repository_url(root)
    stale = []
    for path in chapters(root):
        text = path.read_text(encoding="utf-8")
        new = _dump(updated(json.loads(text), url))
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = updated_readme(text, url)
    if new != text:
        stale.append(readme)
        if not check:
            readme.write_text(new, encoding="utf-8")
    names = ", ".join(p.relative_to(root).as_posix() for p in stale)
    if check:
        if stale:
            print(f"setup cell or README launch links out of date in: {names}; run `python scripts/setup_cell.py`")
            return 1
        print(f"setup cell up to date in {len(chapters(root))} chapters and the README ({url})")
        return 0
    print(f"updated: {names}" if stale else "nothing to update")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Store in the chapter notebooks the outputs of the ``book`` tier, the ones the HTML book shows.

Policy (issue 13): a notebook opened outside the book (GitHub, nbviewer, Colab, JupyterLite)
shows the book-tier outputs the HTML shows, or none, never smoke-tier numbers that look like
results. So the stored outputs come from the ``book`` tier, and every notebook records the tier
its outputs came from in its metadata (``"microcircuit": {"tier": "book"}``); the tests refuse
stored outputs with smoke-tier markers. nbval (``make nbval``) still re-runs every chapter in the
fast ``smoke`` tier and compares the cells marked ``# NBVAL_CHECK_OUTPUT`` (or tagged
``nbval-check-output``) with these stored outputs: a checked cell must therefore print numbers
that do not depend on the tier (fixed inputs, booleans, sample sizes), and nbval fails when one does.

Two ways to fill the outputs::

    python scripts/execute_notebooks.py --from-cache      # after `make book`: copy the outputs the
                                                          # book just computed (no re-execution)
    python scripts/execute_notebooks.py [chapters/NN_x.ipynb ...]   # execute in the book tier (minutes)

``make notebooks`` runs the first when the book's cache holds book-tier results for the current
code, the second otherwise. ``--strip`` removes every output instead (the other truthful option).
Widget state is dropped (it would bloat the notebooks; a live kernel recreates it).
"""

from __future__ import annotations

import argparse
import os
import sys
import importlib.util
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"
CACHE_TIER = ROOT / "_build" / ".microcircuit_cache_tier"  # written by scripts/book_cache_key.py
STORED_TIER = "book"


def cache_is_current() -> bool:
    """True when the book's execution cache was made from the current library and results: the
    key ``scripts/book_cache_key.py`` stored then equals the key of what is here now (the cache
    itself matches cells by their code only)."""
    stored = ROOT / "_build" / ".microcircuit_cache_key"
    if not stored.is_file():
        return False
    spec = importlib.util.spec_from_file_location("book_cache_key", ROOT / "scripts" / "book_cache_key.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = os.environ.get("MICROCIRCUIT_TIER")
    os.environ["MICROCIRCUIT_TIER"] = STORED_TIER  # the key of the book tier's cache
    try:
        return stored.read_text().strip() == module.key()
    finally:
        if saved is None:
            os.environ.pop("MICROCIRCUIT_TIER")
        else:
            os.environ["MICROCIRCUIT_TIER"] = saved


def chapters() -> list[Path]:
    return sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _finish(nb, tier: str | None) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    if tier is None:
        nb.metadata.pop("microcircuit", None)
    else:
        nb.metadata["microcircuit"] = {"tier": tier}


def execute(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place in the book tier."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    _finish(nb, STORED_TIER)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def cache_tier() -> str | None:
    return CACHE_TIER.read_text().strip() if CACHE_TIER.is_file() else None


def from_cache(path: Path) -> bool:
    """Copy the outputs of ``path`` from the book's execution cache; ``False`` if it holds none for this code."""
    from jupyter_cache import get_cache

    nb = nbformat.read(path, as_version=4)
    try:
        _, merged = get_cache(CACHE).merge_match_into_notebook(nb)
    except KeyError:
        return False
    _finish(merged, STORED_TIER)
    nbformat.write(merged, path)
    return True


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _finish(nb, None)
    nbformat.write(nb, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from-cache", action="store_true", help="copy outputs from `make book`'s cache")
    group.add_argument("--auto", action="store_true", help="from the cache where it matches, else execute")
    group.add_argument("--strip", action="store_true", help="remove every output")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or chapters()
    if args.strip:
        for path in paths:
            strip(path)
            print(f"{path.name}: outputs removed")
        return 0
    use_cache = (args.from_cache or args.auto) and cache_tier() == STORED_TIER and CACHE.is_dir() \
        and cache_is_current()
    if args.from_cache and not use_cache:
        print(f"no {STORED_TIER}-tier execution cache in {CACHE.relative_to(ROOT)} "
              f"(tier: {cache_tier()}) made from the current library and results: run `make book` first, or run without --from-cache")
        return 1
    os.environ["MICROCIRCUIT_TIER"] = STORED_TIER
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    missing = []
    for path in paths:
        if use_cache and from_cache(path):
            print(f"{path.name}: book-tier outputs copied from the book's execution cache", flush=True)
        elif args.from_cache:
            missing.append(path.name)
        else:
            print(f"{path.name}: executed in the {STORED_TIER} tier in {execute(path):.1f} s", flush=True)
    if missing:
        print(f"not in the execution cache (code changed since `make book`?): {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

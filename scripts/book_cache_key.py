"""Invalidate the book's execution cache when the library (or the run tier) changes.

jupyter-cache keys a notebook's stored outputs on the notebook's code cells only, so after
an edit to ``microcircuit/*.py`` the book would show outputs of the old library. This script
(run by ``make book`` before ``jupyter-book build``) hashes everything the chapters'
outputs depend on besides their own code:

- the library's source, ``microcircuit/**/*.py`` and ``microcircuit/registry.json``;
- the stored results the result chapters plot, ``data/results/**`` (if present);
- the run tier ``$MICROCIRCUIT_TIER`` (default ``book``) and the backend/dtype switches;

and compares the hash with the one stored beside the cache (``_build/.microcircuit_cache_key``).
If they differ, it deletes ``_build/.jupyter_cache`` and Sphinx's environment
``_build/.doctrees`` (Sphinx re-reads, and so re-executes, only pages it thinks changed), so
that every notebook re-executes, then stores the new hash. Simple and robust: a library
change costs one full re-execution.

Usage: ``python scripts/book_cache_key.py [--check]`` (``--check`` only reports).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"
DOCTREES = ROOT / "_build" / ".doctrees"  # Sphinx's environment: without it every page is re-read
KEY_FILE = ROOT / "_build" / ".microcircuit_cache_key"
TIER_FILE = ROOT / "_build" / ".microcircuit_cache_tier"  # read by scripts/execute_notebooks.py --from-cache
ENV_VARS = ("MICROCIRCUIT_TIER", "MICROCIRCUIT_BACKEND", "MICROCIRCUIT_DTYPE")


def inputs() -> list[Path]:
    """Files whose content the executed chapters depend on, besides their own code."""
    files = sorted((ROOT / "microcircuit").rglob("*.py")) + [ROOT / "microcircuit" / "registry.json"]
    results = ROOT / "data" / "results"
    if results.is_dir():  # what the chapters read: the logs and benchmark files (no locks, no temp files)
        files += sorted(p for p in results.rglob("*.json") if p.is_file() and not p.name.startswith("."))
    return [p for p in files if p.is_file()]


def key() -> str:
    h = hashlib.sha256()
    for path in inputs():
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # removed since it was listed (a run writing beside the build)
            continue
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(content).digest())
    for var in ENV_VARS:
        default = "book" if var == "MICROCIRCUIT_TIER" else ""
        h.update(f"{var}={os.environ.get(var, default).strip().lower()}\0".encode())
    return h.hexdigest()


def _write_tier() -> None:
    """Record beside the key which tier the cache holds (the key itself is a hash)."""
    KEY_FILE.with_name(TIER_FILE.name).write_text(
        (os.environ.get("MICROCIRCUIT_TIER", "").strip().lower() or "book") + "\n")


def main(argv: list[str]) -> int:
    new = key()
    old = KEY_FILE.read_text().strip() if KEY_FILE.is_file() else None
    if new == old:
        print(f"book cache key unchanged ({new[:12]}): keeping the execution cache")
        if "--check" not in argv:
            _write_tier()
        return 0
    if "--check" in argv:
        print(f"book cache key changed ({(old or 'none')[:12]} -> {new[:12]}): the cache is stale")
        return 1
    stale = [p for p in (CACHE, DOCTREES) if p.exists()]
    if stale:
        for path in stale:
            shutil.rmtree(path)
        print(f"library, results or tier changed ({(old or 'none')[:12]} -> {new[:12]}): cleared "
              + ", ".join(str(p.relative_to(ROOT)) for p in stale))
    else:
        print(f"book cache key {new[:12]} (no execution cache yet)")
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    KEY_FILE.write_text(new + "\n")
    _write_tier()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

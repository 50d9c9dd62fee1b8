"""Execute chapter notebooks in place in the ``smoke`` tier, so stored outputs match nbval.

nbval (``make nbval``) re-runs every chapter in the smoke tier and compares the cells tagged
``nbval-check-output`` with the outputs stored in the notebook, so the stored outputs must
come from the smoke tier too. Run this after editing a chapter::

    python scripts/execute_notebooks.py chapters/03_spiking_neuron.ipynb   # one chapter
    python scripts/execute_notebooks.py                                     # chapters/*.ipynb

Widget state is dropped after execution (it would bloat the notebooks; a live kernel recreates it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, timeout: int = 300) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    os.environ["MICROCIRCUIT_TIER"] = "smoke"
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    paths = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        seconds = execute(path.resolve())
        print(f"{path}: executed in the smoke tier in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

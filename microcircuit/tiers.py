"""Run tiers: how much work a chapter does, chosen by one switch.

Every chapter of the book sizes its experiments with :func:`by_tier`, so the same notebook
runs in seconds in CI and at paper scale on a GPU::

    from microcircuit.tiers import by_tier, tier
    n_train = by_tier(smoke=200, book=2000, full=60000)

The tier comes from the environment variable ``MICROCIRCUIT_TIER``:

- ``smoke``: every chapter executes in seconds on the bundled samples (the CI test);
- ``book`` (default): minutes on a laptop CPU (what the published book shows);
- ``full``: paper-scale runs (a GPU and the full datasets).

In a browser tab (Pyodide, JupyterLite: ``sys.platform == "emscripten"``) the default is
``smoke``, sized for a single-threaded WebAssembly kernel; the variable still overrides it.
"""

from __future__ import annotations

import sys

from . import environment
from .environment import TIERS

ENV = environment.TIER
DEFAULT = "book"
BROWSER_DEFAULT = "smoke"  # Pyodide / JupyterLite


def default() -> str:
    """The tier used when ``$MICROCIRCUIT_TIER`` is unset: ``book``, or ``smoke`` in a browser."""
    return BROWSER_DEFAULT if sys.platform == "emscripten" else DEFAULT


def _check(name: str) -> str:
    name = str(name).strip().lower()
    if name not in TIERS:
        raise ValueError(f"unknown run tier {name!r}: set {ENV} to one of {TIERS}")
    return name


def tier() -> str:
    """The active tier: ``$MICROCIRCUIT_TIER`` (``smoke``, ``book`` or ``full``; checked by
    :mod:`microcircuit.environment`), default :func:`default`."""
    return environment.choice(ENV) or default()


def by_tier(smoke, book, full=None, *, tier_name: str | None = None):
    """The value for the active tier (or for ``tier_name``); ``full`` defaults to ``book``.

    >>> by_tier(smoke=1, book=10, full=100, tier_name="smoke")
    1
    """
    name = _check(tier_name) if tier_name is not None else tier()
    if name == "smoke":
        return smoke
    if name == "book" or full is None:
        return book
    return full

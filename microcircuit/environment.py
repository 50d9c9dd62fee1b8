"""The environment variables the library reads, each read and checked here, when it is read.

======================== ===================================== =============================
variable                 values                                unset (or empty)
======================== ===================================== =============================
``MICROCIRCUIT_BACKEND`` ``numpy`` or ``cupy``                 ``numpy``
``MICROCIRCUIT_DTYPE``   ``float32`` or ``float64``            ``float32``
``MICROCIRCUIT_JIT``     on: ``1 yes true on``; off: ``0 no    on (where Numba is installed)
                         false off``
``MICROCIRCUIT_TIER``    ``smoke``, ``book`` or ``full``       ``book`` (``smoke`` in a browser)
``MICROCIRCUIT_DEBUG``   as ``MICROCIRCUIT_JIT``               off
``MICROCIRCUIT_RESULTS`` a folder (created when written)       the bundled ``data/results``
``MICROCIRCUIT_RUNS``    a folder (created when written)       ``runs/``
``MICROCIRCUIT_DATA``    a folder holding the datasets         not searched
``MICROCIRCUIT_CACHE``   a folder (the download cache)         pooch's cache
======================== ===================================== =============================

A value the library cannot use is an :class:`EnvironmentVariableError` (a ``ValueError``) in one
line naming the variable, the value and the choices, e.g. ``MICROCIRCUIT_DTYPE='float16' is not
a dtype of the library: choose float32 or float64, or unset it (float32)``; the command line
prints it as its one-line error. Case and surrounding spaces do not matter; a folder's ``~`` is
expanded. Two more are read and recorded as they are, never acted on: ``OPENBLAS_NUM_THREADS``
(in a run's provenance: results differ in the last bits with it) and ``XDG_CACHE_HOME`` (the
cache's parent when pooch is not installed).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

BACKEND, DTYPE, JIT, TIER, DEBUG = ("MICROCIRCUIT_BACKEND", "MICROCIRCUIT_DTYPE", "MICROCIRCUIT_JIT",
                                    "MICROCIRCUIT_TIER", "MICROCIRCUIT_DEBUG")
RESULTS, RUNS, DATA, CACHE = "MICROCIRCUIT_RESULTS", "MICROCIRCUIT_RUNS", "MICROCIRCUIT_DATA", "MICROCIRCUIT_CACHE"
RECORDED = ("OPENBLAS_NUM_THREADS", "XDG_CACHE_HOME")
"""Read as they are (recorded, or a standard location), never acted on: nothing to check."""

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What sets a child process's threads (OpenBLAS's for NumPy, OpenMP's for torch and Numba, MKL's):
the library sets them for the processes it starts (sweep workers, benchmark runs), never reads them."""

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")
TIERS = ("smoke", "book", "full")
ON, OFF = ("1", "yes", "true", "on"), ("0", "no", "false", "off")

VARIABLES = {  # name: (kind, choices, what it is, said when unset)
    BACKEND: ("choice", BACKENDS, "an array backend", "numpy"),
    DTYPE: ("choice", DTYPES, "a dtype of the library", "float32"),
    TIER: ("choice", TIERS, "a run tier", "book; smoke in a browser"),
    JIT: ("flag", ON + OFF, "a switch", "on"),
    DEBUG: ("flag", ON + OFF, "a switch", "off"),
    RESULTS: ("folder", None, "a folder", "the bundled data/results"),
    RUNS: ("folder", None, "a folder", "runs/"),
    DATA: ("folder", None, "a folder", "not searched"),
    CACHE: ("folder", None, "a folder", "pooch's cache"),
}


class EnvironmentVariableError(ValueError):
    """An environment variable of the library holds a value it cannot use. The message (one line)
    names the variable, the value and the choices."""


def _value(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value is not None and value.strip() else None


def _bad(name: str, value: str, why: str) -> EnvironmentVariableError:
    kind, choices, what, unset = VARIABLES[name]
    if kind == "choice":
        options = f"choose {', '.join(choices[:-1])} or {choices[-1]}"
    elif kind == "flag":
        options = f"choose {'/'.join(ON)} (on) or {'/'.join(OFF)} (off)"
    else:
        options = "set it to a folder"
    return EnvironmentVariableError(f"{name}={value!r} {why}: {options}, or unset it ({unset})")


def _dtype_name(text: str) -> str:
    """``f8``, ``double`` or ``float64`` -> ``float64`` (NumPy's names); anything else unchanged."""
    import numpy as np

    try:
        return np.dtype(text).name
    except TypeError:
        return text


def choice(name: str) -> str | None:
    """The value of a variable with named choices (backend, dtype, tier), lower case; ``None`` when
    unset or empty (the caller's default)."""
    kind, choices, what, _ = VARIABLES[name]
    value = _value(name)
    if value is None:
        return None
    text = value.strip().lower()
    if name == DTYPE:
        text = _dtype_name(text)
    if text not in choices:
        raise _bad(name, value, f"is not {what}")
    return text


def flag(name: str, default: bool) -> bool:
    """A yes/no variable (:data:`ON`, :data:`OFF`); ``default`` when unset or empty."""
    value = _value(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text not in ON + OFF:
        raise _bad(name, value, "is not a switch")
    return text in ON


def folder(name: str) -> Path | None:
    """A folder variable (``~`` expanded); ``None`` when unset or empty. One that names an existing
    file is refused: it cannot be a folder."""
    value = _value(name)
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise _bad(name, value, "names a file, not a folder")
    return path


@contextlib.contextmanager
def temporarily(name: str, value: str):
    """Set ``name`` to ``value`` meanwhile (for the processes started meanwhile, which inherit it),
    then restore it as it was (unset, or its value)."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def recorded(name: str) -> str | None:
    """A variable of :data:`RECORDED`, as it is (``None`` when unset)."""
    if name not in RECORDED:
        raise KeyError(f"{name} is not a recorded variable: read it with choice, flag or folder")
    return os.environ.get(name)


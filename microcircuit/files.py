"""Files: written atomically (every result and checkpoint goes through here), and found
where the package is, installed or in a checkout (bundled samples and results, run folders)."""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

from . import environment


def write_atomic(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A crash, an interrupt or a power cut leaves either the old file or the new one, never a
    mixture or an empty file (the data and the rename are synced to disk; a
    process killed mid-write leaves a temporary ``.NAME.XXXX.tmp``; :func:`remove_temp_files`
    clears them). A failure (disk full, no permission) is an ``OSError`` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename: a power cut leaves old or new, not empty
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename != str(path):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return path


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_temp_files(path) -> list[Path]:
    """Remove what killed :func:`write_atomic` calls left of ``path`` (``.NAME.XXXX.tmp``
    beside it); returns the files removed. Call it only where no other process writes
    ``path`` (for a run: while holding its lock, :func:`microcircuit.locks.lock_run`)."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def check_writable(folder) -> Path:
    """Create ``folder`` if needed and check that files can be written in it (an ``OSError``
    naming it otherwise): before hours of work, not after."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, f"{folder} is a file, not a folder", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write in {folder} ({exc.strerror or exc})", str(folder)) from exc
    return folder


# --------------------------------------------------------------------- where things are
ENV_RESULTS = environment.RESULTS
ENV_RUNS = environment.RUNS
RESOURCES = "resources"
"""The folder of the installed package that holds the repository's ``data/`` (samples, results)."""


def checkout_root() -> Path | None:
    """The repository around the package when it runs from a checkout (``None`` when installed)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "data").is_dir() else None


def resource(*parts: str) -> Path:
    """A bundled file or folder (``resource("samples", "mnist.npz")``).

    Installed, it is package data inside the wheel (``microcircuit/resources/``, found
    through :mod:`importlib.resources`); in a checkout, the repository's ``data/`` folder.
    """
    from importlib.resources import files

    bundled = files(__package__) / RESOURCES
    if bundled.is_dir():
        return Path(str(bundled.joinpath(*parts)))
    root = checkout_root()
    return (root / "data" if root else Path(str(bundled))).joinpath(*parts)


def results_dir() -> Path:
    """Where run logs and benchmarks live: ``$MICROCIRCUIT_RESULTS`` if set, else the bundled
    ``results`` (the repository's ``data/results`` in a checkout); one naming a file is an error."""
    env = environment.folder(ENV_RESULTS)
    return env if env is not None else resource("results")


def runs_dir() -> Path:
    """Where checkpoints live (large, never bundled): ``$MICROCIRCUIT_RUNS``, else ``runs/`` in
    the checkout, else ``runs/`` in the working folder; one naming a file is an error."""
    env = environment.folder(ENV_RUNS)
    if env is not None:
        return env
    root = checkout_root()
    return root / "runs" if root else Path.cwd() / "runs"


def shown(path) -> str:
    """``path`` relative to the checkout or the bundled data when inside them (no machine-specific
    prefixes in the book), else as it is."""
    for base, name in ((checkout_root(), None), (resource(), "data")):
        if base is None:
            continue
        try:
            rel = Path(path).resolve().relative_to(Path(base).resolve())
        except ValueError:
            continue
        return str(Path(name, rel) if name else rel)
    return str(path)

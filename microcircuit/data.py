"""Datasets: MNIST, Fashion-MNIST and CIFAR-10, loaded offline, downloaded with checksums.

Quick use::

    from microcircuit.data import load_dataset, load_sample
    x, y = load_dataset("mnist", "train", validation=5000)      # 55,000 training examples
    xv, yv = load_dataset("mnist", "validation", validation=5000)  # the 5,000 held out
    xs, ys = load_sample("cifar10", "test")                     # bundled sample, always offline

Images come back as float32 in [0, 1], flattened to ``(N, 784)`` / ``(N, 3072)`` or
channels-first ``(N, 1, 28, 28)`` / ``(N, 3, 32, 32)`` with ``flatten=False``; labels as
int32. Arrays are NumPy (host) arrays; the network moves them to the device.

Where the full datasets are looked for, in this order:

1. ``data_dir=`` if given (then only there);
2. the directory named by the environment variable ``MICROCIRCUIT_DATA``, either holding one
   folder per dataset (``mnist/``, ``fashion-mnist/``, ``cifar10/``) or the files directly;
3. the user cache, :func:`cache_dir` (``MICROCIRCUIT_CACHE`` overrides the default
   ``pooch.os_cache("microcircuit")``; without pooch, Linux's ``~/.cache/microcircuit``);
4. a download from the official sources into the cache (``download=True``), each file
   checked against the official archive's SHA-256 by ``pooch``.

Files use the original names and formats: gzipped IDX (``train-images-idx3-ubyte.gz`` ...,
uncompressed IDX is accepted too) for MNIST and Fashion-MNIST; for CIFAR-10 the python
pickle batches, as ``cifar-10-python.tar.gz`` (read without extracting) or an extracted
``cifar-10-batches-py/`` folder.

Checksums. ``registry.json`` (next to this module) records, per dataset, the official URLs
and file SHA-256 (used for downloads) and, per split, a *content checksum* used to verify
any copy, byte-identical to the official archive or not:

    content SHA-256 = SHA-256 of the uint8 pixel bytes in C order, shape (N, 28, 28) for
    MNIST / Fashion-MNIST and (N, 3, 32, 32) for CIFAR-10 (that is, exactly the pixel bytes
    of the original files, in file order), followed by the N labels as one uint8 byte each.

The bundled samples (``data/samples/<name>.npz`` in the repository, package data when
installed) are checked by the same definition.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import hashlib
import io
import json
import numbers
import os
import pickle
import re
import tarfile
import warnings
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import environment
from .files import resource

DATASETS = ("mnist", "fashion-mnist", "cifar10")
"""The datasets, in the order the book and its tables take them."""

LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
"""How the book names each dataset."""

CLASSES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"),
}

SPLITS = ("train", "validation", "test")
ENV_DATA = environment.DATA
ENV_CACHE = environment.CACHE
CIFAR_DIR = "cifar-10-batches-py"
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

_PACKAGE_DIR = Path(__file__).resolve().parent
_REGISTRY_PATH = _PACKAGE_DIR / "registry.json"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the places searched (and were not downloaded)."""


class DatasetCorruptError(ValueError):
    """A dataset file is unreadable, malformed, or its checksum does not match."""


# ----------------------------------------------------------------------------- registry


@lru_cache(maxsize=1)
def _registry() -> dict:
    """The parsed ``registry.json``."""
    with open(_REGISTRY_PATH, encoding="utf-8") as f:
        return json.load(f)


def _spec(name: str) -> dict:
    """The registry entry of dataset ``name``; ValueError for an unknown name."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return _registry()["datasets"][name]


def input_shape(name: str) -> tuple:
    """The shape of one image of dataset ``name`` (channels, height, width), from the registry."""
    return tuple(int(v) for v in _spec(name)["shape"])


def data_checksum(name: str, split: str = "train") -> str:
    """Content SHA-256 of a full split (``"train"`` or ``"test"``) as recorded in the registry."""
    return _spec(name)["splits"][_base_split(split)]["content_sha256"]


def sample_checksum(name: str, split: str = "train") -> str:
    """Content SHA-256 of a split of the bundled sample, as recorded in the registry."""
    return _spec(name)["sample"]["splits"][_base_split(split)]["content_sha256"]


def _base_split(split: str) -> str:
    """The stored split a requested split is cut from (validation comes from train)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return "test" if split == "test" else "train"


# ----------------------------------------------------------------------------- checksums


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """Content checksum of decoded arrays (see the module docstring for the definition)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8))
    h.update(np.ascontiguousarray(labels, dtype=np.uint8))
    return h.hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _corrupt(name: str, paths, problem: str, expected: str | None = None,
             actual: str | None = None, content: bool = False) -> DatasetCorruptError:
    """Build a DatasetCorruptError naming the file(s), the problem, the checksums and a fix.

    Without ``expected`` the official file SHA-256 from the registry is shown (if the file
    is a registered one); without ``actual`` the file's SHA-256 is computed.
    """
    paths = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    lines = [f"{name}: corrupt or wrong dataset file: {', '.join(map(str, paths))}",
             f"  problem: {problem}"]
    if expected is None and len(paths) == 1 and paths[0].is_file():
        expected = _spec(name)["files"].get(paths[0].name, {}).get("sha256")
    if expected is not None:
        if actual is None and len(paths) == 1 and paths[0].is_file():
            actual = file_sha256(paths[0])
        kind = ("content SHA-256 (decoded arrays)", "content SHA-256 (this copy)") if content \
            else ("file SHA-256 (official)", "file SHA-256 (this file)")
        lines += [f"  expected {kind[0]}: {expected}", f"  actual   {kind[1]}: {actual or 'unknown'}"]
    lines.append(f"  fix: delete the file and run `python -m microcircuit data fetch {name}`, "
                 f"or set {ENV_DATA} to a folder with a good copy.")
    return DatasetCorruptError("\n".join(lines))


# ----------------------------------------------------------------------------- readers


def _read_bytes(path: Path, name: str) -> bytes:
    """Whole (decompressed, for ``.gz``) content of a file, as DatasetCorruptError on damage."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except PermissionError:
        raise _denied(name, path) from None
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt(name, path, f"cannot decompress ({type(e).__name__}: {e}); "
                                   "bad or truncated gzip file") from None


def _denied(name: str, path: Path, what: str = "file") -> PermissionError:
    """The error for a dataset file or folder this user may not read (not a damaged one)."""
    return PermissionError(13, f"{path}: permission denied: cannot read this {name} dataset {what}; make it "
                               f"readable (chmod u+r) or set {ENV_DATA} to a readable copy", str(path))


def read_idx(path, magic: int, name: str = "mnist", dims: tuple = ()) -> np.ndarray:
    """Read one IDX file (gzipped if it ends in ``.gz``) as a uint8 array.

    Checks the magic number (2051 images, 2049 labels), the trailing dimensions ``dims``
    (e.g. ``(28, 28)``) and that the data length equals the header's count.
    """
    path = Path(path)
    raw = _read_bytes(path, name)
    if len(raw) < 4:
        raise _corrupt(name, path, f"file too short for an IDX header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise _corrupt(name, path, f"wrong IDX magic number: expected {magic}, found {found}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(shape) != 1 + len(dims) or shape[1:] != tuple(dims):
        expected = "(N" + "".join(f", {d}" for d in dims) + ")"
        raise _corrupt(name, path, f"wrong IDX dimensions: expected {expected}, found {shape}")
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise _corrupt(name, path, f"wrong size: the header announces {shape[0]} items "
                                   f"({size} bytes of data), the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


_UNPICKLE_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # the array-rebuild function; its module moved between NumPy versions
    ("numpy.core.multiarray", "_reconstruct"): np.array(0).__reduce__()[0],
    ("numpy._core.multiarray", "_reconstruct"): np.array(0).__reduce__()[0],
    ("_codecs", "encode"): codecs.encode,  # how Python 3 protocol-2 pickles store bytes
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers and NumPy arrays (no arbitrary code)."""

    def find_class(self, module, name):
        try:
            return _UNPICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _read_cifar_batch(raw: bytes, path: Path, member: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch to ``(images (n, 3, 32, 32) uint8, labels uint8)``."""
    where = f"{path}:{member}" if path.is_file() else str(path / member)
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 -- any unpickling failure means a damaged or foreign file
        raise _corrupt("cifar10", path, f"{member}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if isinstance(d, dict):  # keys are bytes in the original (Python 2) pickles, str if re-pickled
        d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    if not isinstance(d, dict) or "data" not in d or "labels" not in d:
        raise _corrupt("cifar10", path, f"{member}: not a CIFAR-10 batch (no 'data'/'labels')")
    data, labels = np.asarray(d["data"]), np.asarray(d["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise _corrupt("cifar10", path, f"{where}: expected uint8 data of shape (n, 3072), "
                                        f"found {data.dtype} {data.shape}")
    if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
        raise _corrupt("cifar10", path, f"{where}: labels must be a list of integers, found "
                                        f"{labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise _corrupt("cifar10", path, f"{where}: {len(data)} images but {labels.size} labels")
    _check_labels("cifar10", path, labels, f"{member}: ")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def _check_labels(name: str, path, labels: np.ndarray, prefix: str = "") -> None:
    """Raise unless every label is an integer class index of the dataset."""
    n = len(CLASSES[name])
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise _corrupt(name, path, f"{prefix}label out of range: expected 0..{n - 1}, "
                                   f"found {labels.min()}..{labels.max()}")


def read_cifar(path, members) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 batches ``members`` (e.g. ``["test_batch"]``), concatenated in that order,
    from ``cifar-10-python.tar.gz`` (without extracting) or a ``cifar-10-batches-py/`` folder."""
    parts = _read_cifar_batches(path, members)
    return np.concatenate([parts[m][0] for m in members]), np.concatenate([parts[m][1] for m in members])


def _read_cifar_batches(path, members) -> dict:
    """``{member: (images, labels)}`` for the CIFAR-10 batches ``members``, in one pass."""
    path = Path(path)
    raws = {}
    if path.is_dir():
        for m in members:
            if not (path / m).is_file():
                raise _corrupt("cifar10", path, f"missing batch file {m}")
            try:
                raws[m] = (path / m).read_bytes()
            except PermissionError:
                raise _denied("cifar10", path / m) from None
    else:
        try:
            with tarfile.open(path, "r:gz") as tf:
                for info in tf:
                    base = info.name.rsplit("/", 1)[-1]
                    if info.isfile() and base in members and base not in raws:
                        raws[base] = tf.extractfile(info).read()
                        if len(raws) == len(members):
                            break
        except PermissionError:
            raise _denied("cifar10", path) from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise _corrupt("cifar10", path, f"cannot read the tar.gz archive ({type(e).__name__}: "
                                            f"{e}); bad or truncated file") from None
        missing = [m for m in members if m not in raws]
        if missing:
            raise _corrupt("cifar10", path, f"archive lacks the batches {missing}")
    return {m: _read_cifar_batch(raws[m], path, m) for m in members}


# ----------------------------------------------------------------------------- finding files


def cache_dir() -> Path:
    """The download cache: ``$MICROCIRCUIT_CACHE``, else pooch's (``~/.cache/microcircuit`` on Linux, pooch or not)."""
    env = environment.folder(ENV_CACHE)  # one naming a file is an error naming it
    if env is not None:
        return env
    try:
        import pooch
    except ImportError:  # only downloads need pooch: finding files on disk must not
        return Path(environment.recorded("XDG_CACHE_HOME") or "~/.cache").expanduser() / "microcircuit"
    return Path(pooch.os_cache("microcircuit"))


def _idx_files(name: str, folder: Path) -> dict | None:
    """``{registry file name: path}`` if ``folder`` holds all IDX files (``.gz`` or not), else None."""
    found = {}
    for fname in _spec(name)["files"]:
        for candidate in (folder / fname, folder / fname.removesuffix(".gz")):
            if candidate.is_file():
                found[fname] = candidate
                break
        else:
            return None
    return found


def _cifar_files(folder: Path) -> dict | None:
    """``{"archive": path}`` for the CIFAR-10 tar.gz or extracted batches in ``folder``, else None."""
    batches = _spec("cifar10")["splits"]["train"]["members"] + _spec("cifar10")["splits"]["test"]["members"]
    tarball = folder / next(iter(_spec("cifar10")["files"]))
    for d in (folder / CIFAR_DIR, folder):
        if all((d / b).is_file() for b in batches):
            return {"archive": d}
    if tarball.is_file():
        return {"archive": tarball}
    return None


def _search_dirs(name: str, data_dir=None) -> list[tuple[str, Path]]:
    """The ``(origin, folder)`` pairs searched, in order."""
    if data_dir is not None:
        roots = [("data_dir", Path(data_dir).expanduser())]
    else:
        roots = []
        env = environment.folder(ENV_DATA)
        if env is not None:
            roots.append(("env", env))
        roots.append(("cache", cache_dir()))
    out = []
    for origin, root in roots:
        out += [(origin, root / name)] + ([(origin, root)] if origin != "cache" else [])
    return out


def find_dataset(name: str, data_dir=None) -> dict:
    """Where the full dataset ``name`` is.

    Returns ``{"name", "found": bool, "where": "data_dir" | "env" | "cache" | None,
    "folder": str | None, "files": {key: path}, "searched": [folders]}``. For MNIST and
    Fashion-MNIST the keys are the registry file names; for CIFAR-10 it is ``"archive"``
    (the tar.gz or the batches folder).
    """
    searched = []
    for origin, folder in _search_dirs(name, data_dir):
        searched.append(str(folder))
        if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
            raise _denied(name, folder, "folder")
        files = _cifar_files(folder) if name == "cifar10" else _idx_files(name, folder)
        if files:
            return {"name": name, "found": True, "where": origin, "folder": str(folder),
                    "files": {k: str(v) for k, v in files.items()}, "searched": searched}
    return {"name": name, "found": False, "where": None, "folder": None, "files": {},
            "searched": searched}


def _not_found(name: str, searched, extra: str = "") -> DatasetNotFoundError:
    """The missing-data error, naming the three ways to provide the files."""
    exc = DatasetNotFoundError(not_found_message(name, searched, extra))
    exc.dataset, exc.searched, exc.extra = name, list(searched), extra
    return exc


def not_found_message(name: str, searched, extra: str = "", command_line: bool = False) -> str:
    """What :class:`DatasetNotFoundError` says: where the files were looked for and the three
    ways to provide them, in Python's terms or (``command_line``) the command line's."""
    files = ", ".join(_spec(name)["files"])
    download = ("with internet access, this command" if command_line else
                f"load_dataset({name!r}, download=True) with internet access")
    sample = "--sample" if command_line else 'source="sample"'
    return (
        f"{name}: dataset files not found ({files}).\n"
        f"  searched: {', '.join(searched) or '(nowhere)'}\n" + (f"  {extra}\n" if extra else "")
        + "  Provide them in one of three ways:\n"
        f"    1. download: {download} fetches them from the official source, checked by SHA-256;\n"
        f"    2. environment variable: set {ENV_DATA}=/path/to/data, a folder holding "
        f"{name}/ with the original files;\n"
        f"    3. command: `python -m microcircuit data fetch {name}` downloads them into the "
        f"cache ({cache_dir()}).\n"
        f"  For a quick offline run use the bundled sample instead: {sample}."
    )


# ----------------------------------------------------------------------------- downloading


def _downloader(progress: bool):
    """The pooch HTTP(S) downloader, with a progress bar and a 60 s timeout; tests patch this."""
    import pooch
    return pooch.HTTPDownloader(progressbar=progress, timeout=60)


def fetch(name: str, progress: bool = True) -> dict:
    """Download dataset ``name`` into ``cache_dir()/<name>/``; returns ``{file name: path}``.

    Every file is checked against the official archive's SHA-256; files already cached with
    that checksum are not downloaded again. ``pooch`` downloads into a temporary file and
    renames it only after the checksum holds, so a failed or wrong download never replaces
    a file already in the cache. Mirrors are tried in order.
    """
    import pooch

    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fname, entry in _spec(name)["files"].items():
        errors = []
        for url in entry["urls"]:
            try:
                paths[fname] = pooch.retrieve(url, known_hash=f"sha256:{entry['sha256']}",
                                              fname=fname, path=folder,
                                              downloader=_downloader(progress))
                break
            except ValueError as e:  # pooch: hash of the download does not match
                got = re.search(r"got ([0-9a-f]{64})", str(e))
                errors.append(("mismatch", url, got.group(1) if got else None, e))
            except Exception as e:  # noqa: BLE001 -- network, HTTP or file-system error
                errors.append(("failed", url, None, e))
        else:
            mismatch = [err for err in errors if err[0] == "mismatch"]
            if mismatch:
                _, url, got, _e = mismatch[0]
                raise _corrupt(name, folder / fname, f"the download from {url} does not match "
                               "the official checksum (the cached file, if any, was kept)",
                               expected=entry["sha256"], actual=got)
            full = [e for *_, e in errors if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)]
            if full:  # the disk, not the network: say so, and where the files go
                raise OSError(full[0].errno, f"{name}: no space left to download {fname} into {folder} "
                              f"({full[0].strerror or full[0]}): free some space there, or set {ENV_CACHE} to a "
                              f"folder on a disk with room and run the command again")
            tried = "; ".join(f"{url}: {type(e).__name__}: {e}" for _, url, _, e in errors)
            raise _not_found(name, [str(folder)], f"download of {fname} failed ({tried})")
    return paths


# ----------------------------------------------------------------------------- decoding


def read_full(name: str, splits, found: dict) -> dict:
    """Decode stored splits (train/test) of a found dataset (CIFAR-10 in one pass over the
    archive): ``{split: (images uint8 (N, C, H, W), labels uint8, [files])}``."""
    if name != "cifar10":
        return {split: _read_idx_split(name, split, found) for split in splits}
    path = Path(found["files"]["archive"])
    members = {split: _spec(name)["splits"][split]["members"] for split in splits}
    batches = _read_cifar_batches(path, [m for split in splits for m in members[split]])
    return {split: (np.concatenate([batches[m][0] for m in members[split]]),
                    np.concatenate([batches[m][1] for m in members[split]]), [path])
            for split in splits}


def _read_idx_split(name: str, split: str, found: dict):
    """Decode one IDX split: (images uint8 (N, 1, 28, 28), labels uint8, [files])."""
    s = _spec(name)["splits"][split]
    img, lab = Path(found["files"][s["images"]]), Path(found["files"][s["labels"]])
    x = read_idx(img, IDX_IMAGES_MAGIC, name, (28, 28))
    y = read_idx(lab, IDX_LABELS_MAGIC, name)
    if len(x) != len(y):
        raise _corrupt(name, [img, lab], f"{len(x)} images but {len(y)} labels")
    _check_labels(name, lab, y)
    return x[:, None], y, [img, lab]


def _verify_content(name, split, x, y, files, expected_count, expected_sha) -> str:
    """Check count and content checksum of decoded arrays; returns the actual checksum."""
    actual = content_sha256(x, y)
    if len(y) != expected_count:
        problem = f"wrong number of {split} examples: expected {expected_count}, found {len(y)}"
    elif actual != expected_sha:
        problem = f"the decoded {split} images and labels differ from the registered ones"
    else:
        return actual
    raise _corrupt(name, files, problem, expected=expected_sha, actual=actual, content=True)


def _load_full_uint8(name, split, data_dir, download, verify):
    """Find (or download), decode and verify a full split; uint8 images and labels."""
    found = find_dataset(name, data_dir)
    if not found["found"]:
        if not download or data_dir is not None:
            raise _not_found(name, found["searched"])
        fetch(name, progress=True)
        found = find_dataset(name)
        if not found["found"]:
            raise _not_found(name, found["searched"])
    x, y, files = read_full(name, [split], found)[split]
    if verify:
        s = _spec(name)["splits"][split]
        _verify_content(name, split, x, y, files, s["count"], s["content_sha256"])
    return x, y


def sample_path(name: str | None = None) -> Path:
    """The folder of the bundled samples, or one sample file: package data of the installed
    library, ``data/samples/`` in a checkout (:func:`microcircuit.files.resource`)."""
    folder = resource("samples")
    return folder if name is None else folder / _spec(name)["sample"]["file"]


def _load_sample_uint8(name: str, split: str, verify: bool = True):
    """Read and verify one split of the bundled sample."""
    path = sample_path(name)
    if not path.is_file():
        raise DatasetNotFoundError(f"{name}: bundled sample {path} is missing; rebuild it with "
                                   "`python scripts/make_samples.py` (needs the full datasets)")
    try:
        with np.load(path) as z:
            x, y = z[f"x_{split}"], z[f"y_{split}"]
    except Exception as e:  # noqa: BLE001 -- bad zip, missing key, bad array header
        raise _corrupt(name, path, f"cannot read the sample ({type(e).__name__}: {e})",
                       expected=_spec(name)["sample"]["sha256"]) from None
    x = x.reshape(len(x), -1, *x.shape[-2:])
    if verify:
        s = _spec(name)["sample"]["splits"][split]
        _verify_content(name, f"sample {split}", x, y, [path], s["count"], s["content_sha256"])
    return x, y


# ----------------------------------------------------------------------------- public loaders


def validation_indices(labels, validation, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded hold-out: ``(remainder indices, validation indices)``, both sorted.

    ``validation`` is a count (int, or a whole float >= 1 such as 5000.0) or a fraction in
    (0, 1) (float). Each class contributes
    in proportion to its frequency (largest-remainder rounding so the total is exact).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise TypeError(f"validation must be an int count or a float fraction, not {validation!r}")
    if isinstance(validation, float) and validation >= 1 and validation.is_integer():
        validation = int(validation)  # e.g. 5000.0 from a float command-line option: a count
    if isinstance(validation, numbers.Integral):
        k = int(validation)
        if not 0 <= k < n:
            raise ValueError(f"validation={k} must be between 0 and {n - 1} (the training set size)")
    else:
        if not 0.0 < validation < 1.0:
            raise ValueError(f"validation={validation} as a fraction must lie in (0, 1)")
        k = int(validation * n + 0.5)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * k / n
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[: k - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take)]
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, int)
    keep = np.ones(n, bool)
    keep[held] = False
    return np.flatnonzero(keep), held


def _finish(x, y, split, validation, seed, flatten):
    """Cut the validation split if asked, then convert to float32 [0, 1] / int32 (32-bit safe:
    Pyodide's NumPy counts and indexes with int32, and refuses to cast int64 down)."""
    if split == "validation" and not validation:
        raise ValueError('split="validation" needs validation=<count or fraction> '
                         "to say how much of the training set to hold out")
    if split != "test" and validation:
        rest, held = validation_indices(y, validation, seed)
        idx = held if split == "validation" else rest
        x, y = x[idx], y[idx]
    x = x.reshape(len(x), -1) if flatten else x
    out = x.astype(np.float32)
    out /= np.float32(255)
    return out, y.astype(np.int32)


def load_dataset(name: str, split: str = "train", *, flatten: bool = True, validation=0,
                 source: str = "auto", seed: int = 0, data_dir=None, download: bool = True,
                 verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset split as ``(x float32 in [0, 1], y int32)`` NumPy arrays.

    Parameters
    ----------
    name : ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
    split : ``"train"``, ``"validation"`` or ``"test"``. With ``validation=k`` a stratified,
    seeded hold-out is cut from the *training* set only: ``"train"`` returns the
    remainder, ``"validation"`` the held-out part; the test set is never touched.
    flatten : ``(N, 784)`` / ``(N, 3072)`` if true, else ``(N, 1, 28, 28)`` / ``(N, 3, 32, 32)``.
    validation : int count or float fraction of the training set to hold out (0: none).
    source : ``"full"`` / ``"auto"`` (the full dataset, error if it cannot be found or
    downloaded) or ``"sample"`` (the bundled sample). Use :func:`load_full_or_sample`
    for an explicit fallback.
    seed : seed of the validation hold-out.
    data_dir : look only in this folder instead of ``MICROCIRCUIT_DATA`` and the cache.
    download : download into the cache if not found (never when ``data_dir`` is given).
    verify : check example counts and the content checksum against the registry.

    Raises DatasetNotFoundError (files missing) or DatasetCorruptError (bad files).
    """
    base = _base_split(split)
    if source == "sample":
        x, y = _load_sample_uint8(name, base, verify)
    elif source in ("auto", "full"):
        _spec(name)
        x, y = _load_full_uint8(name, base, data_dir, download, verify)
    else:
        raise ValueError(f'source must be "auto", "full" or "sample", not {source!r}')
    return _finish(x, y, split, validation, seed, flatten)


def load_sample(name: str, split: str = "train", flatten: bool = True, *, validation=0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Load a split of the bundled sample (always offline); same conventions as load_dataset."""
    return load_dataset(name, split, flatten=flatten, validation=validation, seed=seed,
                        source="sample")


def load_full_or_sample(name: str, split: str = "train", **kwargs):
    """The full dataset if present locally, else the bundled sample with a warning.

    Returns ``(x, y, source)`` with ``source`` ``"full"`` or ``"sample"``. Never downloads
    unless ``download=True`` is passed. Meant for chapters that must build offline.
    """
    kwargs.setdefault("download", False)
    kwargs.pop("source", None)
    try:
        return (*load_dataset(name, split, source="full", **kwargs), "full")
    except DatasetNotFoundError:
        warnings.warn(f"{name}: full dataset not found (set {ENV_DATA}); using the bundled "
                      "sample", stacklevel=2)
        kwargs = {k: v for k, v in kwargs.items() if k in ("flatten", "validation", "seed", "verify")}
        return (*load_dataset(name, split, source="sample", **kwargs), "sample")


# ----------------------------------------------------------------------------- verification


def verify_dataset(name: str, data_dir=None) -> dict:
    """Check the locally found copy of ``name`` file by file and split by split.

    Returns ``{"name", "found", "where", "folder", "ok": bool | None, "files": {file:
    {"path", "sha256", "official_sha256", "official": bool}}, "splits": {split: {"ok",
    "count", "expected_count", "sha256", "expected_sha256", "error"}}}``. ``official`` says
    whether the file is byte-identical to the official archive, which is not required:
    ``ok`` means every split decodes to the registered content.
    """
    spec = _spec(name)
    found = find_dataset(name, data_dir)
    report = {k: found[k] for k in ("name", "found", "where", "folder")}
    report.update(ok=None, files={}, splits={})
    if not found["found"]:
        return report
    for key, path in found["files"].items():
        fname = Path(path).name if key == "archive" else key
        official = spec["files"].get(fname, {}).get("sha256")
        try:
            sha = file_sha256(path) if Path(path).is_file() else None
        except PermissionError:  # reported with its split below; the other files are still checked
            sha = None
        report["files"][fname] = {"path": path, "sha256": sha, "official_sha256": official,
                                  "official": sha is not None and sha == official}
    errors = {}
    try:
        decoded = read_full(name, ["train", "test"], found)
    except (DatasetCorruptError, PermissionError):
        decoded = {}  # find which split is damaged: the other one may be good
        for split in ("train", "test"):
            try:
                decoded.update(read_full(name, [split], found))
            except (DatasetCorruptError, PermissionError) as e:
                errors[split] = str(e)
    for split in ("train", "test"):
        s = spec["splits"][split]
        entry = {"ok": False, "count": None, "expected_count": s["count"], "sha256": None,
                 "expected_sha256": s["content_sha256"], "error": errors.get(split)}
        if split in decoded:
            x, y, _ = decoded[split]
            entry.update(count=len(y), sha256=content_sha256(x, y))
            entry["ok"] = entry["count"] == s["count"] and entry["sha256"] == s["content_sha256"]
        report["splits"][split] = entry
    report["ok"] = all(e["ok"] for e in report["splits"].values())
    return report

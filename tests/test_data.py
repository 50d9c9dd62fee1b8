"""Tests of microcircuit.data: readers, checks, errors, splits, downloads, samples, CLI.

Everything but the last section runs on tiny synthetic files in tmp_path and on the bundled
samples, offline. The full-dataset tests run when MICROCIRCUIT_DATA holds the datasets.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from microcircuit import data
from microcircuit.cli import cli_info
from microcircuit.data import DatasetCorruptError, DatasetNotFoundError

ROOT = Path(__file__).resolve().parent.parent
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No real data directory or cache unless a test sets one; no network downloads."""
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))

    def no_network(progress):
        def fail(url, output, pooch):
            raise ConnectionError(f"network disabled in tests ({url})")
        return fail

    monkeypatch.setattr(data, "_downloader", no_network)


# ----------------------------------------------------------------------------- builders


def idx_bytes(arr: np.ndarray, magic: int, count: int | None = None) -> bytes:
    """An IDX file for a uint8 array; ``count`` overrides the header's first dimension."""
    shape = (arr.shape[0] if count is None else count,) + arr.shape[1:]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + np.ascontiguousarray(arr, np.uint8).tobytes()


def synthetic(n=30, shape=(28, 28), seed=0):
    """Random uint8 images and labels 0..9 with every class present."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_mnist(folder: Path, n_train=30, n_test=20) -> dict:
    """Write the four gzipped IDX files; returns {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x, y = synthetic(n, seed=seed)
        img, lab = MNIST_FILES[split]
        (folder / img).write_bytes(gzip.compress(idx_bytes(x, 2051)))
        (folder / lab).write_bytes(gzip.compress(idx_bytes(y, 2049)))
        out[split] = (x, y)
    return out


def cifar_batch(x: np.ndarray, y, str_keys=False) -> bytes:
    """A pickled CIFAR-10 batch dict like the original (bytes keys, protocol 2), or as a
    Python 3 user would re-pickle it (str keys, default protocol)."""
    d = {b"batch_label": b"synthetic", b"labels": list(map(int, y)), b"data": x.reshape(len(x), -1)}
    if str_keys:
        return pickle.dumps({k.decode(): v for k, v in d.items()})
    return pickle.dumps(d, protocol=2)


def write_cifar(folder: Path, per_batch=10, as_tar=True, members=None) -> dict:
    """Write CIFAR-10 batches (tar.gz in shuffled member order, or extracted folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = members or {m: cifar_batch(*synthetic(per_batch, (3, 32, 32), seed=i))
                          for i, m in enumerate(names)}
    if as_tar:
        with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tf:
            for m in reversed(names):  # member order must not matter
                info = tarfile.TarInfo(f"cifar-10-batches-py/{m}")
                info.size = len(batches[m])
                tf.addfile(info, io.BytesIO(batches[m]))
    else:
        (folder / "cifar-10-batches-py").mkdir(exist_ok=True)
        for m, raw in batches.items():
            (folder / "cifar-10-batches-py" / m).write_bytes(raw)
    expect = {}
    if members is not None:  # hand-made (possibly bad) batches: no expectations
        return expect
    for split, ms in (("train", names[:5]), ("test", names[5:])):
        parts = [pickle.loads(batches[m], encoding="bytes") for m in ms]
        expect[split] = (np.concatenate([p[b"data"] for p in parts]).reshape(-1, 3, 32, 32),
                         np.concatenate([p[b"labels"] for p in parts]).astype(np.uint8))
    return expect


def patched_registry(monkeypatch) -> dict:
    """A deep copy of the registry that the module uses for the rest of the test."""
    reg = copy.deepcopy(data._registry())
    monkeypatch.setattr(data, "_registry", lambda: reg)
    return reg


def register(reg, name, expect):
    """Record the synthetic splits' counts and content checksums in a patched registry."""
    for split, (x, y) in expect.items():
        reg["datasets"][name]["splits"][split].update(count=len(y), content_sha256=data.content_sha256(x, y))


# ----------------------------------------------------------------------------- readers


def test_idx_reader_loads_exactly(tmp_path):
    expect = write_mnist(tmp_path / "mnist")
    for split in ("train", "test"):
        x8, y8 = expect[split]
        x, y = data.load_dataset("mnist", split, data_dir=tmp_path, download=False, verify=False)
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (len(y8), 784)
        np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), x8.reshape(len(x8), -1))
        np.testing.assert_array_equal(y, y8)
        assert x.min() >= 0 and x.max() <= 1
    x, _ = data.load_dataset("mnist", "test", flatten=False, data_dir=tmp_path, download=False, verify=False)
    assert x.shape == (20, 1, 28, 28)


def test_idx_uncompressed_and_flat_folder_accepted(tmp_path, monkeypatch):
    expect = write_mnist(tmp_path / "gz")
    for f in (tmp_path / "gz").iterdir():  # plain IDX files straight in MICROCIRCUIT_DATA
        (tmp_path / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path))
    assert data.find_dataset("mnist")["where"] == "env"
    _, y = data.load_dataset("mnist", "train", download=False, verify=False)
    np.testing.assert_array_equal(y, expect["train"][1])


def test_data_on_disk_is_found_without_pooch(tmp_path, monkeypatch):
    """pooch only downloads: with it missing (and no MICROCIRCUIT_CACHE), files in
    MICROCIRCUIT_DATA still load, and the cache falls back to $XDG_CACHE_HOME/microcircuit."""
    expect = write_mnist(tmp_path / "mnist")
    monkeypatch.setitem(sys.modules, "pooch", None)  # import pooch -> ImportError
    monkeypatch.delenv(data.ENV_CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path))
    assert data.cache_dir() == tmp_path / "xdg" / "microcircuit"
    assert data.find_dataset("mnist")["where"] == "env"
    _, y = data.load_dataset("mnist", "test", download=False, verify=False)
    np.testing.assert_array_equal(y, expect["test"][1])


def test_verify_passes_with_matching_registry(tmp_path, monkeypatch):
    expect = write_mnist(tmp_path / "mnist")
    register(patched_registry(monkeypatch), "mnist", expect)
    _, y = data.load_dataset("mnist", "train", data_dir=tmp_path, download=False)
    assert len(y) == 30
    rep = data.verify_dataset("mnist", data_dir=tmp_path)
    assert rep["ok"] and not any(f["official"] for f in rep["files"].values())


def assert_names_file_and_checksums(err, path: Path, expected: str):
    """The message names the file, the expected and the actual checksum."""
    msg = str(err.value)
    assert path.name in msg
    assert expected in msg
    assert data.file_sha256(path) in msg


def test_bad_magic(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(30, np.uint8), 2051)))
    with pytest.raises(DatasetCorruptError, match="magic number: expected 2049, found 2051") as err:
        data.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert_names_file_and_checksums(err, path, data._spec("mnist")["files"][path.name]["sha256"])


@pytest.mark.parametrize("damage", ["truncated", "not-gzip"])
def test_bad_gzip(tmp_path, damage):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"this is not gzip" * 10)
    with pytest.raises(DatasetCorruptError, match="gzip") as err:
        data.load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    assert_names_file_and_checksums(err, path, data._spec("mnist")["files"][path.name]["sha256"])


def test_wrong_counts(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(synthetic(29)[0], 2051, count=30)))  # truncated data
    with pytest.raises(DatasetCorruptError, match="announces 30 items") as err:
        data.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert_names_file_and_checksums(err, path, data._spec("mnist")["files"][path.name]["sha256"])
    path.write_bytes(gzip.compress(idx_bytes(synthetic(29)[0], 2051)))  # consistent, 29 vs 30 labels
    with pytest.raises(DatasetCorruptError, match="29 images but 30 labels"):
        data.load_dataset("mnist", data_dir=tmp_path, download=False)


def test_wrong_dimensions(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(synthetic(30, (27, 28))[0], 2051)))
    with pytest.raises(DatasetCorruptError, match=r"expected \(N, 28, 28\), found \(30, 27, 28\)"):
        data.load_dataset("mnist", data_dir=tmp_path, download=False)


def test_label_out_of_range(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.full(30, 10, np.uint8), 2049)))
    with pytest.raises(DatasetCorruptError, match="label out of range: expected 0..9, found 10..10") as err:
        data.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert path.name in str(err.value)


def test_content_checksum_mismatch(tmp_path, monkeypatch):
    expect = write_mnist(tmp_path / "mnist")
    reg = patched_registry(monkeypatch)
    register(reg, "mnist", expect)
    reg["datasets"]["mnist"]["splits"]["test"]["content_sha256"] = "0" * 64
    with pytest.raises(DatasetCorruptError, match="differ from the registered") as err:
        data.load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "0" * 64 in msg
    assert data.content_sha256(*expect["test"]) in msg


def test_real_registry_rejects_synthetic_files(tmp_path):
    expect = write_mnist(tmp_path / "mnist")
    with pytest.raises(DatasetCorruptError, match="expected 60000, found 30") as err:
        data.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert data.data_checksum("mnist", "train") in str(err.value)
    assert data.content_sha256(*expect["train"]) in str(err.value)


@pytest.mark.parametrize("as_tar", [True, False])
def test_cifar_reader_loads_exactly(tmp_path, as_tar):
    expect = write_cifar(tmp_path / "cifar10", as_tar=as_tar)
    assert data.find_dataset("cifar10", tmp_path)["found"]
    for split in ("train", "test"):
        x, y = data.load_dataset("cifar10", split, flatten=False, data_dir=tmp_path,
                                 download=False, verify=False)
        assert x.shape == (len(expect[split][1]), 3, 32, 32) and x.dtype == np.float32
        np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), expect[split][0])
        np.testing.assert_array_equal(y, expect[split][1])
    assert data.load_dataset("cifar10", "test", data_dir=tmp_path, download=False,
                             verify=False)[0].shape == (10, 3072)


def test_cifar_str_keys_accepted(tmp_path):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    members = {m: cifar_batch(*synthetic(10, (3, 32, 32), seed=i), str_keys=True) for i, m in enumerate(names)}
    write_cifar(tmp_path / "cifar10", members=members)
    assert len(data.load_dataset("cifar10", "train", data_dir=tmp_path, download=False, verify=False)[1]) == 50


def test_cifar_truncated_archive(tmp_path):
    write_cifar(tmp_path / "cifar10")
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetCorruptError, match="truncated") as err:
        data.load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    assert_names_file_and_checksums(err, path, data._spec("cifar10")["files"][path.name]["sha256"])


def test_cifar_bad_batches(tmp_path):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    good = {m: cifar_batch(*synthetic(10, (3, 32, 32), seed=i)) for i, m in enumerate(names)}
    x, y = synthetic(10, (3, 32, 32))
    cases = {
        "label out of range": cifar_batch(x, y + 5),
        "10 images but 9 labels": cifar_batch(x, y[:9]),
        r"shape \(n, 3072\)": pickle.dumps({b"data": x.reshape(10, -1)[:, :3000], b"labels": list(map(int, y))}),
        "refusing to load posix.system|refusing to load nt.system": pickle.dumps(os.system),
    }
    for problem, raw in cases.items():
        write_cifar(tmp_path / "cifar10", members={**good, "test_batch": raw})
        with pytest.raises(DatasetCorruptError, match=problem) as err:
            data.load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
        assert "cifar-10-python.tar.gz" in str(err.value)


# ----------------------------------------------------------------------------- finding, missing


def test_missing_data_message(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path / "empty"))
    for name in data.DATASETS:
        assert not data.find_dataset(name)["found"]
        with pytest.raises(DatasetNotFoundError) as err:
            data.load_dataset(name, download=False)
        msg = str(err.value)
        assert isinstance(err.value, FileNotFoundError)
        for needle in ("MICROCIRCUIT_DATA", f"data fetch {name}", "download", str(tmp_path / "empty")):
            assert needle in msg


def test_failed_download_raises_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="network disabled") as err:
        data.load_dataset("mnist")  # download=True, but the network is patched away
    assert "MICROCIRCUIT_DATA" in str(err.value)


def test_search_order_env_then_cache(tmp_path, monkeypatch):
    write_mnist(tmp_path / "cache" / "mnist")
    assert data.find_dataset("mnist")["where"] == "cache"
    write_mnist(tmp_path / "env" / "mnist")
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path / "env"))
    found = data.find_dataset("mnist")
    assert found["where"] == "env" and found["folder"] == str(tmp_path / "env" / "mnist")


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_dataset("mnist", "dev", source="sample")
    with pytest.raises(ValueError, match="source"):
        data.load_dataset("mnist", source="web")


# ----------------------------------------------------------------------------- validation split


def test_validation_split_stratified_disjoint_deterministic():
    xt, yt = data.load_sample("mnist", "train")
    xr, yr = data.load_sample("mnist", "train", validation=200, seed=3)
    xv, yv = data.load_sample("mnist", "validation", validation=200, seed=3)
    assert len(yv) == 200 and len(yr) == len(yt) - 200
    np.testing.assert_array_equal(np.bincount(yv, minlength=10), np.bincount(yt, minlength=10) * 200 // len(yt))
    rest, held = data.validation_indices(yt, 200, seed=3)
    assert not set(rest) & set(held) and len(set(rest) | set(held)) == len(yt)
    np.testing.assert_array_equal(xv, xt[held])  # the validation rows are training rows
    np.testing.assert_array_equal(xr, xt[rest])
    again = data.load_sample("mnist", "validation", validation=200, seed=3)[0]
    np.testing.assert_array_equal(again, xv)
    other = data.validation_indices(yt, 200, seed=4)[1]
    assert not np.array_equal(other, held)
    np.testing.assert_array_equal(data.validation_indices(yt, 0.1, seed=3)[1], held)


def test_validation_never_touches_test():
    xs, ys = data.load_sample("cifar10", "test")
    xs2, ys2 = data.load_sample("cifar10", "test", validation=0.2)
    np.testing.assert_array_equal(xs, xs2)
    np.testing.assert_array_equal(ys, ys2)
    xv, _ = data.load_sample("cifar10", "validation", validation=0.2)
    test_rows = {r.tobytes() for r in xs}
    assert not any(r.tobytes() in test_rows for r in xv)


def test_validation_uneven_classes_and_errors():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    _, held = data.validation_indices(labels, 10)
    np.testing.assert_array_equal(np.bincount(labels[held]), [5, 3, 2])
    _, held = data.validation_indices(labels, 7)
    assert len(held) == 7
    with pytest.raises(ValueError, match="validation="):
        data.load_sample("mnist", "validation")
    np.testing.assert_array_equal(data.validation_indices(labels, 10.0)[1], data.validation_indices(labels, 10)[1])
    with pytest.raises(ValueError):
        data.validation_indices(labels, 1.5)
    with pytest.raises(ValueError):
        data.validation_indices(labels, 100)
    with pytest.raises(TypeError):
        data.validation_indices(labels, True)


# ----------------------------------------------------------------------------- downloads


def fake_file_registry(monkeypatch, good: bytes) -> dict:
    """Registry where mnist has one small file with two mirror URLs."""
    import hashlib

    reg = patched_registry(monkeypatch)
    reg["datasets"]["mnist"]["files"] = {"train-labels-idx1-ubyte.gz": {
        "urls": ["https://mirror-a.invalid/f.gz", "https://mirror-b.invalid/f.gz"],
        "sha256": hashlib.sha256(good).hexdigest()}}
    return reg


def serve(monkeypatch, answers: dict):
    """Patch the downloader: URL -> bytes written, or (bytes, exception) for a partial download."""
    def downloader(progress):
        def get(url, output, pooch):
            answer = answers[url]
            body, exc = answer if isinstance(answer, tuple) else (answer, None)
            Path(output).write_bytes(body)
            if exc:
                raise exc
        return get
    monkeypatch.setattr(data, "_downloader", downloader)


def test_fetch_downloads_with_mirror_fallback(tmp_path, monkeypatch):
    good = gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8), 2049))
    fake_file_registry(monkeypatch, good)
    serve(monkeypatch, {"https://mirror-a.invalid/f.gz": (b"", ConnectionError("down")),
                        "https://mirror-b.invalid/f.gz": good})
    paths = data.fetch("mnist", progress=False)
    path = Path(paths["train-labels-idx1-ubyte.gz"])
    assert path.parent == tmp_path / "cache" / "mnist" and path.read_bytes() == good


def test_bad_download_never_replaces_cached_file(tmp_path, monkeypatch):
    old = gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8), 2049))
    new = gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8)[::-1].copy(), 2049))
    reg = fake_file_registry(monkeypatch, new)  # registry wants a file the cache does not have
    cached = tmp_path / "cache" / "mnist" / "train-labels-idx1-ubyte.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(old)
    # 1. partial downloads: half the file, then the connection drops
    serve(monkeypatch, {u: (new[:20], ConnectionError("reset")) for u in
                        ("https://mirror-a.invalid/f.gz", "https://mirror-b.invalid/f.gz")})
    with pytest.raises(DatasetNotFoundError, match="reset"):
        data.fetch("mnist", progress=False)
    assert cached.read_bytes() == old
    # 2. complete downloads with the wrong content
    wrong = b"wrong file" * 100
    serve(monkeypatch, {"https://mirror-a.invalid/f.gz": wrong, "https://mirror-b.invalid/f.gz": wrong})
    with pytest.raises(DatasetCorruptError) as err:
        data.fetch("mnist", progress=False)
    msg = str(err.value)
    import hashlib
    assert cached.name in msg and reg["datasets"]["mnist"]["files"][cached.name]["sha256"] in msg
    assert hashlib.sha256(wrong).hexdigest() in msg
    assert cached.read_bytes() == old
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]  # no temp files left


# ----------------------------------------------------------------------------- samples


@pytest.mark.parametrize("name", data.DATASETS)
def test_samples(name):
    dim, shape = (784, (1, 28, 28)) if name != "cifar10" else (3072, (3, 32, 32))
    spec = data._spec(name)["sample"]
    for split in ("train", "test"):
        x, y = data.load_sample(name, split)
        n = spec["splits"][split]["count"]
        assert x.shape == (n, dim) and x.dtype == np.float32 and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
        x8 = np.rint(x * 255).astype(np.uint8).reshape(n, *shape)
        assert data.content_sha256(x8, y) == data.sample_checksum(name, split)
        assert data.load_sample(name, split, flatten=False)[0].shape == (n, *shape)
    assert data.file_sha256(data.sample_path(name)) == spec["sha256"]


def test_sample_sums_file_and_size():
    sums = (data.sample_path() / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        sha, fname = line.split()
        assert data.file_sha256(data.sample_path() / fname) == sha
    assert sum(data.sample_path(n).stat().st_size for n in data.DATASETS) < 6.5e6


def test_corrupt_sample_detected(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "sample_path", lambda name=None: tmp_path / f"{name}.npz")
    with np.load(ROOT / "data" / "samples" / "mnist.npz") as z:
        arrays = dict(z)
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] = (arrays["y_test"][0] + 1) % 10
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    data.load_sample("mnist", "train")  # untouched split still fine
    with pytest.raises(DatasetCorruptError, match="content SHA-256") as err:
        data.load_sample("mnist", "test")
    assert "mnist.npz" in str(err.value) and data.sample_checksum("mnist", "test") in str(err.value)
    (tmp_path / "mnist.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetCorruptError, match="cannot read the sample"):
        data.load_sample("mnist", "test")


def test_full_or_sample_falls_back_with_warning():
    with pytest.warns(UserWarning, match="bundled sample"):
        x, _, source = data.load_full_or_sample("fashion-mnist", "test", flatten=False)
    assert source == "sample" and x.shape == (500, 1, 28, 28)


def test_registry_consistency():
    for name in data.DATASETS:
        spec = data._spec(name)
        assert len(data.CLASSES[name]) == 10
        for entry in spec["files"].values():
            assert len(entry["sha256"]) == 64 and all(u.startswith("http") for u in entry["urls"])
        for split in ("train", "test"):
            assert len(data.data_checksum(name, split)) == 64
        assert data.data_checksum(name, "validation") == data.data_checksum(name, "train")


# ----------------------------------------------------------------------------- command line


def test_cli_info_reports_location_and_checksums(tmp_path, monkeypatch):
    write_mnist(tmp_path / "mnist")
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path))
    lines = []
    status = cli_info(out=lines.append)
    text = "\n".join(lines)
    assert status == 1  # synthetic mnist does not match the registry
    assert f"found in env: {tmp_path / 'mnist'}" in text and "train MISMATCH" in text
    assert "cifar10        not found" in text and "data fetch cifar10" in text
    assert text.count("ok") >= 3  # the three samples


def test_cli_subprocess():
    env = {**os.environ, "MICROCIRCUIT_CACHE": os.environ[data.ENV_CACHE]}
    env.pop(data.ENV_DATA, None)
    run = subprocess.run([sys.executable, "-m", "microcircuit", "data", "info", "--no-verify"],
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for name in data.DATASETS:
        assert name in run.stdout
    bad = subprocess.run([sys.executable, "-m", "microcircuit", "data", "fetch", "imagenet"],
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


# ----------------------------------------------------------------------------- full datasets

FULL_DIR = os.environ.get(data.ENV_DATA)
FACTS = {
    "mnist": {"train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
              "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]},
    "fashion-mnist": {"train": [6000] * 10, "test": [1000] * 10},
    "cifar10": {"train": [5000] * 10, "test": [1000] * 10},
}


def full_available(name: str) -> bool:
    """True when MICROCIRCUIT_DATA (as set for the test session) holds dataset ``name``."""
    return bool(FULL_DIR) and data.find_dataset(name, FULL_DIR)["found"]


@pytest.mark.slow
@pytest.mark.parametrize("name", data.DATASETS)
def test_full_dataset_known_facts(name, monkeypatch):
    if not full_available(name):
        pytest.skip(f"{name}: set MICROCIRCUIT_DATA to a folder with the full dataset")
    monkeypatch.setenv(data.ENV_DATA, FULL_DIR)
    shape = (3, 32, 32) if name == "cifar10" else (1, 28, 28)
    for split in ("train", "test"):
        x, y = data.load_dataset(name, split, flatten=False, download=False)  # verifies checksums
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (len(y), *shape)
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.bincount(y, minlength=10).tolist() == FACTS[name][split]
        if name == "cifar10":
            assert y[:10].tolist() == {"train": [6, 9, 9, 4, 1, 1, 2, 7, 8, 3],
                                       "test": [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]}[split]
        del x
    rep = data.verify_dataset(name)
    assert rep["ok"] and rep["where"] == "env"
    for split in ("train", "test"):
        assert rep["splits"][split]["sha256"] == data.data_checksum(name, split)


@pytest.mark.slow
def test_full_validation_split_and_cli(monkeypatch):
    if not full_available("mnist"):
        pytest.skip("set MICROCIRCUIT_DATA to a folder with the full MNIST")
    monkeypatch.setenv(data.ENV_DATA, FULL_DIR)
    _, yv = data.load_dataset("mnist", "validation", validation=5000, download=False)
    _, yr = data.load_dataset("mnist", "train", validation=5000, download=False)
    assert len(yv) == 5000 and len(yr) == 55000
    assert abs(np.bincount(yv) - np.array(FACTS["mnist"]["train"]) / 12).max() <= 1
    lines = []
    cli_info(out=lines.append)
    assert any(line.startswith("mnist") and "train ok, test ok" in line for line in lines)


def test_labels_are_32_bit_safe_as_a_browsers_numpy_needs():
    """Pyodide is a 32-bit platform: its NumPy refuses to cast int64 labels to its int32 index type
    (np.bincount of int64 sample labels stopped chapter 10 there). Every label the library hands out
    casts safely to int32."""
    from microcircuit import Network, backend

    for name in data.DATASETS:
        _, y = data.load_sample(name, "test")
        assert np.can_cast(y.dtype, np.int32, casting="safe"), (name, y.dtype)
        assert np.bincount(y.astype(np.int32, casting="safe")).sum() == len(y)
    net = Network([784, 4, 10], T=2)
    checked = net.check_labels(np.array([1, 2, 3], dtype=np.int64), 3)
    assert np.can_cast(backend.to_numpy(checked).dtype, np.int32, casting="safe")

"""Build the bundled dataset samples in data/samples/ from the full datasets.

Usage (from the repository root)::

    MICROCIRCUIT_DATA=/path/to/data python scripts/make_samples.py

For each dataset it decodes the full train and test splits, checks their content checksums
against microcircuit/registry.json (``--write-full-checksums`` records them instead, for a
new registry), draws a stratified sample with a fixed seed (the same number of examples of
every class), and writes

* ``data/samples/<name>.npz``: ``x_train``, ``y_train``, ``x_test``, ``y_test`` (uint8;
  images (N, 28, 28) or (N, 3, 32, 32)) and ``idx_train``, ``idx_test`` (positions in the
  full splits). The zip is written with fixed timestamps, so reruns give identical bytes.
* ``data/samples/SHA256SUMS``: the file checksums (``sha256sum -c`` format);
* the ``sample`` entry of each dataset in the registry: file, file SHA-256, seed, and per
  split the count and the content SHA-256 that ``load_sample`` verifies.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microcircuit import data

# examples per split (train, test) of each dataset in data.DATASETS order (mnist, fashion-mnist,
# cifar10); stratified, so divisible by the 10 classes. CIFAR-10 compresses poorly (about
# 2.8 kB per image), hence fewer training images to keep data/ small.
COUNTS = dict(zip(data.DATASETS, ((2000, 500), (2000, 500), (1000, 500))))


def stratified(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n // n_classes`` randomly chosen examples of every class."""
    classes = np.unique(labels)
    per_class = n // len(classes)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


def write_npz(path: Path, arrays: dict) -> None:
    """Write a compressed .npz with fixed timestamps (byte-reproducible), atomically."""
    tmp = path.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, path)


def full_splits(name: str, data_dir: str | None, write: bool, registry: dict) -> dict:
    """Decode the full train/test splits and check (or record) their content checksums."""
    found = data.find_dataset(name, data_dir)
    if not found["found"]:
        raise SystemExit(f"{name}: full dataset not found (searched {found['searched']}); "
                         "set MICROCIRCUIT_DATA or pass --data")
    decoded = data.read_full(name, ["train", "test"], found)
    for split, (x, y, _files) in decoded.items():
        entry = registry["datasets"][name]["splits"][split]
        actual = data.content_sha256(x, y)
        if write:
            entry.update(count=len(y), content_sha256=actual)
        elif entry["content_sha256"] != actual or entry["count"] != len(y):
            raise SystemExit(f"{name} {split}: content {actual} ({len(y)} examples) does not "
                             f"match the registry {entry['content_sha256']} ({entry['count']})")
        print(f"{name} {split}: {len(y)} examples, content sha256 {actual} ({found['folder']})")
    return decoded


def make_sample(name: str, decoded: dict, out_dir: Path, seed: int) -> dict:
    """Draw and write one dataset's sample; returns its registry entry."""
    rng = np.random.default_rng(seed)
    arrays, splits = {}, {}
    for split, n in zip(("train", "test"), COUNTS[name]):
        x, y, _files = decoded[split]
        idx = stratified(y, n, rng)
        xs = x[idx, 0] if x.shape[1] == 1 else x[idx]  # (n, 28, 28) or (n, 3, 32, 32)
        arrays.update({f"x_{split}": xs, f"y_{split}": y[idx].astype(np.uint8),
                       f"idx_{split}": idx.astype(np.uint16 if len(y) < 65536 else np.uint32)})
        splits[split] = {"count": int(n), "content_sha256": data.content_sha256(xs, y[idx])}
    path = out_dir / f"{name}.npz"
    write_npz(path, arrays)
    sha = data.file_sha256(path)
    print(f"{name} sample: {path} ({path.stat().st_size / 1e6:.2f} MB), sha256 {sha}")
    return {"file": path.name, "sha256": sha, "seed": seed, "splits": splits}


def main(argv=None) -> int:
    """Build all samples, SHA256SUMS and the registry's sample entries."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="folder with the full datasets "
                   "(default: MICROCIRCUIT_DATA, then the cache)")
    p.add_argument("--out", type=Path, default=ROOT / "data" / "samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-full-checksums", action="store_true",
                   help="record the full splits' content checksums in the registry")
    args = p.parse_args(argv)
    registry = json.loads(data._REGISTRY_PATH.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in data.DATASETS:
        decoded = full_splits(name, args.data, args.write_full_checksums, registry)
        registry["datasets"][name]["sample"] = make_sample(name, decoded, args.out, args.seed)
    sums = "".join(f"{registry['datasets'][n]['sample']['sha256']}  {n}.npz\n" for n in data.DATASETS)
    (args.out / "SHA256SUMS").write_text(sums, encoding="utf-8")
    data._REGISTRY_PATH.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
    total = sum((args.out / f"{n}.npz").stat().st_size for n in data.DATASETS)
    print(f"total {total / 1e6:.2f} MB in {args.out}; registry updated: {data._REGISTRY_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

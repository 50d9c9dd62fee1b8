#!/usr/bin/env bash
# The prepared check for a lent GPU machine (CuPy is in its image; nothing is downloaded):
#   1. the GPU tests (CuPy vs NumPy: same spike counts, updates within 1e-4),
#   2. the benchmark of every rule on NumPy (the machine's CPUs) and on CuPy: the MLP at batch
#      64 and 1024, and the CIFAR-10 conv networks of both presets (NumPy: the CPU preset only),
#   3. the speed-up of CuPy over NumPy per rule.
# Results land in $OUT (or /tmp/gpu_check) as JSON; copy them to data/results/bench/.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())"
python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_core.py 2>&1 | tee "$OUT/gpu_tests.txt"
for B in 64 1024; do
  python3 -m microcircuit bench --backend numpy --batch-size $B --batches 40 --out "$OUT/bench-numpy-b$B.json"
  python3 -m microcircuit bench --backend cupy --batch-size $B --batches 200 --out "$OUT/bench-cupy-b$B.json"
done
python3 -m microcircuit bench --backend numpy --preset cifar10-conv-cpu --batches 5 --out "$OUT/bench-numpy-conv-cpu.json"
python3 -m microcircuit bench --backend cupy --preset cifar10-conv-cpu --batches 50 --out "$OUT/bench-cupy-conv-cpu.json"
python3 -m microcircuit bench --backend cupy --preset cifar10-conv-gpu --batches 50 --out "$OUT/bench-cupy-conv-gpu.json"
python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for case in ("b64", "b1024", "conv-cpu"):
    cpu = {r["rule"]: r for r in json.loads((out / f"bench-numpy-{case}.json").read_text())["results"]}
    gpu = {r["rule"]: r for r in json.loads((out / f"bench-cupy-{case}.json").read_text())["results"]}
    for rule in gpu:
        print(f"{case:9s} {rule:14s} numpy {cpu[rule]['samples_per_s']:10.0f}/s  cupy {gpu[rule]['samples_per_s']:10.0f}/s"
              f"  speed-up {gpu[rule]['samples_per_s'] / cpu[rule]['samples_per_s']:6.1f}x")
PY

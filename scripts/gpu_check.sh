#!/usr/bin/env bash
# The prepared check for a lent GPU machine (CuPy is in its image; nothing is downloaded):
#   1. the GPU tests: the fused CuPy kernels bit-identical to the CuPy array code, and every
#      rule on CuPy against NumPy (tests/test_gpu.py, tests/test_core.py -m gpu),
#   2. the benchmark of every rule on NumPy (the machine's CPUs) and on CuPy with its fused
#      kernels off and on: the MLP at batch 64 and 1024, and the CIFAR-10 conv networks of both
#      presets (NumPy: the CPU preset only),
#   3. the speed-up of CuPy over NumPy per rule, and of the fused kernels over CuPy's array code,
#   4. where CIFAR-10 is found (MICROCIRCUIT_DATA), the GPU preset's first epochs on it
#      (GPU_EPOCHS, default 2; GPU_TRAIN images, default 10000; PROBE_FLAGS, e.g. --no-verify
#      for a subset of the dataset).
# Results land in $OUT (or /tmp/gpu_check) as JSON and text; copy them to data/results/bench/ as
# <machine>-<name>.json (e.g. h200-cupy-b64.json). Exits non-zero when a GPU test failed.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())" || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py tests/test_core.py 2>&1 | tee "$OUT/gpu_tests.txt"
failed=$?  # the tests' status (pipefail): the script's own, at the end
for B in 64 1024; do
  python3 -m microcircuit bench --backend numpy --batch-size $B --batches 40 --out "$OUT/bench-numpy-b$B.json"
  MICROCIRCUIT_JIT=0 python3 -m microcircuit bench --backend cupy --batch-size $B --batches 200 --out "$OUT/bench-cupy-nofuse-b$B.json"
  python3 -m microcircuit bench --backend cupy --batch-size $B --batches 200 --out "$OUT/bench-cupy-b$B.json"
done
python3 -m microcircuit bench --backend numpy --preset cifar10-conv-cpu --batches 5 --out "$OUT/bench-numpy-conv-cpu.json"
MICROCIRCUIT_JIT=0 python3 -m microcircuit bench --backend cupy --preset cifar10-conv-cpu --batches 50 --out "$OUT/bench-cupy-nofuse-conv-cpu.json"
python3 -m microcircuit bench --backend cupy --preset cifar10-conv-cpu --batches 50 --out "$OUT/bench-cupy-conv-cpu.json"
python3 -m microcircuit bench --backend cupy --preset cifar10-conv-gpu --batches 50 --out "$OUT/bench-cupy-conv-gpu.json"
python3 - "$OUT" <<'PY' | tee "$OUT/speedups.txt"
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    path = out / f"bench-{name}.json"
    return {r["rule"]: r for r in json.loads(path.read_text())["results"]} if path.exists() else {}
for case in ("b64", "b1024", "conv-cpu"):
    cpu, plain, gpu = load(f"numpy-{case}"), load(f"cupy-nofuse-{case}"), load(f"cupy-{case}")
    for rule in gpu:
        line = f"{case:9s} {rule:22s} cupy {gpu[rule]['samples_per_s']:10.0f}/s"
        if rule in cpu:
            line += f"  numpy {cpu[rule]['samples_per_s']:10.0f}/s  cupy/numpy {gpu[rule]['samples_per_s'] / cpu[rule]['samples_per_s']:6.1f}x"
        if rule in plain:
            line += f"  fused/array code {gpu[rule]['samples_per_s'] / plain[rule]['samples_per_s']:5.2f}x"
        print(line)
PY
if python3 -c "from microcircuit import data; import sys; sys.exit(not data.find_dataset('cifar10')['found'])"; then
  MICROCIRCUIT_BACKEND=cupy python3 scripts/probe_preset.py cifar10-conv-gpu --rule microcircuit \
    --epochs "${GPU_EPOCHS:-2}" --train "${GPU_TRAIN:-10000}" --val 2000 ${PROBE_FLAGS:-} 2>&1 | tee "$OUT/gpu_preset_epochs.txt"
else
  echo "CIFAR-10 not found (set MICROCIRCUIT_DATA): the GPU preset's epochs are skipped"
fi
exit $failed

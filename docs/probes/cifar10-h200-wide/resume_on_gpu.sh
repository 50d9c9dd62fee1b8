#!/usr/bin/env bash
# On the lent GPU: assemble the carried parts (CIFAR-10 + the wide runs' checkpoints and logs),
# resume cifar10-conv-wide seed 0 (bp, microcircuit) on CuPy side by side, run the GPU tests beside
# them, return the logs (and the checkpoints split in parts when a run is unfinished).
set -u
R=${R:-/root}; S=$R/stage; W=$R/w; OUT=${OUT:-/tmp/out}; LIMIT=${LIMIT:-500}
mkdir -p "$W" "$OUT"
cat "$S"/p0 "$S"/p1 "$S"/p2 "$S"/p3 | tar x -C "$W" || { echo "tar failed"; exit 1; }
(cd "$W/data/cifar10" && echo "04a0adf22814de1effc36ee4a8ecbf37cd778d1d02f1b41ec5a608edad04f150  cifar-10-python.tar.gz" | sha256sum -c) || exit 1
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH=$PWD MICROCIRCUIT_BACKEND=${BACKEND:-cupy} \
  MICROCIRCUIT_DATA=$W/data MICROCIRCUIT_CACHE=$R/mccache OPENBLAS_NUM_THREADS=1
for r in bp microcircuit; do
  ( /usr/bin/time -f "$r wall %e s" timeout $LIMIT python3 -m microcircuit sweep --presets cifar10-conv-wide --rules $r \
      --seeds 0 --results "$W/wide/results" --runs "$W/wide/runs" --workers 0 --quiet; echo "$r exit $?" ) > "$R/$r.txt" 2>&1 &
done
if [ -n "${TESTS-1}" ]; then  # TESTS= skips the GPU tests
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$R/tests.txt" 2>&1
  python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py tests/test_core.py >> "$R/tests.txt" 2>&1
fi
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$R/tests.txt" 2>&1
wait
cat "$R"/tests.txt "$R"/bp.txt "$R"/microcircuit.txt > "$OUT/out.txt"
for r in bp microcircuit; do
  d=$W/wide/results/cifar10/cifar10-conv-wide/$r/seed-0
  cp "$d/log.json" "$OUT/$r-log.json"
  python3 -c "import json,sys; sys.exit(json.load(open('$d/log.json'))['status'] == 'done')" && \
    split -b 16000000 -d -a 1 "$W/wide/runs/cifar10-conv-wide/$r/seed-0.npz" "$OUT/$r-ckpt-"
done
python3 - "$OUT" <<'PY'
import json, sys, pathlib
for r in ("bp", "microcircuit"):
    log = json.loads((pathlib.Path(sys.argv[1]) / f"{r}-log.json").read_text())
    print(r, log["status"], [(e["epoch"], round(100 * e["test_accuracy"], 2), round(e["seconds"])) for e in log["epochs"]][-24:])
PY
cat "$OUT/out.txt"; ls -la "$OUT"

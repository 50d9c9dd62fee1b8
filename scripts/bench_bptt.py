"""BPTT surrogate-gradient baseline alone: snnTorch trains a preset's network (see
:func:`microcircuit.bench.measure_bptt`), each T in its own process; prints samples/s (per wall
and per CPU second) and peak RSS as JSON lines. `python -m microcircuit bench` runs the same
baseline beside the rules when torch and snntorch are installed (optional, not dependencies).

    python scripts/bench_bptt.py --T 8 16 32 --out bptt.json
    python scripts/bench_bptt.py --preset cifar10-conv-cpu --batches 10
"""

import argparse
import json
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="mnist-mlp", help="the network of this microcircuit preset")
    p.add_argument("--T", type=int, nargs="+", help="default: the preset's")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--out")
    a = p.parse_args()
    results = []
    for T in a.T or [None]:
        arg = json.dumps({"T": T, "batch_size": a.batch_size, "batches": a.batches, "preset": a.preset})
        proc = subprocess.run([sys.executable, "-m", "microcircuit.bench", arg], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()

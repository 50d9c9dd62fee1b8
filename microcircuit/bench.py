"""Benchmark: training throughput (samples/s) and peak memory per rule.

Each (rule, T) is measured in a fresh Python process so that its peak resident memory
(``ru_maxrss``) is its own. Inputs are MNIST-like random images (values in [0, 1]); the
network, batch size and T are those given; optimiser (Adam) and surrogate as in the MNIST preset. Peak *array* memory is also reported: traced
NumPy allocations (``tracemalloc``) or the CuPy memory pool's high-water mark.

    python -m microcircuit bench --T 8 16 32 --out data/results/bench/cpu.json
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def measure(rule: str, T: int, batch_size: int = 64, batches: int = 100, layers=(784, 800, 10),
            warmup: int = 20, mode: str = "rate", repeats: int = 3) -> dict:
    """Time ``batches`` training steps (after ``warmup``); return samples/s and peak memory.

    Memory is traced over one pass; the rate is that of the fastest of ``repeats`` untraced
    passes (the usual ``timeit`` convention: slower passes measure other load on the machine).
    """
    import tracemalloc

    from . import backend
    from .network import Network

    # the optimiser and surrogate of the MNIST preset (training.PRESETS["mnist-mlp"])
    net = Network(list(layers), rule=rule, T=T, batch_size=batch_size, seed=0, mode=mode, optimizer="adam",
                  surrogate="fast_sigmoid")
    rng = np.random.default_rng(0)
    n_in = int(np.prod(net.in_shape))
    x = backend.asarray(rng.random((batch_size * 8, n_in)).astype(np.float32)).reshape(-1, *net.in_shape)
    y = backend.asarray(rng.integers(0, net.n_classes, size=batch_size * 8))
    xp = backend.xp()
    on_gpu = backend.name() == "cupy"

    def step(b):
        i = (b % 8) * batch_size
        net.train_step(x[i : i + batch_size], y[i : i + batch_size], 1e-3)

    for b in range(warmup):
        step(b)
    if on_gpu:
        xp.cuda.Device().synchronize()
        pool = xp.get_default_memory_pool()
    else:
        tracemalloc.start()
    for b in range(batches):
        step(b)
    if on_gpu:
        xp.cuda.Device().synchronize()
        peak_array = pool.total_bytes()
    else:
        peak_array = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    seconds = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in range(batches):
            step(b)
        if on_gpu:
            xp.cuda.Device().synchronize()
        seconds = min(seconds, time.perf_counter() - t0)
    return {
        "rule": rule + ("-spiking" if mode == "spiking" else ""),
        "T": T,
        "batch_size": batch_size,
        "layers": list(layers),
        "backend": backend.name(),
        "dtype": backend.dtype().name,
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "peak_array_mb": round(peak_array / 2**20, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run(rules=("bp", "fa", "dfa", "scfa", "microcircuit"), Ts=(8,), batch_size=64, batches=100,
        layers=(784, 800, 10), out=None) -> list[dict]:
    """Measure every rule at every T, each in its own process; optionally write JSON to ``out``."""
    from . import backend
    from .training import provenance, write_atomic

    env = dict(os.environ, MICROCIRCUIT_BACKEND=backend.name(), MICROCIRCUIT_DTYPE=backend.dtype().name)
    results = []
    for T in Ts:
        for rule in rules:
            mode = "rate"
            if rule == "microcircuit-spiking":
                rule, mode = "microcircuit", "spiking"
            args = json.dumps(dict(rule=rule, T=T, batch_size=batch_size, batches=batches, layers=list(layers), mode=mode))
            proc = subprocess.run([sys.executable, "-m", "microcircuit.bench", args], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"benchmark of {rule} failed:\n{proc.stderr}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if out:
        doc = {"provenance": provenance(seed=0), "results": results}
        write_atomic(out, json.dumps(doc, indent=1))
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"{'rule':<22}{'T':>4}{'batch':>7}{'samples/s':>12}{'peak arrays MB':>16}{'peak RSS MB':>13}"]
    for r in results:
        lines.append(f"{r['rule']:<22}{r['T']:>4}{r['batch_size']:>7}{r['samples_per_s']:>12.0f}"
                     f"{r['peak_array_mb']:>16.1f}{r['peak_rss_mb']:>13.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))

"""Benchmark: training throughput (samples/s) and peak memory per rule.

Each (rule, T) is measured in a fresh Python process so that its peak resident memory
(``ru_maxrss``) is its own. The network, optimiser and surrogate are those of a training
preset (:data:`microcircuit.presets.PRESETS`; default ``mnist-mlp``: 784-800-10, T = 8, batch
64), with T, batch size and (dense) layers overridable. Inputs are random images of the
preset's input shape (values in [0, 1]). Peak *array* memory is also reported: traced NumPy
allocations (``tracemalloc``) or the CuPy memory pool's high-water mark.

    python -m microcircuit bench --T 8 16 32 --out data/results/bench/cpu.json
    python -m microcircuit bench --preset cifar10-conv-cpu --batches 10 --out data/results/bench/cpu-cifar10-conv-cpu.json
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from .config import is_dense
from .files import write_atomic
from .presets import preset as load_preset
from .rules import RULES, network_settings as rule_settings


def network_settings(preset: str = "mnist-mlp", T=None, batch_size=None, layers=None) -> dict:
    """``Network`` keyword arguments of a benchmark: the preset's, with T, batch size and
    layers replaced where given (the dataset, epochs and data augmentation are dropped: a
    training step is timed on ready-made batches)."""
    settings = load_preset(preset)
    for key in ("dataset", "epochs", "augment", "flip"):
        settings.pop(key, None)
    for key, value in (("T", T), ("batch_size", batch_size), ("layers", layers)):
        if value is not None:
            settings[key] = list(value) if key == "layers" else int(value)
    return settings


def network_name(preset: str, layers) -> str:
    """How the table names the network: ``784-800-10`` for dense layers, else the preset."""
    if is_dense(layers):
        return "-".join(str(v) for v in layers)
    return preset


def measure(rule: str, T: int | None = None, batch_size: int | None = None, batches: int = 100, layers=None,
            warmup: int | None = None, repeats: int = 3, preset: str = "mnist-mlp") -> dict:
    """Time ``batches`` training steps (after ``warmup``, default ``min(batches, 20)``) of the
    network of ``preset`` (T, batch size and layers overridable) trained by ``rule`` (a name of
    the rule registry); return samples/s and peak memory.

    Memory is traced over one pass; the rate is that of the fastest of ``repeats`` untraced
    passes (the usual ``timeit`` convention: slower passes measure other load on the machine).
    """
    import tracemalloc

    from . import backend
    from .network import Network

    settings = network_settings(preset, T=T, batch_size=batch_size, layers=layers)
    settings.update(rule_settings(rule), seed=0)
    net = Network(**settings)
    batch_size, lr = net.batch_size, settings["lr"]
    rng = np.random.default_rng(0)
    n_in = int(np.prod(net.in_shape))
    x = backend.asarray(rng.random((batch_size * 8, n_in)).astype(np.float32)).reshape(-1, *net.in_shape)
    y = backend.asarray(rng.integers(0, net.n_classes, size=batch_size * 8))
    xp = backend.xp()
    on_gpu = backend.name() == "cupy"

    def step(b):
        i = (b % 8) * batch_size
        net.train_step(x[i : i + batch_size], y[i : i + batch_size], lr)

    warmup = min(batches, 20) if warmup is None else warmup
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
        "rule": rule,
        "T": net.T,
        "batch_size": batch_size,
        "preset": preset,
        "network": network_name(preset, net.config.layers),
        "layers": net.config.to_dict()["layers"],
        "backend": backend.name(),
        "dtype": backend.dtype().name,
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "peak_array_mb": round(peak_array / 2**20, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run(rules=RULES, Ts=(None,), batch_size=None, batches=100,
        layers=None, out=None, preset: str = "mnist-mlp") -> list[dict]:
    """Measure every rule at every T (``None``: the preset's), each in its own process;
    optionally write JSON to ``out``. ``rules`` are names of the rule registry
    (``microcircuit-spiking`` too)."""
    from . import backend
    from .training import provenance

    network_settings(preset, T=None, batch_size=batch_size, layers=layers)  # fail here on a bad preset
    env = dict(os.environ, MICROCIRCUIT_BACKEND=backend.name(), MICROCIRCUIT_DTYPE=backend.dtype().name)
    results = []
    for T in Ts:
        for rule in rules:
            rule_settings(rule)  # an unknown name fails here, before any process starts
            args = json.dumps(dict(rule=rule, T=T, batch_size=batch_size, batches=batches,
                                   layers=None if layers is None else list(layers), preset=preset))
            proc = subprocess.run([sys.executable, "-m", "microcircuit.bench", args], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"benchmark of {rule} failed:\n{proc.stderr}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if out:
        doc = {"provenance": provenance(seed=0), "results": results}
        write_atomic(out, json.dumps(doc, indent=1))
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"{'network':<18}{'rule':<22}{'T':>4}{'batch':>7}{'samples/s':>12}{'peak arrays MB':>16}{'peak RSS MB':>13}"]
    for r in results:
        lines.append(f"{r.get('network', ''):<18}{r['rule']:<22}{r['T']:>4}{r['batch_size']:>7}{r['samples_per_s']:>12.0f}"
                     f"{r['peak_array_mb']:>16.1f}{r['peak_rss_mb']:>13.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))

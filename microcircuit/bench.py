"""Benchmark: training throughput (samples/s) and peak memory per rule.

Each (rule, T) is measured in a fresh Python process so that its peak resident memory
(``ru_maxrss``) is its own. The network, optimiser and surrogate are those of a training
preset (:data:`microcircuit.presets.PRESETS`; default ``mnist-mlp``: 784-800-10, T = 8, batch
64), with T, batch size and (dense) layers overridable. Inputs are random images of the
preset's input shape (values in [0, 1]). Peak *array* memory is also reported: traced NumPy
allocations (``tracemalloc``) or the CuPy memory pool's high-water mark.

    python -m microcircuit bench --T 8 16 32 --out data/results/bench/cpu.json
    python -m microcircuit bench --preset cifar10-conv-cpu --batches 10 --out data/results/bench/cpu-cifar10-conv-cpu.json

Each result also gives samples per CPU second of the process (``cpu_samples_per_s``: on a
shared machine, other load inflates wall time but not this), and the **GEMM bound**: the
time the matrix products that one training step cannot avoid take alone (the forward
products, the Hebbian products, the feedback products; timed in isolation at their shapes)
as a fraction of the step's CPU time. Where torch and snntorch are installed (optional), the
same network is also trained by BPTT in snnTorch (:func:`measure_bptt`, same T and batch,
one thread per process as set by the environment) and each rule gets its ratio to it, per
CPU second.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import resource
import subprocess
import sys
import time

import numpy as np

from .config import is_dense
from .environment import THREAD_VARS
from .files import write_atomic
from .presets import preset as load_preset
from .rules import RULES
from .rules import network_settings as rule_settings


class BenchmarkError(RuntimeError):
    """A measurement's own process failed (its last line of output says why)."""


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
    network of ``preset`` (T, batch size and layers overridable); return samples/s and peak memory.

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

    gen = backend.noise_generator(1)  # as in training (Network.partial_fit passes one)

    def step(b):
        i = (b % 8) * batch_size
        net.train_step(x[i : i + batch_size], y[i : i + batch_size], lr, gen)

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
    seconds = cpu_seconds = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for b in range(batches):
            step(b)
        if on_gpu:
            xp.cuda.Device().synchronize()
        seconds = min(seconds, time.perf_counter() - t0)
        cpu_seconds = min(cpu_seconds, time.process_time() - c0)
    bound = None if on_gpu else gemm_bound_seconds(net)
    return {
        "rule": rule,
        "T": net.T,
        "batch_size": batch_size,
        "preset": preset,
        "network": network_name(preset, net.config.layers),
        "layers": net.config.to_dict()["layers"],
        "backend": backend.name(),
        "dtype": backend.dtype().name,
        "jit": backend.kernels_enabled(),
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "cpu_samples_per_s": round(batches * batch_size / cpu_seconds, 1),
        "gemm_bound": None if bound is None else round(bound / (cpu_seconds / batches), 3),
        "peak_array_mb": round(peak_array / 2**20, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def products(net) -> list[tuple[int, tuple[int, int, int]]]:
    """The matrix products one training step of ``net`` cannot avoid, as ``(times, (m, k, n))``:
    per plastic layer the forward product (once for the first layer under direct encoding,
    whose input is constant, else every step), the Hebbian product ``post^T pre`` and, above
    the first layer, the feedback product ``e K``. A conv layer's are those of im2col."""
    from .layers import ConvPyramidalLayer

    out = []
    B, T = net.batch_size, net.T
    first = True
    for i, layer in enumerate(net.layers):
        if not layer.plastic:
            continue
        steps = 1 if first and net.config.encoding == "direct" else T
        if isinstance(layer, ConvPyramidalLayer):
            rows, inner, cols = layer.W.shape[0], int(np.prod(layer.W.shape[1:])), B * layer.OH * layer.OW
        else:
            rows, inner, cols = layer.W.shape[0], layer.W.shape[1], B
        out.append((steps, (rows, inner, cols)))  # W (rows, inner) @ inputs (inner, cols)
        out.append((1, (rows, cols, inner)))  # post^T (rows, cols) @ pre (cols, inner)
        if i > 0:
            out.append((1, (inner, rows, cols)))  # K^T (inner, rows) @ e^T (rows, cols)
        first = False
    return out


def gemm_bound_seconds(net, repeats: int = 5) -> float:
    """Seconds (CPU time) of :func:`products` for one step, each product timed alone on random
    float matrices of its shape (the fastest of ``repeats``)."""
    from . import backend

    xp = backend.xp()
    rng = np.random.default_rng(0)
    total = 0.0
    for times, (m, k, n) in products(net):
        a = backend.asarray(rng.random((m, k), dtype=np.float32))
        b = backend.asarray(rng.random((k, n), dtype=np.float32))
        xp.matmul(a, b)
        best = float("inf")
        for _ in range(repeats):
            c0 = time.process_time()
            xp.matmul(a, b)
            best = min(best, time.process_time() - c0)
        total += times * best
    return total


def has_bptt() -> bool:
    """True when torch and snntorch are importable (the optional BPTT baseline)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "snntorch"))


def _torch_layers(layers):
    """torch modules for a network's layers: ``(kind, module)`` pairs, kind ``"lif"`` for
    synapses followed by LIF somata, ``"pool"`` for pooling of spikes."""
    import torch

    from .layers import Conv, Dense, Pool

    shape, out = layers[0], []
    shape = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
    for spec in layers[1:]:
        if isinstance(spec, (int, np.integer, Dense)):
            units = int(spec) if not isinstance(spec, Dense) else spec.units
            out.append(("lif", torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(shape)), units))))
            shape = [units]
        elif isinstance(spec, Conv):
            k, st, p = spec.kernel, spec.stride, spec.padding
            out.append(("lif", torch.nn.Conv2d(shape[0], spec.channels, k, st, p)))
            shape = [spec.channels, (shape[1] + 2 * p - k) // st + 1, (shape[2] + 2 * p - k) // st + 1]
        elif isinstance(spec, Pool):
            pool = torch.nn.AvgPool2d(spec.size) if spec.kind == "avg" else torch.nn.MaxPool2d(spec.size)
            out.append(("pool", pool))
            shape = [shape[0], shape[1] // spec.size, shape[2] // spec.size]
    return out


def measure_bptt(T: int | None = None, batch_size: int | None = None, batches: int = 100, layers=None,
                 preset: str = "mnist-mlp", warmup: int = 5, repeats: int = 3) -> dict:
    """Train the preset's network by backpropagation through time in snnTorch (the optional
    baseline): LIF somata (non-leaky, subtractive reset, fast-sigmoid surrogate) after every
    dense and conv layer, average pooling of spikes, the first layer's current computed once
    (direct encoding), rate-coded cross-entropy, Adam at the preset's learning rate. The rate is
    that of the fastest of ``repeats`` passes, as for the library's rules."""
    import snntorch as snn
    import torch
    from snntorch import functional as SF
    from snntorch import surrogate

    settings = network_settings(preset, T=T, batch_size=batch_size, layers=layers)
    T, batch_size = settings["T"], settings["batch_size"]
    layers = list(settings["layers"])
    torch.manual_seed(0)
    grad = surrogate.fast_sigmoid()
    modules = _torch_layers(layers)
    lifs = [snn.Leaky(beta=1.0, spike_grad=grad, reset_mechanism="subtract") if kind == "lif" else None
            for kind, _ in modules]
    opt = torch.optim.Adam([p for _, m in modules for p in m.parameters()], lr=settings["lr"])
    loss_fn = SF.ce_rate_loss()
    shape = [layers[0]] if isinstance(layers[0], (int, np.integer)) else list(layers[0])
    x = torch.rand(batch_size * 8, *shape)
    y = torch.randint(0, int(modules[-1][1][-1].out_features), (batch_size * 8,))

    def step(b):
        i = (b % 8) * batch_size
        mems = [lif.init_leaky() if lif is not None else None for lif in lifs]
        first, out = modules[0][1](x[i : i + batch_size]), []
        for _ in range(T):
            s = first
            for j, ((_, m), lif) in enumerate(zip(modules, lifs)):
                if j > 0:
                    s = m(s)
                if lif is not None:
                    s, mems[j] = lif(s, mems[j])
            out.append(s)
        loss = loss_fn(torch.stack(out), y[i : i + batch_size])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for b in range(warmup):
        step(b)
    seconds = cpu_seconds = float("inf")
    for _ in range(repeats):  # the fastest of ``repeats`` passes, as :func:`measure` takes
        t0, c0 = time.perf_counter(), time.process_time()
        for b in range(batches):
            step(b)
        seconds, cpu_seconds = min(seconds, time.perf_counter() - t0), min(cpu_seconds, time.process_time() - c0)
    return {
        "rule": "bptt-snntorch", "T": T, "batch_size": batch_size, "preset": preset,
        "network": network_name(preset, layers), "layers": settings_json(layers),
        "backend": f"torch {torch.__version__} cpu, {torch.get_num_threads()} threads", "dtype": "float32",
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "cpu_samples_per_s": round(batches * batch_size / cpu_seconds, 1), "gemm_bound": None,
        "peak_array_mb": None, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def settings_json(layers):
    """Layers as JSON-friendly values (specs as dicts)."""
    from .layers import spec_to_dict

    return [v if isinstance(v, (int, np.integer)) else list(v) if isinstance(v, (tuple, list)) else spec_to_dict(v)
            for v in layers]


def add_ratios(results: list[dict]) -> list[dict]:
    """Give every result with a BPTT baseline of the same T its ``x_bptt``: samples per CPU
    second over the baseline's."""
    base = {r["T"]: r["cpu_samples_per_s"] for r in results if r["rule"] == "bptt-snntorch"}
    for r in results:
        if r["T"] in base and r["rule"] != "bptt-snntorch":
            r["x_bptt"] = round(r["cpu_samples_per_s"] / base[r["T"]], 2)
    return results


def run(rules=RULES, Ts=(None,), batch_size=None, batches=100,
        layers=None, out=None, preset: str = "mnist-mlp", bptt: bool | None = None) -> list[dict]:
    """Measure every rule at every T (``None``: the preset's), each in its own process;
    optionally write JSON to ``out``. ``rules`` are names of the rule registry
    (``microcircuit-spiking`` too).

    ``bptt``: also train the network by BPTT in snnTorch, first at each T, and give every rule
    its ratio to it (``None``: when torch and snntorch are installed and the backend is NumPy).
    """
    names, env = _prepare(rules, preset, batch_size, layers, bptt)
    results = [_in_process(_case(rule, T, batch_size, batches, layers, preset), env) for T in Ts for rule in names]
    add_ratios(results)
    _write(out, results=results)
    return results


def _prepare(rules, preset, batch_size, layers, bptt) -> tuple[list, dict]:
    """Check the request before any process starts; ``(the names to measure, snnTorch's BPTT first
    where it is measured, the processes' environment)``."""
    from . import backend

    network_settings(preset, T=None, batch_size=batch_size, layers=layers)  # fail here on a bad preset
    for rule in rules:
        if rule != "bptt-snntorch":
            rule_settings(rule)  # an unknown name fails here, before any process starts
    if bptt is None:
        bptt = backend.name() == "numpy" and has_bptt()
    names = (["bptt-snntorch"] if bptt and "bptt-snntorch" not in rules else []) + list(rules)
    env = dict(os.environ, MICROCIRCUIT_BACKEND=backend.name(), MICROCIRCUIT_DTYPE=backend.dtype().name,
               MICROCIRCUIT_JIT="1" if backend.kernels_enabled() else "0")  # set_jit() reaches the processes too
    return names, env


def _case(rule, T, batch_size, batches, layers, preset) -> dict:
    """The arguments of one measurement (:func:`measure`, or :func:`measure_bptt` for snnTorch)."""
    kwargs = dict(T=T, batch_size=batch_size, batches=batches, layers=None if layers is None else list(layers),
                  preset=preset)
    return kwargs if rule == "bptt-snntorch" else dict(kwargs, rule=rule)


def _in_process(kwargs: dict, env: dict) -> dict:
    """One measurement in a fresh Python process (its peak memory its own)."""
    args = json.dumps(kwargs)
    proc = subprocess.run([sys.executable, "-m", "microcircuit.bench", args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        threads = env.get("OPENBLAS_NUM_THREADS")
        raise BenchmarkError(f"benchmark of {kwargs.get('rule', 'bptt-snntorch')}"
                             + (f" on {threads} thread(s)" if threads else "") + f" failed in its process: {last} "
                             f"(run `python -m microcircuit.bench '{args}'` to see all of it)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write(out, **doc):
    """The results as JSON in ``out`` (nothing without it), with the provenance of the machine."""
    if out:
        from . import backend
        from .training import provenance

        write_atomic(out, json.dumps({"provenance": dict(provenance(seed=0), jit=backend.kernels_enabled()), **doc},
                                     indent=1))


def compare(rules=RULES, Ts=(None,), threads=(1, None), rounds: int = 3, batch_size=None, batches=100, layers=None,
            preset: str = "mnist-mlp", bptt: bool | None = None, seed: int = 0, out=None,
            measure_one=None) -> list[dict]:
    """Wall-clock samples/s as a user compares them: every rule (and snnTorch's BPTT, where it is
    installed) at every T and thread count (``None``: all the machine's cores), each measurement in
    a fresh process, ``rounds`` rounds whose order is shuffled afresh (``seed``), so that a slow
    moment of a shared machine falls on every case alike.

    Returns one row per (rule, T, threads): ``samples_per_s`` (the median over rounds), ``low`` and
    ``high`` (the least and the largest), ``rounds``, and, beside snnTorch's BPTT measured in the
    same rounds, ``x_snntorch`` (the median over rounds of the ratio within each round) with
    ``x_low`` and ``x_high``; written as JSON to ``out`` where given. ``measure_one(kwargs, threads)``
    replaces the process (tests).
    """
    import random

    names, env = _prepare(rules, preset, batch_size, layers, bptt)
    counts = sorted({(os.cpu_count() or 1) if n is None else int(n) for n in threads})
    run_one = measure_one or (lambda kwargs, n: _in_process(kwargs, dict(env, **{v: str(n) for v in THREAD_VARS})))
    cases = [(rule, T, n) for rule in names for T in Ts for n in counts]
    seen = {case: [] for case in cases}
    for r in range(rounds):
        order = list(cases)
        random.Random(seed * 1000 + r).shuffle(order)
        for rule, T, n in order:
            seen[rule, T, n].append(run_one(_case(rule, T, batch_size, batches, layers, preset), n))
    rows = []
    for (rule, T, n), results in seen.items():
        rates = [res["samples_per_s"] for res in results]
        first = results[0]
        row = {"rule": rule, "T": first["T"], "threads": n, "batch_size": first["batch_size"],
               "network": first.get("network"), "rounds": len(rates), "samples_per_s": statistics.median(rates),
               "low": min(rates), "high": max(rates), "x_snntorch": None, "x_low": None, "x_high": None}
        base = seen.get(("bptt-snntorch", T, n))
        if base and rule != "bptt-snntorch":
            ratios = [a / b["samples_per_s"] for a, b in zip(rates, base)]
            row.update(x_snntorch=round(statistics.median(ratios), 3), x_low=round(min(ratios), 3),
                       x_high=round(max(ratios), 3))
        rows.append(row)
    _write(out, comparison=rows)
    return rows


def format_comparison(rows: list[dict]) -> str:
    """The wall-clock comparison as a table: median [least-largest] over rounds."""
    lines = [f"{'network':<18}{'rule':<22}{'T':>4}{'threads':>8}{'samples/s (wall), median [range]':>36}"
             f"{'x snnTorch BPTT':>26}"]
    for r in rows:
        rate = f"{r['samples_per_s']:.0f} [{r['low']:.0f}-{r['high']:.0f}]"
        ratio = "" if r["x_snntorch"] is None else f"{r['x_snntorch']:.2f}x [{r['x_low']:.2f}-{r['x_high']:.2f}]"
        lines.append(f"{r.get('network') or '':<18}{r['rule']:<22}{r['T']:>4}{r['threads']:>8}{rate:>36}{ratio:>26}")
    n = max((r["rounds"] for r in rows), default=0)
    lines.append(f"(wall clock, a fresh process per measurement, {n} interleaved rounds)")
    return "\n".join(lines)


def format_table(results: list[dict]) -> str:
    """The results as a table; ``x BPTT`` and the GEMM bound where measured."""
    lines = [f"{'network':<18}{'rule':<22}{'T':>4}{'batch':>7}{'samples/s':>12}{'per CPU s':>11}{'x BPTT':>8}"
             f"{'GEMM bound':>12}{'peak arrays MB':>16}{'peak RSS MB':>13}"]
    for r in results:
        cpu, ratio, bound, arrays = r.get("cpu_samples_per_s"), r.get("x_bptt"), r.get("gemm_bound"), r["peak_array_mb"]
        lines.append(f"{r.get('network', ''):<18}{r['rule']:<22}{r['T']:>4}{r['batch_size']:>7}{r['samples_per_s']:>12.0f}"
                     f"{'' if cpu is None else f'{cpu:.0f}':>11}{'' if ratio is None else f'{ratio:.2f}x':>8}"
                     f"{'' if bound is None else f'{100 * bound:.0f} %':>12}{'' if arrays is None else f'{arrays:.1f}':>16}"
                     f"{r['peak_rss_mb']:>13.1f}")
    return "\n".join(lines)


def summary(results: list[dict], one_thread: bool = True) -> list[str]:
    """The headline figures, per T: the microcircuit's (rate mode) speed over BPTT's and its
    GEMM bound, and spiking mode's speed over rate mode's (both per CPU second).

    ``one_thread=False`` (a run on several BLAS threads, or on a GPU: CPU time then counts
    spinning threads or waiting): no GEMM bound, and spiking/rate per second of wall time."""
    lines = []
    for T in sorted({r["T"] for r in results}):
        at = {r["rule"]: r for r in results if r["T"] == T}
        rate, spiking = at.get("microcircuit"), at.get("microcircuit-spiking")
        if rate is None:
            continue
        kernels = {True: "on", False: "off"}.get(rate.get("jit"), "?")
        which = "CuPy" if rate.get("backend") == "cupy" else "Numba"
        parts = [f"microcircuit (rate), T={T}, {which} kernels {kernels}:"]
        if rate.get("x_bptt") is not None:
            parts.append(f"{rate['x_bptt']:.2f}x BPTT per CPU s,")
        elif not has_bptt() and rate.get("backend") != "cupy":  # the BPTT baseline runs on a CPU only
            parts.append("x BPTT not measured (pip install 'microcircuit[bptt]' adds snnTorch),")
        if rate.get("gemm_bound") is not None and one_thread:
            parts.append(f"GEMM bound {100 * rate['gemm_bound']:.0f} % of the step,")
        if spiking is not None:
            per = "cpu_samples_per_s" if one_thread else "samples_per_s"
            parts.append(f"spiking/rate {spiking[per] / rate[per]:.2f}")
        lines.append(" ".join(parts).rstrip(",:"))
    return lines


if __name__ == "__main__":
    _args = json.loads(sys.argv[1])
    print(json.dumps(measure(**_args) if "rule" in _args else measure_bptt(**_args)))

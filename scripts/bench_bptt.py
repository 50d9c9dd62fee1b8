"""BPTT surrogate-gradient baseline for the throughput comparison of `python -m microcircuit bench`.

Trains the same network as a microcircuit preset (default 784-800-10 LIF; `--preset
cifar10-conv-cpu` for the conv network: Conv/Pool/Dense as in the preset, LIF after every
Conv and Dense, average pooling of spikes), direct current input (the first layer's current
computed once), T steps, batch 64, with backpropagation through time in snnTorch (Adam,
rate-coded cross-entropy), on random data of the preset's input shape, and prints samples/s
(per wall and per CPU second) and peak RSS per T as JSON lines. torch and snntorch are not
dependencies of microcircuit: run it from an environment that has them.

    python scripts/bench_bptt.py --T 8 16 32 --out data/results/bench/bptt-snntorch.json
    python scripts/bench_bptt.py --preset cifar10-conv-cpu --T 4 --batches 10
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def build(layers):
    """torch modules for a preset's layers: a list of (kind, module) with kind 'lif' for the
    synapses followed by a LIF soma, 'pool' for pooling of spikes."""
    import torch

    shape, out = layers[0], []
    shape = [shape] if isinstance(shape, int) else list(shape)
    for spec in layers[1:]:
        if isinstance(spec, int) or spec.get("type") == "Dense":
            units = spec if isinstance(spec, int) else spec["units"]
            fan_in = 1
            for d in shape:
                fan_in *= d
            out.append(("lif", torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(fan_in, units))))
            shape = [units]
        elif spec["type"] == "Conv":
            k, st, p = spec.get("kernel", 3), spec.get("stride", 1), spec.get("padding", 1)
            out.append(("lif", torch.nn.Conv2d(shape[0], spec["channels"], k, st, p)))
            shape = [spec["channels"], (shape[1] + 2 * p - k) // st + 1, (shape[2] + 2 * p - k) // st + 1]
        else:
            size = spec.get("size", 2)
            pool = torch.nn.AvgPool2d(size) if spec.get("kind", "avg") == "avg" else torch.nn.MaxPool2d(size)
            out.append(("pool", pool))
            shape = [shape[0], shape[1] // size, shape[2] // size]
    return out


def measure(T, batch_size, batches, layers=(784, 800, 10), lr=5e-4):
    import snntorch as snn
    import torch
    from snntorch import functional as SF
    from snntorch import surrogate

    torch.manual_seed(0)
    grad = surrogate.fast_sigmoid()
    modules = build(list(layers))
    lifs = [snn.Leaky(beta=1.0, spike_grad=grad, reset_mechanism="subtract") if kind == "lif" else None
            for kind, _ in modules]
    params = [p for _, m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = SF.ce_rate_loss()
    shape = [layers[0]] if isinstance(layers[0], int) else list(layers[0])
    n_classes = layers[-1] if isinstance(layers[-1], int) else layers[-1]["units"]
    x = torch.rand(batch_size * 8, *shape)
    y = torch.randint(0, n_classes, (batch_size * 8,))

    def step(b):
        i = (b % 8) * batch_size
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        mems = [lif.init_leaky() if lif is not None else None for lif in lifs]
        out = []
        first = modules[0][1](xb)  # constant input: the first layer's current once
        for _ in range(T):
            s = first
            for j, ((kind, m), lif) in enumerate(zip(modules, lifs)):
                if j > 0:
                    s = m(s)
                if lif is not None:
                    s, mems[j] = lif(s, mems[j])
            out.append(s)
        loss = loss_fn(torch.stack(out), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for b in range(5):
        step(b)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in range(batches):
        step(b)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {
        "rule": "bptt-snntorch", "T": T, "batch_size": batch_size, "layers": list(layers),
        "backend": f"torch {torch.__version__} cpu", "dtype": "float32",
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "cpu_samples_per_s": round(batches * batch_size / cpu_seconds, 1), "peak_array_mb": None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="mnist-mlp", help="the network of this microcircuit preset")
    p.add_argument("--T", type=int, nargs="+", help="default: the preset's")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--out")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(**json.loads(a.one))))
        return
    from microcircuit.bench import network_settings
    from microcircuit.layers import spec_to_dict

    settings = network_settings(a.preset)
    layers = [s if isinstance(s, int) else list(s) if isinstance(s, tuple) else spec_to_dict(s) for s in settings["layers"]]
    results = []
    for T in a.T or [settings["T"]]:
        arg = json.dumps({"T": T, "batch_size": a.batch_size, "batches": a.batches, "layers": layers,
                          "lr": settings["lr"]})
        proc = subprocess.run([sys.executable, __file__, "--one", arg], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()

"""BPTT surrogate-gradient baseline for the throughput comparison of `python -m microcircuit bench`.

Trains the same network (784-800-10 LIF, direct current input, T steps, batch 64) with
backpropagation through time in snnTorch (Adam, lr 5e-4, rate-coded cross-entropy), on
MNIST-shaped random data, and prints samples/s and peak RSS per T as JSON lines. torch
and snntorch are not dependencies of microcircuit: run it from an environment that has them.

    python scripts/bench_bptt.py --T 8 16 32 --out data/results/bench/bptt-snntorch.json
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(T, batch_size, batches):
    import snntorch as snn
    import torch
    from snntorch import functional as SF
    from snntorch import surrogate

    torch.manual_seed(0)
    grad = surrogate.fast_sigmoid()
    fc1, fc2 = torch.nn.Linear(784, 800), torch.nn.Linear(800, 10)
    lif1 = snn.Leaky(beta=1.0, spike_grad=grad, reset_mechanism="subtract")
    lif2 = snn.Leaky(beta=1.0, spike_grad=grad, reset_mechanism="subtract")
    params = list(fc1.parameters()) + list(fc2.parameters())
    opt = torch.optim.Adam(params, lr=5e-4)
    loss_fn = SF.ce_rate_loss()
    x = torch.rand(batch_size * 8, 784)
    y = torch.randint(0, 10, (batch_size * 8,))

    def step(b):
        i = (b % 8) * batch_size
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        m1, m2 = lif1.init_leaky(), lif2.init_leaky()
        out = []
        cur1 = fc1(xb)
        for _ in range(T):
            s1, m1 = lif1(cur1, m1)
            s2, m2 = lif2(fc2(s1), m2)
            out.append(s2)
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
        "rule": "bptt-snntorch", "T": T, "batch_size": batch_size, "layers": [784, 800, 10],
        "backend": f"torch {torch.__version__} cpu", "dtype": "float32",
        "samples_per_s": round(batches * batch_size / seconds, 1),
        "cpu_samples_per_s": round(batches * batch_size / cpu_seconds, 1), "peak_array_mb": None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--T", type=int, nargs="+", default=[8])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--out")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(**json.loads(a.one))))
        return
    results = []
    for T in a.T:
        arg = json.dumps({"T": T, "batch_size": a.batch_size, "batches": a.batches})
        proc = subprocess.run([sys.executable, __file__, "--one", arg], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()

# the same code in CPython (.venv) and in Pyodide (node run.mjs --library --bench)
import time, sys
import numpy as np
from microcircuit import Network, data
x, y = data.load_sample("mnist", "train")
x, y = x[:2000], y[:2000]
for T in (8, 16):
    t = time.perf_counter()
    net = Network([784, 256, 10], T=T, seed=0).fit(x, y, epochs=1)
    dt = time.perf_counter() - t
    print(f"BENCH {sys.platform} numpy {np.__version__}: Network([784, 256, 10], T={T}) 2000 MNIST samples, 1 epoch: {dt:.2f} s, loss {net.history_[-1]['train_loss']:.6f}")

"""Run (or resume) the full training runs whose logs the book reports.

    python scripts/full_runs.py mnist-mlp                 # every rule on one preset
    python scripts/full_runs.py mnist-mlp --rules bp scfa

Logs go to data/results/<dataset>/<preset>/<rule>/ (small JSON/CSV, committed); checkpoints
to runs/<preset>/<rule>.npz (large, not committed). A run that has a checkpoint is resumed,
so the script can be stopped at any time and started again.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from microcircuit.training import preset

RULES = ["microcircuit", "bp", "scfa", "fa", "dfa", "microcircuit-spiking"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset")
    parser.add_argument("--rules", nargs="+", default=RULES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `train` options")
    args = parser.parse_args()
    dataset = preset(args.preset)["dataset"]
    root = Path(__file__).resolve().parent.parent
    for rule in args.rules:
        name, mode = (rule, []) if rule != "microcircuit-spiking" else ("microcircuit", ["--mode", "spiking", "--T-e", "16"])
        out = root / "data" / "results" / dataset / args.preset / rule
        ckpt = root / "runs" / args.preset / f"{rule}.npz"
        cmd = [sys.executable, "-m", "microcircuit", "train", "--preset", args.preset, "--rule", name, *mode,
               "--seed", str(args.seed), "--out", str(out), "--checkpoint", str(ckpt), *args.extra]
        if ckpt.exists():
            cmd.append("--resume")
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=root)


if __name__ == "__main__":
    main()

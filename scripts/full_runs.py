"""Run (or resume) the full training runs whose logs the book reports.

    python scripts/full_runs.py mnist-mlp                 # every rule on one preset
    python scripts/full_runs.py mnist-mlp --rules bp scfa

Logs go to data/results/<dataset>/<preset>/<rule>/ (small JSON/CSV, committed); checkpoints
to runs/<preset>/<rule>.npz (large, not committed). A run that has a checkpoint is resumed,
so the script can be stopped at any time and started again. Each run is
``microcircuit.training.run_preset``; for one run with other settings use
``python -m microcircuit train``.
"""

import argparse

from microcircuit.training import PRESET_RULES, run_preset

# the order the runs go in: the microcircuit and its BP baseline first
RULES = ["microcircuit", "bp", "scfa", "fa", "dfa", "microcircuit-spiking"]
assert sorted(RULES) == sorted(PRESET_RULES)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset")
    parser.add_argument("--rules", nargs="+", default=RULES, choices=RULES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    args = parser.parse_args()
    for rule in args.rules:
        log = run_preset(args.preset, rule, seed=args.seed, quiet=not args.progress)
        last = log["epochs"][-1] if log.get("epochs") else {}
        print(f"{args.preset} {rule}: epoch {last.get('epoch')}, test accuracy {last.get('test_accuracy')}", flush=True)


if __name__ == "__main__":
    main()

"""Add the training-set accuracy to the last epoch of finished runs whose logs predate it.

    python scripts/archive/backfill_train_accuracy.py            # every finished run that lacks it
    python scripts/archive/backfill_train_accuracy.py --dry-run  # only list them

``training.run`` records, after each epoch, the accuracy on the first 10,000 training images
(``train_accuracy``, ``train_eval_loss``). Runs made before it did lack both. For a finished
run whose checkpoint (``runs/<preset>/<rule>.npz``) is at its last logged epoch, this
evaluates that checkpoint exactly as ``training.run`` would have, writes the two numbers into
the last epoch's record, and adds a ``backfilled`` entry to the log with the epoch, the
fields and the provenance of this call. Earlier epochs stay without them: their weights are
gone.
"""

import argparse
import json
from pathlib import Path

from microcircuit import Network, data, files, training

FIELDS = ("train_accuracy", "train_eval_loss")


def candidates(results: Path, runs: Path):
    """``(log path, checkpoint path)`` of finished preset runs whose last record lacks the fields."""
    for log_path in sorted(results.glob("*/*/*/log.json")):
        rule, preset = log_path.parent.name, log_path.parent.parent.name
        log = json.loads(log_path.read_text())
        ckpt = runs / preset / f"{rule}.npz"
        if log.get("status") == "done" and log["epochs"] and "train_accuracy" not in log["epochs"][-1] and ckpt.exists():
            yield log_path, ckpt


def backfill(log_path: Path, ckpt: Path, samples: int) -> dict:
    log = json.loads(log_path.read_text())
    last = log["epochs"][-1]
    net = Network.load(ckpt)
    if net.epoch_ != last["epoch"]:
        raise SystemExit(f"{ckpt} is at epoch {net.epoch_}, its log ends at {last['epoch']}: not the same network")
    dataset = log["provenance"]["dataset"]
    flatten = len(net.layers[0].in_shape) == 1
    x, y = data.load_dataset(dataset, "train", flatten=flatten)
    if data.data_checksum(dataset, "train") != log["provenance"]["data_checksum"]:
        raise SystemExit(f"{log_path}: the training data's checksum differs from the run's")
    ev = net.evaluate(x[:samples], y[:samples])
    last.update(train_accuracy=ev["accuracy"], train_eval_loss=round(ev["loss"], 6))
    prov = training.provenance(net.config.seed, dataset, log["provenance"]["data_checksum"])
    prov["train_eval_samples"] = min(samples, int(x.shape[0]))
    log.setdefault("backfilled", []).append({"epoch": last["epoch"], "fields": list(FIELDS), **prov})
    training.write_log(log_path.parent, log)
    return last


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=files.results_dir())
    parser.add_argument("--runs", type=Path, default=files.runs_dir())
    parser.add_argument("--samples", type=int, default=10_000, help="the first N training images (as training.run)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    for log_path, ckpt in list(candidates(args.results, args.runs)):
        name = log_path.parent.relative_to(args.results)
        if args.dry_run:
            print(name)
            continue
        last = backfill(log_path, ckpt, args.samples)
        print(f"{name}: epoch {last['epoch']}, train accuracy {100 * last['train_accuracy']:.2f} %, "
              f"test accuracy {100 * last['test_accuracy']:.2f} %", flush=True)


if __name__ == "__main__":
    main()

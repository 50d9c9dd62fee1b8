"""Command line of the microcircuit library.

    python -m microcircuit train --dataset mnist --rule microcircuit --epochs 20 --out runs/mnist-mc
    python -m microcircuit train --preset mnist-mlp --rule bp --out runs/mnist-bp --resume
    python -m microcircuit bench                      # samples/s and peak memory per rule
    python -m microcircuit bench --preset cifar10-conv-cpu --batches 10   # ... of the CIFAR-10 network
    python -m microcircuit data info                  # where the datasets are, checksums
    python -m microcircuit data fetch mnist           # download into the cache
    python -m microcircuit report --out data/results/REPORT.md   # tables of the full runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .data import add_data_subparser
from .report import add_report_subparser


def _layers(text: str):
    """'784,800,10' -> [784, 800, 10]."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers wants comma-separated ints such as 784,800,10, got {text!r}")


def _setup_backend(args):
    from . import backend

    if args.backend:
        backend.set_backend(args.backend)
    if args.dtype:
        backend.set_dtype(args.dtype)


def _flag(text: str) -> bool:
    """A yes/no command-line value."""
    value = text.strip().lower()
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


NETWORK_OPTIONS = {
    # option: (type, help)  -- passed to Network when given
    "rule": (str, "bp | fa | dfa | scfa | microcircuit"),
    "mode": (str, "microcircuit error cells: rate | spiking"),
    "T_e": (int, "time steps of spiking error cells"),
    "T": (int, "time steps per sample"),
    "layers": (_layers, "comma-separated sizes, input first (dense networks)"),
    "loss": (str, "ce | mse"),
    "output_scale": (float, "c in softmax(c r) for the ce loss"),
    "encoding": (str, "direct | bernoulli"),
    "optimizer": (str, "sgd | adam"),
    "lr": (float, "learning rate"),
    "momentum": (float, "SGD momentum"),
    "weight_decay": (float, "weight decay"),
    "lr_schedule": (str, "constant | cosine | step"),
    "warmup": (float, "fraction of training with linear lr warm-up"),
    "batch_size": (int, "mini-batch size"),
    "tau_m": (float, "membrane time constant (steps)"),
    "surrogate": (str, "triangle | box | fast_sigmoid"),
    "width": (float, "surrogate width"),
    "weight_scale": (float, "initial weight scale"),
    "augment": (int, "random shifts of up to this many pixels"),
    "flip": (_flag, "mirror training images left-right at random: yes | no"),
}


def cmd_train(args) -> int:
    from . import data, training

    _setup_backend(args)
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"
    settings = training.preset(args.preset) if args.preset else {}
    for key in NETWORK_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    dataset = args.dataset or settings.pop("dataset", None)
    settings.pop("dataset", None)
    if dataset is None:
        raise SystemExit("train: name a --dataset (mnist, fashion-mnist, cifar10) or a --preset")
    epochs = args.epochs or settings.pop("epochs", 10)
    settings.pop("epochs", None)
    layers = settings.pop("layers", None)
    source = "sample" if args.sample else "auto"
    flatten = layers is None or all(isinstance(v, int) for v in layers)
    if args.validation:
        train = data.load_dataset(dataset, "train", flatten=flatten, validation=args.validation, source=source, seed=args.seed)
        test = data.load_dataset(dataset, "validation", flatten=flatten, validation=args.validation, source=source, seed=args.seed)
    else:
        train = data.load_dataset(dataset, "train", flatten=flatten, source=source)
        test = data.load_dataset(dataset, "test", flatten=flatten, source=source)
    if args.limit:
        train = (train[0][: args.limit], train[1][: args.limit])
    if layers is None:
        layers = [int(train[0][0].size), 800, 10]
    checksum = data.sample_checksum(dataset, "train") if args.sample else data.data_checksum(dataset, "train")
    log = training.run(
        train, test, args.out, epochs=epochs, resume=args.resume, quiet=args.quiet, dataset=dataset,
        data_checksum=checksum, layers=layers, seed=args.seed, checkpoint=args.checkpoint,
        train_eval_samples=args.train_eval,
        data_subset={"source": source, "validation": args.validation or None, "limit": args.limit}, **settings,
    )
    last = log["epochs"][-1] if log["epochs"] else {}
    print(json.dumps({"out": str(args.out), "epoch": last.get("epoch"), "train_accuracy": last.get("train_accuracy"),
                      "test_accuracy": last.get("test_accuracy"), "wall_seconds": log.get("wall_seconds")}))
    return 0


def cmd_bench(args) -> int:
    from . import bench

    _setup_backend(args)
    try:
        results = bench.run(rules=args.rules.split(","), Ts=args.T or [None], batch_size=args.batch_size,
                            batches=args.batches, layers=args.layers, out=args.out, preset=args.preset)
    except ValueError as err:  # an unknown preset, before any process starts
        raise SystemExit(f"bench: {err}")
    print(bench.format_table(results))
    return 0


def cmd_sweep(args) -> int:
    from . import sweep

    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        task_list = sweep.tasks(args.presets, args.rules, args.seeds)
    except ValueError as err:
        raise SystemExit(f"sweep: {err}")
    print(f"sweep: {len(task_list)} runs ({len(args.presets)} presets x rules x {len(args.seeds)} seeds)")
    out = sweep.run(task_list, scheduler=args.scheduler, workers=args.workers, results=args.results,
                    runs=args.runs, source="sample" if args.sample else "full", epochs=args.epochs,
                    progress=not args.quiet)
    for row in out["done"]:
        print(json.dumps(row))
    for task, message in out["failed"]:
        print(f"sweep: {task} failed: {message}", file=sys.stderr)
    return 1 if out["failed"] else 0


def main(argv=None) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="microcircuit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser("train", help="train a network; checkpoints and logs every epoch")
    train.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"])
    train.add_argument("--preset", help="named settings (see microcircuit.training.PRESETS)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--out", required=True, help="run folder (checkpoint.npz, log.json, log.csv)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.add_argument("--checkpoint", help="checkpoint file (default: OUT/checkpoint.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bars (also TQDM_DISABLE=1)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--sample", action="store_true", help="use the small bundled sample of the dataset")
    train.add_argument("--validation", type=float, default=0, help="hold out this many (or fraction of) training samples and evaluate on them instead of the test set")
    train.add_argument("--limit", type=int, help="train on the first N training samples only")
    train.add_argument("--train-eval", type=int, default=10_000, metavar="N",
                       help="after each epoch also evaluate on the first N training samples (0: off)")
    for key, (typ, text) in NETWORK_OPTIONS.items():
        train.add_argument(f"--{key.replace('_', '-')}", dest=key, type=typ, help=text)
    for p in (train,):
        p.add_argument("--backend", choices=["numpy", "cupy"])
        p.add_argument("--dtype", choices=["float32", "float64"])
    train.set_defaults(func=cmd_train)

    bench = commands.add_parser("bench", help="training samples/s and peak memory per rule")
    bench.add_argument("--rules", default="bp,fa,dfa,scfa,microcircuit")
    bench.add_argument("--preset", default="mnist-mlp",
                       help="the network, optimiser and T of this training preset (default mnist-mlp)")
    bench.add_argument("--T", type=int, nargs="+", help="time steps (default: the preset's)")
    bench.add_argument("--batch-size", type=int, help="default: the preset's")
    bench.add_argument("--batches", type=int, default=100, help="timed mini-batches per pass")
    bench.add_argument("--layers", type=_layers, help="dense sizes such as 784,800,10 (default: the preset's)")
    bench.add_argument("--out", help="write the results as JSON here")
    bench.add_argument("--backend", choices=["numpy", "cupy"])
    bench.add_argument("--dtype", choices=["float32", "float64"])
    bench.set_defaults(func=cmd_bench)

    sw = commands.add_parser("sweep", help="every (preset, rule, seed) as a resumable run, on Dask workers")
    sw.add_argument("--presets", nargs="+", required=True, help="preset names, e.g. mnist-mlp fashion-mlp")
    sw.add_argument("--rules", nargs="+", default=["all"], help="rule names or all (default)")
    sw.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    sw.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=int, help="local worker processes (default: one per core; 0: no Dask)")
    sw.add_argument("--results", help="results folder (default: the package's data/results)")
    sw.add_argument("--runs", help="checkpoint folder (default: runs/)")
    sw.add_argument("--epochs", type=int, help="override the presets' epochs")
    sw.add_argument("--sample", action="store_true", help="train on the bundled samples (a quick trial)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)

    add_data_subparser(commands)
    add_report_subparser(commands)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

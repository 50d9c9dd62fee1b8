"""The command line: every subcommand of ``python -m microcircuit`` (also ``microcircuit``).

    python -m microcircuit train --dataset mnist --rule microcircuit --epochs 20 --out runs/mnist-mc
    python -m microcircuit train --preset mnist-mlp --rule bp --out runs/mnist-bp --resume
    python -m microcircuit runs mnist-mlp             # every rule on a preset, where the book looks
    python -m microcircuit sweep --presets mnist-mlp fashion-mlp --seeds 0 1 2   # on Dask workers
    python -m microcircuit bench                      # samples/s and peak memory per rule
    python -m microcircuit bench --preset cifar10-conv-cpu --batches 10   # ... of the CIFAR-10 network
    python -m microcircuit data info                  # where the datasets are, checksums
    python -m microcircuit data fetch mnist           # download into the cache
    python -m microcircuit report --out data/results/REPORT.md   # tables of the full runs

A user's mistake ends in one line, ``microcircuit COMMAND: error: ...``, and exit 1 (2 for a
bad option); Ctrl-C in one line and exit 130 (SIGTERM: the same, exit 143); ``MICROCIRCUIT_DEBUG=1`` shows the traceback.
A bug (any other exception) shows its traceback."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import signal
import sys
import warnings
from pathlib import Path

from .config import CHOICES, NetworkConfig, is_dense
from .data import DATASETS
from .network import DivergenceError
from .rules import RUN_RULES, network_settings


class UsageError(Exception):
    """A bad option value or combination: one line and exit 2, as argparse's own errors."""


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (``microcircuit train: error: ...``, exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_from(low: int):
    """An argparse type: an int >= ``low``."""
    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("-").isdigit() else None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be {'a positive int' if low == 1 else 'an int >= 0'}, got {text!r}")
        return value
    return parse


_positive_int, _count = _int_from(1), _int_from(0)


def _layers(text: str):
    """'784,800,10' -> [784, 800, 10]."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        sizes = None
    if not sizes or len(sizes) < 2 or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"wants comma-separated positive ints such as 784,800,10, got {text!r}")
    return sizes


def _flag(text: str) -> bool:
    """A yes/no command-line value."""
    value = text.strip().lower()
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _option_type(f: dataclasses.Field):
    if f.name == "layers":
        return _layers
    if f.name == "epochs":
        return _positive_int
    default = f.default
    return _flag if isinstance(default, bool) else (type(default) if isinstance(default, (int, float)) else str)


def _add_network_options(parser):
    """One ``--name`` option per field of :class:`~microcircuit.config.NetworkConfig` (absent: not given)."""
    for f in dataclasses.fields(NetworkConfig):
        choices = RUN_RULES if f.name == "rule" else CHOICES.get(f.name)
        text = f.metadata["help"] + (": " + " | ".join(choices) if choices else "")
        if f.name != "layers" and f.default is not None:
            text += f" (default {f.default})"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=_option_type(f), help=text)


def _setup_backend(args):
    from . import backend

    try:
        if args.backend:
            backend.set_backend(args.backend)
        if args.dtype:
            backend.set_dtype(args.dtype)
    except (ImportError, RuntimeError) as exc:  # no CuPy, or no GPU
        raise OSError(str(exc)) from exc


def _quiet(args):
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"


# ------------------------------------------------------------------------ train
def _load(data, dataset, flatten, validation, source, seed):
    """``(train, test)`` of a run: the test set, or the held-out part of the training set."""
    if validation:
        cut = dict(validation=validation, source=source, seed=seed)
        return (data.load_dataset(dataset, "train", flatten=flatten, **cut),
                data.load_dataset(dataset, "validation", flatten=flatten, **cut))
    return (data.load_dataset(dataset, "train", flatten=flatten, source=source),
            data.load_dataset(dataset, "test", flatten=flatten, source=source))


def cmd_train(args) -> int:
    """Train (or, with ``--resume``, continue) one run. On a resume, what is not given is the
    run's own (dataset, data subset, settings, epochs); what is given must agree with it,
    except ``--lr`` and ``--epochs``."""
    from . import data, presets, training
    from .files import check_writable

    _setup_backend(args)
    _quiet(args)
    out = Path(args.out)
    ckpt = Path(args.checkpoint) if args.checkpoint else out / "checkpoint.npz"
    resuming = bool(args.resume and ckpt.exists())
    previous = training.run_log(out, ckpt) if resuming else {}
    run_prov, run_config = previous.get("provenance") or {}, previous.get("config") or {}
    subset = run_prov.get("data_subset") or {}
    try:
        settings = presets.preset(args.preset) if args.preset else {}
        dataset = args.dataset or settings.pop("dataset", None) or run_prov.get("dataset")
        settings.pop("dataset", None)
        typed = {f.name: getattr(args, f.name) for f in dataclasses.fields(NetworkConfig)
                 if getattr(args, f.name) is not None}
        if "rule" in typed:  # a run variant (microcircuit-spiking) is its registry settings; typed ones win
            typed = {**network_settings(typed["rule"]), **{k: v for k, v in typed.items() if k != "rule"}}
        settings.update(typed)
        config = NetworkConfig(**settings)  # every setting checked before any data is read
    except ValueError as err:
        raise UsageError(str(err)) from None
    if dataset is None:
        raise UsageError(f"name a --dataset ({', '.join(DATASETS)}) or a --preset")
    check_writable(out)  # before any data is read or any epoch trained
    check_writable(ckpt.parent)
    preset_epochs = settings.pop("epochs", None)
    # a resume keeps the run's epochs and lr unless they are typed (a preset's are not a request)
    epochs = (typed.get("epochs") or run_config.get("epochs") or config.epochs) if resuming else \
        (preset_epochs or config.epochs)
    sample = args.sample if args.sample is not None else subset.get("source") == "sample"
    source = "sample" if sample else ("full" if subset.get("source") == "full" else "auto")
    validation = args.validation if args.validation is not None else (subset.get("validation") or 0)
    if validation < 0:
        raise UsageError(f"argument --validation: must be a count or a fraction >= 0, got {validation!r}")
    limit = args.limit if args.limit is not None else subset.get("limit")
    train_eval = args.train_eval if args.train_eval is not None else run_prov.get("train_eval_samples", 10_000)
    seed = config.seed if "seed" in settings else run_config.get("seed", config.seed)
    if resuming:
        flatten = is_dense(run_config["layers"]) if run_config.get("layers") else \
            ("layers" not in settings or config.is_dense())
    else:
        flatten = "layers" not in settings or config.is_dense()
    try:
        train, test = _load(data, dataset, flatten, validation, source, seed)
    except (ValueError, TypeError) as err:  # e.g. a --validation larger than the training set
        if isinstance(err, data.DatasetCorruptError):
            raise
        raise UsageError(str(err)) from None
    if limit:
        train = (train[0][:limit], train[1][:limit])
    if resuming:  # only what was given: the run keeps its own settings (a preset's lr is not an override)
        network = {k: v for k, v in settings.items() if k in typed or k != "lr"}
    else:
        if "layers" not in settings:  # the default hidden and output layers on this dataset's input
            config = config.replace(layers=(int(train[0][0].size), *config.layers[1:]))
        network = {k: v for k, v in config.to_dict().items() if k != "epochs"}
    checksum = data.sample_checksum(dataset, "train") if source == "sample" else data.data_checksum(dataset, "train")
    log = training.run(
        train, test, out, epochs=epochs, resume=args.resume, quiet=args.quiet, dataset=dataset,
        data_checksum=checksum, checkpoint=ckpt, train_eval_samples=train_eval,
        data_subset={"source": source, "validation": validation or None, "limit": limit}, **network,
    )
    last = log["epochs"][-1] if log["epochs"] else {}
    print(json.dumps({"out": str(args.out), "epoch": last.get("epoch"), "train_accuracy": last.get("train_accuracy"),
                      "test_accuracy": last.get("test_accuracy"), "wall_seconds": log.get("wall_seconds")}))
    return 0


# ------------------------------------------------------------------ runs, sweep
def _run_tasks(name, task_list, args, workers) -> int:
    from . import sweep

    out = sweep.run(task_list, scheduler=getattr(args, "scheduler", None), workers=workers, results=args.results,
                    runs=args.runs, source="sample" if args.sample else "full", epochs=args.epochs,
                    progress=not args.quiet)
    for row in out["done"]:
        print(json.dumps(row))
    for task, message in out["failed"]:
        print(f"{name}: {task} failed: {message}", file=sys.stderr)
    return 1 if out["failed"] else 0


def cmd_runs(args) -> int:
    """Every rule of one preset, one after another in this process (resumable)."""
    from . import sweep

    _quiet(args)
    try:
        task_list = sweep.tasks([args.preset], args.rules, [args.seed])
    except ValueError as err:
        raise UsageError(str(err)) from None
    return _run_tasks("runs", task_list, args, workers=0)


def cmd_sweep(args) -> int:
    from . import sweep

    _quiet(args)
    try:
        task_list = sweep.tasks(args.presets, args.rules, args.seeds)
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(f"sweep: {len(task_list)} runs ({len(args.presets)} presets x rules x {len(args.seeds)} seeds)")
    return _run_tasks("sweep", task_list, args, workers=args.workers)


def _add_run_options(p):
    p.add_argument("--results", help="results folder (default: $MICROCIRCUIT_RESULTS or data/results)")
    p.add_argument("--runs", help="checkpoint folder (default: $MICROCIRCUIT_RUNS or runs/)")
    p.add_argument("--epochs", type=_positive_int, help="override the presets' epochs")
    p.add_argument("--sample", action="store_true", help="train on the bundled samples (a quick trial)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------ bench
def cmd_bench(args) -> int:
    from . import bench

    _setup_backend(args)
    rules = [r.strip() for r in args.rules.split(",")]
    try:  # an unknown preset or rule fails here, before any process starts
        bench.network_settings(args.preset, batch_size=args.batch_size, layers=args.layers)
        for rule in (r for r in rules if r != "bptt-snntorch"):  # the external baseline is no rule of ours
            bench.rule_settings(rule)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.out:
        from .files import check_writable

        check_writable(Path(args.out).parent)  # before minutes of measuring
    try:
        results = bench.run(rules=rules, Ts=args.T or [None], batch_size=args.batch_size,
                            batches=args.batches, layers=args.layers, out=args.out, preset=args.preset)
    except bench.BenchmarkError as err:  # a failure, not a usage mistake: exit 1
        print(f"microcircuit bench: error: {err}", file=sys.stderr)
        return 1
    print("\n".join([bench.format_table(results), *bench.summary(results)]))
    return 0


# ------------------------------------------------------------------------- data
def cli_info(out=print, verify: bool = True) -> int:
    """Print each dataset, where it was found and whether its checksums hold; 0 if all good."""
    from . import data

    status = 0
    env = os.environ.get(data.ENV_DATA)
    missing = " (does not exist)" if env and not Path(env).expanduser().is_dir() else ""
    out(f"{data.ENV_DATA}={env or '(not set)'}{missing}")
    out(f"cache: {data.cache_dir()}")
    out(f"samples: {data.sample_path()}")
    for name in DATASETS:
        rep = data.verify_dataset(name) if verify else data.find_dataset(name)
        details = []
        if not rep["found"]:
            line = f"not found (set {data.ENV_DATA} or run `python -m microcircuit data fetch {name}`)"
        elif not verify:
            line = f"found in {rep['where']}: {rep['folder']} (checksums not checked)"
        else:
            checks = ", ".join(f"{s} {'ok' if e['ok'] else 'MISMATCH'}" for s, e in rep["splits"].items())
            official = "byte-identical to official" if all(f["official"] for f in rep["files"].values()) \
                else "content-verified copy"
            line = f"found in {rep['where']}: {rep['folder']}; checksums: {checks}" + (f" ({official})" if rep["ok"] else "")
            if not rep["ok"]:
                status = 1
                for s, e in rep["splits"].items():
                    if not e["ok"]:
                        detail = e["error"] or f"expected {e['expected_sha256']}, actual {e['sha256']}"
                        details.append(f"  {s}: {detail}")
        out(f"{name:14s} {line}")
        for d in details:
            out(d)
        try:
            data.load_sample(name, "train")
            data.load_sample(name, "test")
            out(f"{'':14s} sample: {data.sample_path(name).name} ok")
        except (data.DatasetNotFoundError, data.DatasetCorruptError) as e:
            status = 1
            out(f"{'':14s} sample: {e}")
    return status


def cli_fetch(name: str, progress: bool = True, out=print) -> int:
    """Download one dataset (or ``"all"``) into the cache; 0 on success, 1 on failure."""
    from . import data

    for n in DATASETS if name == "all" else (name,):
        try:
            paths = data.fetch(n, progress=progress)
        except (data.DatasetNotFoundError, data.DatasetCorruptError) as e:
            out(str(e))
            return 1
        out(f"{n}: {len(paths)} file(s) in {data.cache_dir() / n}")
    return 0


# ----------------------------------------------------------------------- report
def cmd_report(args) -> int:
    """Write the markdown report to ``--out`` or stdout."""
    from .files import ENV_RESULTS, write_atomic
    from .report import load_results, report_markdown

    if args.root is not None and not Path(args.root).is_dir():
        raise FileNotFoundError(2, f"--root {args.root} is not a folder: name the results folder "
                                   f"(default: ${ENV_RESULTS} or data/results)", str(args.root))
    res = load_results(args.root)
    text = report_markdown(res)
    if args.out:
        write_atomic(args.out, text)
        print(f"wrote {args.out}: {len(res.runs)} runs, {len(res.bench)} benchmark files", file=sys.stderr)
    else:
        print(text)
    for p in res.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------ parser
def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    top = Parser(prog="microcircuit", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser("train", help="train a network; checkpoints and logs every epoch")
    train.add_argument("--dataset", choices=DATASETS)
    train.add_argument("--preset", help="named settings (see microcircuit.presets.PRESETS)")
    train.add_argument("--out", required=True, help="run folder (checkpoint.npz, log.json, log.csv)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out: what is not "
                       "given is the run's own; what is given must agree with it, except --lr and --epochs")
    train.add_argument("--checkpoint", help="checkpoint file (default: OUT/checkpoint.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bars (also TQDM_DISABLE=1)")
    train.add_argument("--sample", action="store_true", default=None,
                       help="use the small bundled sample of the dataset")
    train.add_argument("--validation", type=float, help="hold out this many (or fraction of) training "
                       "samples and evaluate on them instead of the test set")
    train.add_argument("--limit", type=_positive_int, help="train on the first N training samples only")
    train.add_argument("--train-eval", type=_count, metavar="N",
                       help="after each epoch also evaluate on the first N training samples (0: off; default 10000)")
    _add_network_options(train)
    train.add_argument("--backend", choices=["numpy", "cupy"])
    train.add_argument("--dtype", choices=["float32", "float64"])
    train.set_defaults(func=cmd_train)

    runs = commands.add_parser("runs", help="run (or resume) every rule of a preset where the book looks for it")
    runs.add_argument("preset", help="a preset name, e.g. mnist-mlp")
    runs.add_argument("--rules", nargs="+", default=["all"], help=f"of {', '.join(RUN_RULES)}, or all (default)")
    runs.add_argument("--seed", type=int, default=0)
    _add_run_options(runs)
    runs.set_defaults(func=cmd_runs)

    sw = commands.add_parser("sweep", help="every (preset, rule, seed) as a resumable run, on Dask workers")
    sw.add_argument("--presets", nargs="+", required=True, help="preset names, e.g. mnist-mlp fashion-mlp")
    sw.add_argument("--rules", nargs="+", default=["all"], help="rule names or all (default)")
    sw.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    sw.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=_count, help="local worker processes (default: one per core; 0: no Dask)")
    _add_run_options(sw)
    sw.set_defaults(func=cmd_sweep)

    bench = commands.add_parser("bench", help="training samples/s and peak memory per rule")
    bench.add_argument("--rules", default=",".join(RUN_RULES), help="comma-separated rule names")
    bench.add_argument("--preset", default="mnist-mlp",
                       help="the network, optimiser and T of this training preset (default mnist-mlp)")
    bench.add_argument("--T", type=_positive_int, nargs="+", help="time steps (default: the preset's)")
    bench.add_argument("--batch-size", type=_positive_int, help="default: the preset's")
    bench.add_argument("--batches", type=_positive_int, default=100, help="timed mini-batches per pass")
    bench.add_argument("--layers", type=_layers, help="dense sizes such as 784,800,10 (default: the preset's)")
    bench.add_argument("--out", help="write the results as JSON here")
    bench.add_argument("--backend", choices=["numpy", "cupy"])
    bench.add_argument("--dtype", choices=["float32", "float64"])
    bench.set_defaults(func=cmd_bench)

    p = commands.add_parser("data", help="list, check and download the datasets")
    sub = p.add_subparsers(dest="data_command", metavar="{info,fetch}")
    sub.required = True
    info = sub.add_parser("info", help="where each dataset is and whether its checksums hold")
    info.add_argument("--no-verify", action="store_true", help="only locate, do not hash")
    info.set_defaults(func=lambda a: cli_info(verify=not a.no_verify))
    get = sub.add_parser("fetch", help="download a dataset into the cache")
    get.add_argument("name", choices=DATASETS + ("all",))
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    get.set_defaults(func=lambda a: cli_fetch(a.name, progress=not a.no_progress))

    rep = commands.add_parser("report", help="tables of the stored results as markdown")
    rep.add_argument("--root", default=None, help="results folder (default: $MICROCIRCUIT_RESULTS or data/results)")
    rep.add_argument("--out", help="write the markdown here (default: print it)")
    rep.set_defaults(func=cmd_report)
    return top


def _one_line(exc: BaseException) -> str:
    """A user's error as the text after ``error:`` (detail lines, as of a dataset's, indented)."""
    if getattr(exc, "dataset", None):  # a DatasetNotFoundError, said in the command line's terms
        from .data import not_found_message

        text = not_found_message(exc.dataset, exc.searched, exc.extra, command_line=True)
    elif isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = exc.strerror if str(exc.filename) in exc.strerror else f"{exc.filename}: {exc.strerror}"
        if exc.errno == errno.ENOSPC:
            text += " (the disk is full): free some space, then rerun with --resume"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, DivergenceError):
        text += " (command line: rerun with --resume and a smaller --lr)"
    first, *rest = text.strip().splitlines() or [""]
    return "\n".join([first] + [line if line.startswith("  ") else "  " + line for line in rest])


def _interrupted(args) -> str:
    """What Ctrl-C left behind, and how to go on."""
    if getattr(args, "command", None) != "train":
        return "interrupted"
    try:
        epochs = json.loads((Path(args.out) / "log.json").read_text()).get("epochs", [])
    except (OSError, ValueError):
        epochs = []
    if not epochs:
        return "interrupted before the first epoch ended: nothing was kept; run the command again"
    return f"interrupted after epoch {epochs[-1]['epoch']}; the checkpoint is kept: rerun with --resume"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler's stop), handled as Ctrl-C is."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM where this process can (the main thread of a CPython
    with signals; not in a browser); returns the previous handler, or ``None``."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError, AttributeError):
        return None


def main(argv=None) -> int:
    """Parse the command line and run the chosen command; returns the exit status (a user's
    mistake: one line and 1, or 2 for a bad option; Ctrl-C: one line and 130; SIGTERM: the
    same line and 143)."""
    previous = _on_sigterm(_raise_terminated)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            _on_sigterm(previous)


def _main(argv=None) -> int:
    args = parser().parse_args(argv)
    name = " ".join(["microcircuit", args.command] + ([args.data_command] if getattr(args, "data_command", None) else []))
    debug = os.environ.get("MICROCIRCUIT_DEBUG", "").strip().lower() not in ("", "0", "no", "false", "off")
    try:
        with warnings.catch_warnings():  # a warning in one line too (restored on return)
            if not debug:
                warnings.showwarning = lambda message, *a, **k: print(f"{name}: warning: {message}", file=sys.stderr)
            return args.func(args)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        print(f"{name}: {_interrupted(args)}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except (UsageError, ValueError, OSError, DivergenceError) as exc:
        if debug:
            raise
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1

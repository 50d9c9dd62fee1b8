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

from .config import CHOICES, NetworkConfig
from .data import DATASETS
from .network import DivergenceError
from .rules import RUN_RULES


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


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _layers(text: str):
    """'784,800,10' -> [784, 800, 10]."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        sizes = None
    if not sizes or len(sizes) < 2 or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"wants comma-separated positive ints such as 784,800,10, got {text!r}")
    return sizes


def _threads(text: str) -> str:
    """A thread count for ``bench --threads``: a positive int or ``all``."""
    if text == "all" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(f"wants a positive int or all, got {text!r}")


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
def cmd_train(args) -> int:
    """Train (or, with ``--resume``, continue) one run, as :func:`microcircuit.runspec.build`
    specifies it from the preset, the typed options and (on a resume) the run's own log."""
    from . import data, runspec, training
    from .files import check_writable

    _setup_backend(args)
    _quiet(args)
    try:
        spec = runspec.build(out=args.out, preset=args.preset, dataset=args.dataset, checkpoint=args.checkpoint,
                             typed={name: getattr(args, name) for name in runspec.fields()}, resume=args.resume,
                             sample=args.sample, validation=args.validation, limit=args.limit,
                             train_eval=args.train_eval)
    except ValueError as err:
        raise UsageError(str(err)) from None
    check_writable(spec.out)  # before any data is read or any epoch trained
    check_writable(spec.checkpoint.parent)
    try:
        arrays = spec.load()
    except (ValueError, TypeError) as err:  # e.g. a --validation larger than the training set
        if isinstance(err, data.DatasetCorruptError):
            raise
        raise UsageError(str(err)) from None
    log = training.train(spec, quiet=args.quiet, arrays=arrays)
    last = log["epochs"][-1] if log["epochs"] else {}
    print(json.dumps({"out": str(args.out), "epoch": last.get("epoch"), "train_accuracy": last.get("train_accuracy"),
                      "test_accuracy": last.get("test_accuracy"), "wall_seconds": log.get("wall_seconds")}))
    return 0


# ------------------------------------------------------------------ runs, sweep
def _run_tasks(name, task_list, args, workers) -> int:
    from . import sweep

    out = sweep.run(task_list, scheduler=getattr(args, "scheduler", None), workers=workers, results=args.results,
                    runs=args.runs, source="sample" if args.sample else "full", epochs=args.epochs,
                    progress=not args.quiet, connect_timeout=getattr(args, "connect_timeout", None))
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
def cmd_probe(args) -> int:
    """A few short epochs of a preset on a part of the training set, with each layer's activity."""
    from . import probe

    _setup_backend(args)
    try:
        settings = probe.parse_settings(args.set)
    except ValueError as err:
        raise UsageError(str(err)) from None
    probe.probe(args.preset, args.rule, settings=settings, train=args.train, val=args.val,
                train_eval=args.train_eval, epochs=args.epochs, seed=args.seed, verify=not args.no_verify,
                source="sample" if args.sample else "auto", echo=lambda text: print(text, flush=True))
    return 0


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
        if args.rounds:  # wall clock at each thread count, interleaved rounds of fresh processes
            threads = [None if t == "all" else int(t) for t in (args.threads or ["1", "all"])]
            rows = bench.compare(rules=rules, Ts=args.T or [None], threads=threads, rounds=args.rounds,
                                 batch_size=args.batch_size, batches=args.batches, layers=args.layers,
                                 preset=args.preset, out=args.out)
            print(bench.format_comparison(rows))
            return 0
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

    from .environment import folder

    status = 0
    env = folder(data.ENV_DATA)  # one naming a file is an error naming it
    missing = " (does not exist)" if env and not env.is_dir() else ""
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
        except data.DatasetNotFoundError as e:  # the advice in the command line's terms
            out(data.not_found_message(e.dataset, e.searched, e.extra, command_line=True))
            return 1
        except data.DatasetCorruptError as e:
            out(str(e))
            return 1
        out(f"{n}: {len(paths)} file(s) in {data.cache_dir() / n}")
    return 0


# ----------------------------------------------------------------------- report
def cmd_report(args) -> int:
    """Write the markdown report to ``--out`` or stdout."""
    from .environment import folder
    from .files import ENV_RESULTS, write_atomic
    from .report import load_results, report_markdown

    if args.root is not None and not Path(args.root).is_dir():
        raise FileNotFoundError(2, f"--root {args.root} is not a folder: name the results folder "
                                   f"(default: ${ENV_RESULTS} or data/results)", str(args.root))
    env = folder(ENV_RESULTS) if args.root is None else None  # a file is refused there, as --root is
    if env is not None and not env.is_dir():
        raise FileNotFoundError(2, f"{ENV_RESULTS}={str(env)!r} is not a folder: set it to the results folder, "
                                   f"or unset it (data/results)", str(env))
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
    sw.add_argument("--connect-timeout", type=_seconds, metavar="SECONDS",
                    help="how long the --scheduler has to answer (default: Dask's connect timeout, 30 s)")
    _add_run_options(sw)
    sw.set_defaults(func=cmd_sweep)

    pr = commands.add_parser("probe", help="a few short epochs of a preset: accuracy and each layer's activity")
    pr.add_argument("preset", help="a preset name (microcircuit.presets.PRESETS)")
    pr.add_argument("--rule", default="microcircuit", choices=RUN_RULES)
    pr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override the preset's Network settings")
    pr.add_argument("--train", type=_positive_int, default=10_000, help="training images (the first ones)")
    pr.add_argument("--val", type=_positive_int, default=2_000, help="validation images (the last training ones)")
    pr.add_argument("--train-eval", type=_positive_int, default=2_000, help="training images evaluated after each epoch")
    pr.add_argument("--epochs", type=_positive_int, default=3)
    pr.add_argument("--seed", type=_count, default=0)
    pr.add_argument("--no-verify", action="store_true",
                    help="skip the dataset's count and checksum check (a subset, e.g. carried to a GPU machine)")
    pr.add_argument("--sample", action="store_true", help="the bundled sample of the dataset (a quick trial)")
    pr.add_argument("--backend", choices=["numpy", "cupy"])
    pr.add_argument("--dtype", choices=["float32", "float64"])
    pr.set_defaults(func=cmd_probe)

    bench = commands.add_parser("bench", help="training samples/s and peak memory per rule")
    bench.add_argument("--rules", default=",".join(RUN_RULES), help="comma-separated rule names")
    bench.add_argument("--rounds", type=_positive_int, help="compare wall-clock samples/s as a user would: this many "
                       "interleaved rounds, a fresh process per measurement, at each --threads (with the spread)")
    bench.add_argument("--threads", nargs="+", metavar="N", type=_threads,
                       help="with --rounds: thread counts, ints or all (default: 1 all)")
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
    from .logs import read_log

    if getattr(args, "command", None) in ("runs", "sweep"):
        return ("interrupted: the finished runs and the others' last epochs are kept; run the same command "
                "again to go on")
    if getattr(args, "command", None) != "train":
        return "interrupted"
    log, _problem = read_log(Path(args.out) / "log.json")
    epochs = log["epochs"] if log else []
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
    from .environment import DEBUG, flag

    try:
        debug = flag(DEBUG, default=False)
    except ValueError as exc:  # a bad MICROCIRCUIT_DEBUG: said, as any other variable is
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
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

"""Results of the full training runs and benchmarks: tables, figures and a markdown report.

Full runs (:func:`microcircuit.training.run`) write ``<root>/<dataset>/<preset>/<rule>/seed-<k>/log.json``;
benchmarks (:func:`microcircuit.bench.run`) write ``<root>/bench/<name>.json``. This module
reads them and never trains anything::

    from microcircuit import plots, report
    results = report.load_results()            # the bundled results (data/results in a checkout)
    report.accuracy_table(results)             # a Table: list of dicts, shown as HTML
    plots.learning_curves(results, "mnist")    # figures of the results live in plots

    python -m microcircuit report --out data/results/REPORT.md

A missing results folder, a missing run or an unreadable log is not an error: tables mark
missing runs as ``missing``, and :func:`missing_message` says which command produces them.
Numbers always come from the logs; nothing here is typed in by hand.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import rules as _rules
from .data import DATASETS, LABELS
from .files import results_dir, shown
from .presets import own_settings, preset_for, runs_command
from .rules import RULES

MISSING = "missing"

# Test error (%) of non-spiking networks in the BioTorch benchmark (Sanfiz and Akrout 2021),
# as given in the project's model specification, per dataset in DATASETS order, on these networks:
BIOTORCH_NETWORKS = ("LeNet", "LeNet", "ResNet-20")
BIOTORCH_TEST_ERROR = (
    ("BP", 0.91, 9.20, 8.63),
    ("FA", 1.70, 13.06, 32.16),
    ("DFA", 1.61, 12.81, 45.94),
    ("sign-concordant (uniform)", 0.94, 9.69, 10.05),
    ("sign-concordant (fixed random)", 0.97, 9.61, 11.20),
)


def _order(order):
    """Sort key: position in ``order`` first, then alphabetical for the rest."""
    return lambda v: (order.index(v) if v in order else len(order), v)


# ------------------------------------------------------------------------ loading
@dataclass
class Results:
    """Everything found under a results folder.

    runs : one dict per run folder: ``dataset``, ``preset``, ``rule``, ``path``, ``status``,
        ``config``, ``provenance``, ``epochs`` (the per-epoch records), ``wall_seconds``.
    bench : one dict per benchmark file: ``name``, ``path``, ``provenance``, ``results``.
    problems : unreadable files, as ``"path: reason"`` lines (they are skipped, not fatal).
    """

    root: Path
    runs: list = field(default_factory=list)
    bench: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.runs and not self.bench

    def datasets(self) -> list[str]:
        """Datasets with at least one run, in book order."""
        return sorted({r["dataset"] for r in self.runs}, key=_order(DATASETS))

    def presets(self, dataset: str) -> list[str]:
        return sorted({r["preset"] for r in self.runs if r["dataset"] == dataset})

    def select(self, dataset=None, preset=None, rules=None) -> list[dict]:
        """Runs matching ``dataset`` / ``preset`` / ``rules`` (``None``: any), in table order."""
        return [r for r in self.runs if (dataset is None or r["dataset"] == dataset)
                and (preset is None or r["preset"] == preset) and (rules is None or r["rule"] in rules)]


def _status(log: dict) -> str:
    status = str(log.get("status", "unknown"))
    return status.split(":", 1)[0].strip() or "unknown"


def _read_json(path: Path, problems: list):
    """Parsed JSON of ``path``, or ``None`` with a line in ``problems``."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: {type(exc).__name__}: {exc}")
        return None


def load_results(root=None, seeds=(0,)) -> Results:
    """Read every ``<dataset>/<preset>/<rule>/seed-<k>/log.json`` and ``bench/*.json`` under ``root``.

    ``root`` defaults to :func:`results_dir`; ``seeds`` picks the seeds read (``None``: all).
    A log straight in ``<rule>/`` (the layout before seeds) is read as its seed. A folder that
    does not exist gives empty :class:`Results`; unreadable files are listed in ``problems``
    and skipped.
    """
    root = Path(root) if root is not None else results_dir()
    res = Results(root=root)
    if not root.is_dir():
        return res
    found = [(p, p.parent.parent) for p in root.glob("*/*/*/seed-*/log.json")]
    found += [(p, p.parent) for p in root.glob("*/*/*/log.json")]
    for log_path, rule_dir in sorted(found):
        dataset, preset, rule = rule_dir.parent.parent.name, rule_dir.parent.name, rule_dir.name
        if dataset == "bench":
            continue
        log = _read_json(log_path, res.problems)
        if log is None:
            continue
        if not isinstance(log, dict) or not isinstance(log.get("epochs", []), list):
            res.problems.append(f"{log_path}: not a training log (no list of epochs)")
            continue
        seed = log_path.parent.name.removeprefix("seed-") if log_path.parent != rule_dir else None
        seed = int(seed) if seed is not None and seed.isdigit() else (log.get("provenance") or {}).get("seed", 0)
        if seeds is not None and seed not in seeds:
            continue
        epochs = sorted((e for e in log.get("epochs", []) if isinstance(e, dict) and "epoch" in e),
                        key=lambda e: e["epoch"])
        res.runs.append({
            "dataset": dataset, "preset": preset, "rule": rule, "seed": seed, "path": str(log_path.parent),
            "status": _status(log), "config": log.get("config", {}),
            "provenance": log.get("provenance", {}), "epochs": epochs,
            "wall_seconds": log.get("wall_seconds", sum(e.get("seconds", 0) for e in epochs)),
        })
    res.runs.sort(key=lambda r: (_order(DATASETS)(r["dataset"]), r["preset"],
                                 _rules.order(r["rule"]), r["seed"]))
    for path in sorted((root / "bench").glob("*.json")):
        doc = _read_json(path, res.problems)
        if doc is None:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            res.problems.append(f"{path}: not a benchmark file (no list of results)")
            continue
        res.bench.append({"name": path.stem, "path": str(path), "provenance": doc.get("provenance", {}),
                          "results": doc["results"]})
    return res


def as_results(results) -> Results:
    if isinstance(results, Results):
        return results
    return load_results(results)


# ------------------------------------------------------------------------- tables
class Table(list):
    """A list of row dicts that shows itself as a table (HTML in a notebook, markdown as text).

    ``columns`` is a list of ``(key, header, format)``; ``format`` is a function of the value
    (``None`` values show as an em dash).
    """

    def __init__(self, rows=(), columns=(), title: str = ""):
        super().__init__(rows)
        self.columns = list(columns)
        self.title = title

    def _cells(self):
        for row in self:
            yield [("\u2014" if row.get(k) is None else fmt(row.get(k))) for k, _, fmt in self.columns]

    def markdown(self) -> str:
        """The table as GitHub-flavoured markdown (``(no results)`` when it has no rows)."""
        if not self.columns or not len(self):
            return "(no results)"
        head = [h for _, h, _ in self.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for cells in self._cells():
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)

    def html(self) -> str:
        """The table as an HTML ``<table>`` (a note when it has no rows)."""
        if not len(self):
            return "<p><em>(no results)</em></p>"
        head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                       for cells in self._cells())
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_html_(self):
        return self.html()

    def __repr__(self):
        return self.markdown()

    __str__ = __repr__


def _pct(v):
    return f"{100 * v:.2f}"


def _num(digits):
    return lambda v: f"{v:.{digits}f}"


def _duration(seconds):
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _angles(v):
    return " / ".join(f"{a:.1f}" for a in v)


def expected_pairs(res: Results, expected):
    pairs = [(r["dataset"], r["preset"]) for r in res.runs]
    for pair in expected or ():
        pairs.append(tuple(pair))
    seen, out = set(), []
    for p in sorted(pairs, key=lambda p: (_order(DATASETS)(p[0]), p[1])):
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _missing_row(dataset, preset, rule):
    return {"dataset": dataset, "preset": preset, "rule": rule, "status": MISSING, "epochs": 0,
            "planned_epochs": None, "final_accuracy": None, "final_train_accuracy": None,
            "best_accuracy": None, "best_epoch": None,
            "final_error_pct": None, "final_loss": None, "wall_seconds": None, "backend": None,
            "own_settings": None, "path": None}


def _settings(own: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in own.items())


def accuracy_row(run: dict) -> dict:
    """Final and best test accuracy of one run (fractions in [0, 1]), epochs and wall time."""
    evaluated = [e for e in run["epochs"] if e.get("test_accuracy") is not None]
    last = evaluated[-1] if evaluated else None
    best = max(evaluated, key=lambda e: (e["test_accuracy"], -e["epoch"])) if evaluated else None
    return {
        "dataset": run["dataset"], "preset": run["preset"], "rule": run["rule"], "status": run["status"],
        "epochs": run["epochs"][-1]["epoch"] if run["epochs"] else 0,
        "planned_epochs": run["config"].get("epochs"),
        "final_accuracy": last["test_accuracy"] if last else None,
        "final_train_accuracy": last.get("train_accuracy") if last else None,
        "best_accuracy": best["test_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_error_pct": round(100 * (1 - last["test_accuracy"]), 4) if last else None,
        "final_loss": last.get("test_loss") if last else None,
        "wall_seconds": run.get("wall_seconds"),
        "backend": run["provenance"].get("backend"),
        "own_settings": own_settings(run["preset"], run["config"]),
        "path": run["path"],
    }


def _rows_by_pair(res: Results, rules, expected, row_fn, missing_fn, datasets=None):
    rows = []
    for dataset, preset in expected_pairs(res, expected):
        if datasets is not None and dataset not in datasets:
            continue
        found = {r["rule"]: r for r in res.select(dataset, preset)}
        names = list(rules or ()) + sorted((n for n in found if n not in (rules or ())), key=_rules.order)
        for rule in names:
            rows.append(row_fn(found[rule]) if rule in found else missing_fn(dataset, preset, rule))
    return rows


def accuracy_table(results=None, rules=RULES, expected=None, datasets=None) -> Table:
    """Final and best test accuracy per dataset / preset / rule, epochs and wall time.

    results : :class:`Results` or a results folder (default :func:`results_dir`).
    rules : the rules every (dataset, preset) should have; absent ones get a row with status
        ``"missing"``. Runs of other rules (say ``microcircuit-spiking``) follow them.
    expected : extra ``(dataset, preset)`` pairs to list even if none of their runs exists.
    datasets : only these datasets (default: all).

    Rows are dicts with ``dataset``, ``preset``, ``rule``, ``status``, ``epochs``,
    ``planned_epochs``, ``final_accuracy``, ``final_train_accuracy`` (on the first training
    images, as evaluated on the test set; ``None`` for logs that predate it),
    ``best_accuracy`` (fractions), ``best_epoch``,
    ``final_error_pct`` (test error, %), ``gap_to_bp_pct`` (test error minus BP's in the same
    dataset and preset, percentage points; only when both runs are ``done``), ``final_loss``, ``wall_seconds``, ``backend``,
    ``own_settings`` (:func:`microcircuit.presets.own_settings`), ``path``; ordered by
    dataset (MNIST, Fashion-MNIST, CIFAR-10), preset, then rule (BP, FA, DFA, SC-FA,
    microcircuit).
    """
    res = as_results(results)
    rows = _rows_by_pair(res, rules, expected, accuracy_row, _missing_row, datasets)
    # gaps only between finished runs: a run in progress is not comparable with a finished one
    bp_error = {(r["dataset"], r["preset"]): r["final_error_pct"] for r in rows
                if r["rule"] == "bp" and r["status"] == "done"}
    for r in rows:
        base = bp_error.get((r["dataset"], r["preset"]))
        r["gap_to_bp_pct"] = (round(r["final_error_pct"] - base, 4)
                              if base is not None and r["final_error_pct"] is not None and r["status"] == "done"
                              else None)
    columns = [
        ("dataset", "dataset", lambda v: LABELS.get(v, v)),
        ("preset", "preset", str),
        ("rule", "rule", _rules.label),
        ("epochs", "epochs", lambda v: str(v)),
        ("final_accuracy", "final test acc. (%)", _pct),
        ("final_train_accuracy", "final train acc. (%)", _pct),
        ("best_accuracy", "best test acc. (%)", _pct),
        ("best_epoch", "best epoch", str),
        ("gap_to_bp_pct", "error − BP's (pp)", lambda v: f"{v:+.2f}"),
        ("wall_seconds", "training time", _duration),
        ("status", "status", str),
        ("own_settings", "own settings", _settings),
    ]
    return Table(rows, columns, title="Test accuracy")


def alignment_row(run: dict) -> dict:
    """Angle (degrees) between the run's update and BP's, per plastic layer: first and last epoch."""
    with_angles = [e for e in run["epochs"] if e.get("alignment_deg")]
    first = with_angles[0] if with_angles else None
    last = with_angles[-1] if with_angles else None
    mean = None
    if with_angles:
        n = len(last["alignment_deg"])
        mean = [round(sum(e["alignment_deg"][k] for e in with_angles if len(e["alignment_deg"]) == n)
                      / sum(1 for e in with_angles if len(e["alignment_deg"]) == n), 3) for k in range(n)]
    return {"dataset": run["dataset"], "preset": run["preset"], "rule": run["rule"], "status": run["status"],
            "epochs": last["epoch"] if last else 0,
            "first_deg": first["alignment_deg"] if first else None,
            "final_deg": last["alignment_deg"] if last else None,
            "mean_deg": mean}


def alignment_table(results=None, rules=RULES, expected=None, datasets=None) -> Table:
    """Alignment with BP per run: the angle per plastic layer (input side first), in degrees.

    Rows: ``dataset``, ``preset``, ``rule``, ``status``, ``epochs``, ``first_deg`` (after
    epoch 1), ``final_deg`` (after the last epoch) and ``mean_deg`` (over epochs), each a
    list with one angle per plastic layer (the output layer's is 0 for every rate-mode rule:
    all share the output error; the spiking microcircuit's is a noisy estimate). Missing
    runs, ``expected`` and ``datasets`` as in :func:`accuracy_table`.
    """
    res = as_results(results)

    def missing(dataset, preset, rule):
        return {"dataset": dataset, "preset": preset, "rule": rule, "status": MISSING, "epochs": 0,
                "first_deg": None, "final_deg": None, "mean_deg": None}

    rows = _rows_by_pair(res, rules, expected, alignment_row, missing, datasets)
    columns = [
        ("dataset", "dataset", lambda v: LABELS.get(v, v)),
        ("preset", "preset", str),
        ("rule", "rule", _rules.label),
        ("first_deg", "angle to BP after epoch 1 (°, per layer)", _angles),
        ("final_deg", "angle to BP, last epoch (°, per layer)", _angles),
        ("mean_deg", "mean over epochs (°, per layer)", _angles),
        ("status", "status", str),
    ]
    return Table(rows, columns, title="Alignment with backpropagation")


def _network(r: dict):
    """A benchmark row's network: its ``network`` name, else its dense layer sizes joined by ``-``."""
    return r.get("network") or "-".join(str(v) for v in r.get("layers") or ()) or None


def bench_table(results=None, rules=RULES) -> Table:
    """Training throughput and peak memory from every ``bench/*.json``.

    Rows: ``source`` (file name), ``machine``, ``backend``, ``dtype``, ``rule``, ``T``,
    ``batch_size``, ``layers`` (the network: dense sizes or a preset's name),
    ``samples_per_s``, ``speed_vs_bp`` (throughput relative to BP in the same file at the same
    T, batch size and network; ``None`` without a BP row), ``peak_array_mb``, ``peak_rss_mb``.
    Ordered by file, T, then rule.
    """
    res = as_results(results)
    rows = []
    for doc in sorted(res.bench, key=lambda d: d["name"]):
        entries = [r for r in doc["results"] if isinstance(r, dict) and "rule" in r]
        bp = {(r.get("T"), r.get("batch_size"), _network(r)): r.get("samples_per_s")
              for r in entries if r["rule"] == "bp"}
        entries.sort(key=lambda r: (r.get("T") or 0, _order(tuple(rules))(r["rule"])))
        for r in entries:
            base = bp.get((r.get("T"), r.get("batch_size"), _network(r)))
            sps = r.get("samples_per_s")
            rows.append({
                "source": doc["name"], "machine": doc["provenance"].get("machine"),
                "backend": r.get("backend"), "dtype": r.get("dtype"), "rule": r["rule"], "T": r.get("T"),
                "batch_size": r.get("batch_size"), "layers": _network(r),
                "samples_per_s": sps,
                "speed_vs_bp": round(sps / base, 3) if base and sps is not None else None,
                "peak_array_mb": r.get("peak_array_mb"), "peak_rss_mb": r.get("peak_rss_mb"),
            })
    columns = [
        ("source", "file", str), ("backend", "backend", str), ("rule", "rule", _rules.label), ("T", "T", str),
        ("batch_size", "batch", str), ("layers", "network", str), ("samples_per_s", "samples/s", _num(0)),
        ("speed_vs_bp", "speed vs BP", lambda v: f"{v:.2f}x"), ("peak_array_mb", "peak arrays (MB)", _num(1)),
        ("peak_rss_mb", "peak RSS (MB)", _num(0)),
    ]
    return Table(rows, columns, title="Training speed and memory")


def provenance_table(results=None) -> Table:
    """Distinct provenance records of the runs: version, commit, backend, dtype, machine, data."""
    res = as_results(results)
    seen = {}
    for run in res.runs:
        p = run["provenance"]
        key = tuple(str(p.get(k)) for k in ("library_version", "git_commit", "backend", "dtype", "machine",
                                            "dataset", "data_checksum"))
        entry = seen.setdefault(key, {"library_version": p.get("library_version"), "git_commit": p.get("git_commit"),
                                      "backend": p.get("backend"), "dtype": p.get("dtype"), "machine": p.get("machine"),
                                      "dataset": p.get("dataset") or run["dataset"],
                                      "data_checksum": p.get("data_checksum"), "runs": 0})
        entry["runs"] += 1
    columns = [("dataset", "dataset", str), ("runs", "runs", str), ("library_version", "version", str),
               ("git_commit", "commit", lambda v: str(v)[:12] + ("-dirty" if str(v).endswith("-dirty") else "")),
               ("backend", "backend", str), ("dtype", "dtype", str), ("machine", "machine", str),
               ("data_checksum", "data checksum", lambda v: str(v)[:12])]
    return Table(list(seen.values()), columns, title="Provenance")


def biotorch_table() -> Table:
    """The BioTorch reference figures (test error %, non-spiking networks; Sanfiz and Akrout 2021)."""
    rows = [{"method": method, **dict(zip(DATASETS, errors))} for method, *errors in BIOTORCH_TEST_ERROR]
    columns = [("method", "method", str)] + [(d, f"{LABELS[d]}, {net}", _num(2))
                                             for d, net in zip(DATASETS, BIOTORCH_NETWORKS)]
    return Table(rows, columns, title="BioTorch benchmark, test error (%), non-spiking networks")


# ----------------------------------------------------------------- missing results
def missing_message(results=None, dataset: str | None = None, preset: str | None = None,
                    rules=RULES, commands=None) -> str:
    """Which runs are absent (``dataset``'s, or every dataset's) and the commands that produce them.

    ``preset`` defaults to :func:`microcircuit.presets.preset_for` of each dataset. ``commands`` replaces the
    generated command lines.
    """
    res = as_results(results)
    datasets = [dataset] if dataset else list(DATASETS)
    absent, lines = [], []
    for ds in datasets:
        pr = preset or preset_for(ds)
        have = {r["rule"] for r in res.select(ds, pr)}
        missing = [rule for rule in rules if rule not in have]
        absent += [(ds, rule) for rule in missing]
        if missing and pr is not None:
            lines.append("  " + runs_command(pr, None if len(missing) == len(rules) else missing))
        elif missing:
            lines.append(f"  (no preset of the library trains {ds} yet)")
    if not absent:
        return f"All runs are present in {shown(res.root)}."
    if commands is not None:
        lines = ["  " + c for c in ([commands] if isinstance(commands, str) else commands)]
    where = shown(res.root) if res.root.is_dir() else f"{shown(res.root)} (the folder does not exist)"
    label = f" for {LABELS.get(dataset, dataset)}" if dataset else ""
    head = f"Results missing{label} in {where}: {len(absent)} of {len(datasets) * len(rules)} runs absent."
    tail = ("Then `python -m microcircuit report --out data/results/REPORT.md` and rebuild the book. "
            "The command resumes interrupted runs.")
    return "\n".join([head, "Produce them with:", *lines, tail])


# ------------------------------------------------------------------------ report
def report_markdown(results=None) -> str:
    """The whole report as markdown: accuracy, alignment, speed, provenance, BioTorch reference."""
    res = as_results(results)
    parts = ["# Results", "",
             (f"Generated by `python -m microcircuit report` from `{shown(res.root)}`. Every number below is read "
              "from the logs that the runs wrote (`log.json`, `bench/*.json`)."), ""]
    if not res.runs:
        parts += ["No training runs found.", "", "```", missing_message(res), "```", ""]
    else:
        parts += ["## Test accuracy", "",
                  ("All rules of a preset share its seed, data and settings; *own settings* names any in "
                   "which a run differs from its preset in `microcircuit/presets.py` (none should). "
                   "*Final train acc.* is the accuracy on the first 10,000 training images, evaluated as the "
                   "test set is (no augmentation): far above the test accuracy means overfitting; close to it, "
                   "and itself low, means the network underfits."), "",
                  accuracy_table(res).markdown(), "",
                  "## Alignment with backpropagation", "",
                  ("Angle between each rule's weight update and BP's on the same mini-batch, per plastic "
                   "layer (input side first; the output layer's is 0 for every rate-mode rule, since all use "
                   "the output error exactly; in spiking mode it is a noisy estimate)."), "",
                  alignment_table(res).markdown(), ""]
    parts += ["## Speed and memory", ""]
    bench = bench_table(res)
    no_bench = "No benchmark results (`python -m microcircuit bench --out data/results/bench/cpu.json`)."
    parts += [bench.markdown() if bench else no_bench, ""]
    if res.runs:
        parts += ["## Provenance", "", provenance_table(res).markdown(), ""]
    parts += ["## Reference: BioTorch (non-spiking networks)", "",
              "Test error (%) reported by Sanfiz and Akrout (2021); not produced by this library.", "",
              biotorch_table().markdown(), ""]
    if res.problems:
        parts += ["## Unreadable files", ""] + [f"- {p}" for p in res.problems] + [""]
    return "\n".join(parts)

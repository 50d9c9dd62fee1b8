"""Results of the full training runs and benchmarks: tables, figures and a markdown report.

Full runs (:func:`microcircuit.training.run`) write ``<root>/<dataset>/<preset>/<rule>/seed-<k>/log.json``;
benchmarks (:func:`microcircuit.bench.run`) write ``<root>/bench/<name>.json``. This module
reads them and never trains anything::

    from microcircuit import plots, report
    results = report.load_results()            # the bundled results, every seed (data/results in a checkout)
    report.accuracy_table(results)             # a Table: mean ± sd over seeds, per seed, paired gap to BP
    report.equivalence_table(results)          # microcircuit and SC-FA logs, seed by seed: bit-identical?
    print(report.headline(results))            # the headline numbers the chapters print
    plots.learning_curves(results, "mnist")    # figures of the results live in plots

    python -m microcircuit report --out data/results/REPORT.md

A missing results folder, a missing run or an unreadable log is not an error: tables mark
missing runs as ``missing`` and runs in progress as ``running`` (never averaged in), and
:func:`missing_message` says which command produces them. The statistics over seeds are
:mod:`microcircuit.seeds`'s.
Numbers always come from the logs; nothing here is typed in by hand.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from . import rules as _rules
from . import seeds as _seeds
from .data import DATASETS, LABELS
from .files import results_dir, shown
from .logs import check_log
from .presets import DEPTH_STUDY, hidden_layers, own_settings, preset_for, runs_command
from .presets import preset as preset_spec
from .rules import FEEDBACK_RULES, RUN_RULES
from .seeds import MISSING  # noqa: F401 - report.MISSING marks a missing run in every table


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

    runs : one dict per run folder: ``dataset``, ``preset``, ``rule``, ``seed``, ``path``,
    ``status``, ``config``, ``provenance``, ``segments`` (the provenance of every call that
    trained epochs), ``epochs`` (the per-epoch records), ``wall_seconds``.
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

    def seeds(self, dataset: str, preset: str, rule: str | None = None) -> list[int]:
        """The seeds with a run of ``rule`` (any rule: ``None``) in ``dataset`` / ``preset``."""
        return sorted({r["seed"] for r in self.select(dataset, preset, None if rule is None else (rule,))})

    def by_seed(self, dataset: str, preset: str, rule: str) -> dict:
        """``{seed: run}`` of one rule in one dataset / preset."""
        return {r["seed"]: r for r in self.select(dataset, preset, (rule,))}


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


def load_results(root=None, seeds=None) -> Results:
    """Read every ``<dataset>/<preset>/<rule>/seed-<k>/log.json`` and ``bench/*.json`` under ``root``.

    ``root`` defaults to :func:`~microcircuit.files.results_dir`; ``seeds`` picks the seeds read (default: all).
    A log straight in ``<rule>/`` (the layout before seeds) is read as its seed. A folder that
    does not exist gives empty :class:`Results`; unreadable files, and JSON that is not a run's log
    (:func:`microcircuit.logs.check_log`), are listed in ``problems`` and skipped.
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
        problem = check_log(log)  # the one schema of a log: training reads it too
        if problem:
            res.problems.append(f"{log_path}: not a run's log ({problem})")
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
            "provenance": log.get("provenance", {}), "segments": log.get("segments", []), "epochs": epochs,
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


def _num(digits, scale=1):
    return lambda v: f"{scale * v:.{digits}f}"


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


def _settings(own: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in own.items())


def accuracy_row(run: dict) -> dict:
    """Final and best test accuracy of one run (fractions in [0, 1]), epochs and wall time."""
    evaluated = [e for e in run["epochs"] if e.get("test_accuracy") is not None]
    last = evaluated[-1] if evaluated else None
    best = max(evaluated, key=lambda e: (e["test_accuracy"], -e["epoch"])) if evaluated else None
    return {
        "dataset": run["dataset"], "preset": run["preset"], "rule": run["rule"], "seed": run.get("seed", 0),
        "status": run["status"],
        "epochs": run["epochs"][-1]["epoch"] if run["epochs"] else 0,
        "planned_epochs": run["config"].get("epochs"),
        "final_accuracy": last["test_accuracy"] if last else None,
        "final_train_accuracy": last.get("train_accuracy") if last else None,
        "best_accuracy": best["test_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_error_pct": round(100 * (1 - last["test_accuracy"]), 4) if last else None,
        "final_loss": last.get("test_loss") if last else None,
        "wall_seconds": run.get("wall_seconds"),
        "backend": _seeds.provenance_values(run, "backend"),
        "own_settings": own_settings(run["preset"], run["config"]),
        "path": run["path"],
    }


def summary_row(dataset: str, preset: str, rule: str, runs: dict, expected=()) -> dict:
    """One rule of one preset over its seeds (``runs``: ``{seed: run}``); ``expected``: the
    seeds it should have. Means and sds are over the finished seeds only."""
    per_run = {s: accuracy_row(r) for s, r in runs.items()}
    done = {s: per_run[s] for s in _seeds.finished(runs)}
    acc = _seeds.spread({s: r["final_accuracy"] for s, r in done.items()})
    train = _seeds.spread({s: r["final_train_accuracy"] for s, r in done.items()
                           if r["final_train_accuracy"] is not None})
    best = _seeds.spread({s: r["best_accuracy"] for s, r in done.items()})
    wall = _seeds.spread({s: r["wall_seconds"] for s, r in done.items() if r["wall_seconds"] is not None})
    first = per_run[min(per_run)] if per_run else {}
    return {
        "dataset": dataset, "preset": preset, "rule": rule, "status": _seeds.status(runs, expected),
        "seeds": acc["seeds"], "n_seeds": acc["n"],
        "per_seed": {s: r["final_accuracy"] for s, r in sorted(per_run.items())},
        "per_seed_text": _seeds.per_seed_text(runs, expected) if runs else None,
        "epochs": max((r["epochs"] for r in per_run.values()), default=0),
        "planned_epochs": first.get("planned_epochs"),
        "final_accuracy": acc["mean"], "final_accuracy_sd": acc["sd"], "accuracy_text": _seeds.mean_sd_text(acc),
        "final_train_accuracy": train["mean"], "best_accuracy": best["mean"],
        "errors_pct": {s: 100 * (1 - r["final_accuracy"]) for s, r in done.items()},
        "final_error_pct": None if acc["mean"] is None else round(100 * (1 - acc["mean"]), 4),
        "wall_seconds": wall["mean"], "backend": first.get("backend"), "own_settings": first.get("own_settings"),
        "path": first.get("path"),
    }


def _rows_by_pair(res: Results, rules, expected, row_fn, datasets=None):
    rows = []
    for dataset, preset in expected_pairs(res, expected):
        if datasets is not None and dataset not in datasets:
            continue
        found = {r["rule"] for r in res.select(dataset, preset)}
        names = list(rules or ()) + sorted((n for n in found if n not in (rules or ())), key=_rules.order)
        seeds = res.seeds(dataset, preset) or [0]
        for rule in names:
            rows.append(row_fn(dataset, preset, rule, res.by_seed(dataset, preset, rule), seeds))
    return rows


def _add_gaps(rows):
    """Each row's paired gap to rate-BP's test error (``gap_*``) and to BPTT's (``bptt_gap_*``) over
    the seeds both finished, in percentage points."""
    _add_gap(rows, "bp", "gap_to_bp_pct", "gap_")
    _add_gap(rows, "bptt", "gap_to_bptt_pct", "bptt_gap_")
    return rows


def _add_gap(rows, base: str, mean_key: str, p: str):
    """``mean_key`` and ``{p}sd``, ``{p}n``, ``{p}seeds``, ``{p}low``, ``{p}high``, ``{p}verdict``,
    ``{p}text``: each row's test error minus ``base``'s, paired by seed."""
    errors = {(r["dataset"], r["preset"]): r["errors_pct"] for r in rows if r["rule"] == base}
    for r in rows:
        ref = errors.get((r["dataset"], r["preset"])) or {}
        gap = _seeds.paired_gap(r["errors_pct"], ref) if r["rule"] != base else None
        r.update({mean_key: None, f"{p}sd": None, f"{p}n": 0, f"{p}seeds": [], f"{p}low": None, f"{p}high": None,
                  f"{p}verdict": None, f"{p}text": None})
        if r["rule"] == base and r["errors_pct"]:
            r.update({mean_key: 0.0, f"{p}n": len(r["errors_pct"]), f"{p}text": "(baseline)"})
        elif gap is not None:
            sd = None if math.isnan(gap["sd"]) else gap["sd"]
            r.update({mean_key: round(gap["mean"], 4), f"{p}sd": sd, f"{p}n": gap["n"], f"{p}seeds": gap["seeds"],
                      f"{p}low": None if math.isnan(gap["low"]) else gap["low"],
                      f"{p}high": None if math.isnan(gap["high"]) else gap["high"],
                      f"{p}verdict": _seeds.gap_sentence(_rules.label(r["rule"]), gap, base),
                      f"{p}text": f"{gap['mean']:+.2f}" + ("" if sd is None else f" ± {sd:.2f}")
                      + f" ({gap['n']} seed{'s' if gap['n'] > 1 else ''})"})


def accuracy_table(results=None, rules=FEEDBACK_RULES, expected=None, datasets=None) -> Table:
    """Test accuracy per dataset / preset / rule over seeds: mean ± sd, per seed, gap to BP.

    results : :class:`Results` or a results folder (default :func:`~microcircuit.files.results_dir`).
    rules : the rules every (dataset, preset) should have; absent ones get a row with status
    ``"missing"``. Runs of other rules (say ``microcircuit-spiking``) follow them.
    expected : extra ``(dataset, preset)`` pairs to list even if none of their runs exists.
    datasets : only these datasets (default: all).

    A preset's expected seeds are those any of its rules has. Means and sds are over the
    seeds whose run is ``done`` (``n_seeds`` of them; ``sd`` is ``None`` for one), never
    over runs in progress; ``status`` counts the seeds' states (``"2 done, 1 running"``) and
    ``per_seed_text`` shows each. Rows are dicts with ``dataset``, ``preset``, ``rule``,
    ``status``, ``seeds``, ``n_seeds``, ``per_seed`` (``{seed: final accuracy}``), ``epochs``,
    ``planned_epochs``, ``final_accuracy`` and ``final_accuracy_sd``, ``final_train_accuracy``
    (on the first training images, as evaluated on the test set), ``best_accuracy`` (means,
    fractions), ``errors_pct`` (``{seed: test error %}``), ``final_error_pct``, the paired
    gap to rate-BP's test error over the seeds both finished (percentage points:
    ``gap_to_bp_pct`` its mean, ``gap_sd``, ``gap_n``, ``gap_seeds``, the 95 % t-interval
    ``gap_low``/``gap_high`` and ``gap_verdict``, a sentence by
    :func:`microcircuit.stats.gap_verdict`), the same to BPTT's (``gap_to_bptt_pct``,
    ``bptt_gap_sd``, ..., ``bptt_gap_verdict``), ``wall_seconds`` (mean per run), ``backend``,
    ``own_settings`` (:func:`microcircuit.presets.own_settings`), ``path``; ordered by dataset
    (MNIST, Fashion-MNIST, CIFAR-10), preset, then rule (BP, FA, DFA, SC-FA, microcircuit).
    """
    res = as_results(results)
    rows = _add_gaps(_rows_by_pair(res, rules, expected, summary_row, datasets))
    columns = [
        ("dataset", "dataset", lambda v: LABELS.get(v, v)),
        ("preset", "preset", str),
        ("rule", "rule", _rules.label),
        ("n_seeds", "seeds", str),
        ("accuracy_text", "final test acc. (%), mean ± sd", str),
        ("per_seed_text", "per seed (%)", str),
        ("final_train_accuracy", "final train acc. (%)", _pct),
        ("best_accuracy", "best test acc. (%)", _pct),
        ("gap_text", f"error − {_rules.label('bp')}'s (pp), paired", str),
        ("bptt_gap_text", f"error − {_rules.label('bptt')}'s (pp), paired", str),
        ("epochs", "epochs", str),
        ("wall_seconds", "training time per run", _duration),
        ("status", "status", str),
        ("own_settings", "own settings", _settings),
    ]
    return Table(rows, columns, title="Test accuracy over seeds")


def gap_verdicts(results=None, rules=FEEDBACK_RULES, datasets=None, base: str = "bp") -> list[str]:
    """Per dataset / preset / rule with a paired gap to ``base`` (``"bp"``: rate-BP, or ``"bptt"``),
    the sentence on it (seed noise or not)."""
    key = "gap_verdict" if base == "bp" else f"{base}_gap_verdict"
    return [f"{LABELS.get(r['dataset'], r['dataset'])}, {r['preset']}: {r[key]}"
            for r in accuracy_table(results, rules=rules, datasets=datasets) if r[key]]


def depth_gaps(results=None, presets=None, base: str = "bptt", rules=None) -> list[dict]:
    """The depth study's numbers: per preset (:data:`~microcircuit.presets.DEPTH_STUDY`) and rule,
    the test error minus ``base``'s (``"bptt"`` or ``"bp"``), paired by seed over the seeds both
    finished, in percentage points.

    Rows: ``preset``, ``hidden`` (hidden layers), ``rule``, ``seeds``, ``gaps`` (``{seed: pp}``), and
    their ``mean``, ``low`` and ``high`` (the least and the largest over seeds; ``None`` with none).
    """
    res = as_results(results)
    out = []
    for name in presets or DEPTH_STUDY:
        dataset = preset_spec(name)["dataset"]
        reference = {s: r for s, r in res.by_seed(dataset, name, base).items() if r["status"] == "done"}
        found = {r["rule"] for r in res.select(dataset, name)} - {base}
        for rule in sorted(found if rules is None else set(rules) - {base}, key=_rules.order):
            runs = {s: r for s, r in res.by_seed(dataset, name, rule).items() if r["status"] == "done"}
            gaps = {s: 100 * (_final(reference[s]) - _final(runs[s])) for s in sorted(set(runs) & set(reference))}
            values = list(gaps.values())
            out.append({"preset": name, "hidden": hidden_layers(name), "rule": rule, "seeds": sorted(gaps),
                        "gaps": gaps, "mean": sum(values) / len(values) if values else None,
                        "low": min(values, default=None), "high": max(values, default=None)})
    return out


def _final(run) -> float:
    return run["epochs"][-1]["test_accuracy"]


def runs_table(results=None) -> Table:
    """Every run found, one row per seed: status, epochs, accuracies, time and what made it."""
    res = as_results(results)
    rows = []
    for run in res.runs:
        row = accuracy_row(run)
        row.update(commit=_seeds.provenance_values(run, "git_commit"), blas=_seeds.provenance_values(run, "blas_threads"))
        rows.append(row)
    columns = [
        ("dataset", "dataset", lambda v: LABELS.get(v, v)), ("preset", "preset", str), ("rule", "rule", _rules.label),
        ("seed", "seed", str), ("status", "status", str), ("epochs", "epochs", str),
        ("planned_epochs", "of", str), ("final_accuracy", "final test acc. (%)", _pct),
        ("best_accuracy", "best test acc. (%)", _pct), ("wall_seconds", "training time", _duration),
        ("commit", "commit", str), ("backend", "backend", str), ("blas", "BLAS threads", str),
    ]
    return Table(rows, columns, title="Every run")


def equivalence_table(results=None, a: str = "microcircuit", b: str = "scfa") -> Table:
    """Per dataset / preset / seed with a run of both ``a`` and ``b``: are their logs the same?

    Rows: ``dataset``, ``preset``, ``seed``, ``identical`` (bool), ``compared`` (epochs),
    ``verdict`` (:func:`microcircuit.seeds.equivalence_sentence`: bit-identical, identical
    so far, or where they first differ and what the provenance shows differs).
    """
    res = as_results(results)
    rows = []
    for dataset, preset in expected_pairs(res, None):
        runs_a, runs_b = res.by_seed(dataset, preset, a), res.by_seed(dataset, preset, b)
        for seed in sorted(set(runs_a) & set(runs_b)):
            cmp = _seeds.compare_logs(runs_a[seed], runs_b[seed])
            rows.append({"dataset": dataset, "preset": preset, "seed": seed, "identical": cmp["identical"],
                         "compared": cmp["compared"], "first_difference": cmp["first_difference"],
                         "reasons": cmp["reasons"],
                         "verdict": _seeds.equivalence_sentence(cmp, (_rules.label(a), _rules.label(b)))})
    columns = [("dataset", "dataset", lambda v: LABELS.get(v, v)), ("preset", "preset", str), ("seed", "seed", str),
               ("verdict", f"{_rules.label(a)} (rate mode) and {_rules.label(b)} logs", str)]
    return Table(rows, columns, title=f"{_rules.label(a)} and {_rules.label(b)}, seed by seed")


def headline(results=None, datasets=None, rules=RUN_RULES) -> str:
    """The headline numbers as text: per preset, each rule's final test accuracy (mean ± sd over
    its finished seeds, and how many) and its paired gap to BP, then the verdicts on the gaps.

    Every rule of :data:`~microcircuit.rules.FEEDBACK_RULES` in ``rules`` is listed (``[missing]`` when
    a preset has no run of it), others (``microcircuit-spiking``) where they have runs."""
    rows = accuracy_table(results, rules=[r for r in FEEDBACK_RULES if r in rules], datasets=datasets)
    rows = [r for r in rows if r["rule"] in rules]
    lines = []
    for dataset, preset in dict.fromkeys((r["dataset"], r["preset"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["preset"]) == (dataset, preset)]
        lines.append(f"{LABELS.get(dataset, dataset)}, {preset} ({group[0]['planned_epochs']} epochs), "
                     "final test accuracy (%):")
        for r in group:
            acc = r["accuracy_text"] or "—"
            seeds = f"{r['n_seeds']} seed{'s' if r['n_seeds'] != 1 else ''}"
            gap = f"error − {_rules.label('bp')}'s {r['gap_text']}" if r["gap_text"] and r["rule"] != "bp" else ""
            state = "" if r["status"] == "done" else f"[{r['status']}]"
            lines.append(f"  {_rules.label(r['rule']):<22} {acc:>14}  {seeds:<8} {gap} {state}".rstrip())
        lines += [f"  {r['gap_verdict']}" for r in group if r["gap_verdict"]]
    return "\n".join(lines)


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


def _mean_lists(lists):
    lists = [v for v in lists if v]
    if not lists or any(len(v) != len(lists[0]) for v in lists):
        return lists[0] if len(lists) == 1 else None
    return [round(sum(col) / len(col), 3) for col in zip(*lists)]


def alignment_table(results=None, rules=FEEDBACK_RULES, expected=None, datasets=None) -> Table:
    """Alignment with BP over seeds: the angle per plastic layer (input side first), in degrees.

    Rows: ``dataset``, ``preset``, ``rule``, ``status`` (as in :func:`accuracy_table`),
    ``n_seeds``, ``epochs``, ``first_deg`` (after epoch 1), ``final_deg`` (after the last
    epoch) and ``mean_deg`` (over epochs), each a list with one angle per plastic layer,
    averaged over the finished seeds (the output layer's is 0 for every rate-mode rule: all
    share the output error; the spiking microcircuit's is a noisy estimate). Missing runs,
    ``expected`` and ``datasets`` as in :func:`accuracy_table`.
    """
    res = as_results(results)

    def row(dataset, preset, rule, runs, expected_seeds):
        done = [alignment_row(r) for r in _seeds.finished(runs).values()]
        return {"dataset": dataset, "preset": preset, "rule": rule, "status": _seeds.status(runs, expected_seeds),
                "n_seeds": len(done), "epochs": max((r["epochs"] for r in done), default=0),
                **{k: _mean_lists([r[k] for r in done]) for k in ("first_deg", "final_deg", "mean_deg")}}

    rows = _rows_by_pair(res, rules, expected, row, datasets)
    columns = [
        ("dataset", "dataset", lambda v: LABELS.get(v, v)),
        ("preset", "preset", str),
        ("rule", "rule", _rules.label),
        ("n_seeds", "seeds", str),
        ("first_deg", "angle to BP after epoch 1 (°, per layer)", _angles),
        ("final_deg", "angle to BP, last epoch (°, per layer)", _angles),
        ("mean_deg", "mean over epochs (°, per layer)", _angles),
        ("status", "status", str),
    ]
    return Table(rows, columns, title="Alignment with backpropagation (mean over seeds)")


def _network(r: dict):
    """A benchmark row's network: its ``network`` name, else its dense layer sizes joined by ``-``."""
    return r.get("network") or "-".join(str(v) for v in r.get("layers") or ()) or None


def one_blas_thread(provenance: dict) -> bool:
    """Measured on one BLAS thread? Only then is a share of CPU time (the GEMM bound) meaningful."""
    return str(provenance.get("blas_threads")) == "1"


def bench_table(results=None, rules=FEEDBACK_RULES) -> Table:
    """Training throughput and peak memory from every ``bench/*.json``.

    Rows: ``source`` (file name), ``machine``, ``backend``, ``dtype``, ``rule``, ``T``, ``batch_size``,
    ``layers`` (dense sizes or a preset's name), ``samples_per_s``, ``speed_vs_bp`` (throughput
    relative to BP in the same file at the same T, batch size and network; ``None`` without a BP
    row), ``x_bptt``, ``gemm_bound`` (:func:`one_blas_thread` files only), ``jit`` (:mod:`microcircuit.bench`),
    ``peak_array_mb``, ``peak_rss_mb`` (``None``: not measured), by file, T, then rule.
    """
    res = as_results(results)
    rows = []
    for doc in sorted(res.bench, key=lambda d: d["name"]):
        entries = [r for r in doc["results"] if isinstance(r, dict) and "rule" in r]
        bp = {(r.get("T"), r.get("batch_size"), _network(r)): r.get("samples_per_s")
              for r in entries if r["rule"] == "bp"}
        entries.sort(key=lambda r: (r.get("T") or 0, _order(tuple(rules))(r["rule"])))
        for r in entries:
            base, sps = bp.get((r.get("T"), r.get("batch_size"), _network(r))), r.get("samples_per_s")
            rows.append({
                "source": doc["name"], "machine": doc["provenance"].get("machine"),
                "backend": r.get("backend"), "dtype": r.get("dtype"), "rule": r["rule"], "T": r.get("T"),
                "batch_size": r.get("batch_size"), "layers": _network(r), "samples_per_s": sps,
                "speed_vs_bp": round(sps / base, 3) if base and sps is not None else None, "x_bptt": r.get("x_bptt"),
                "gemm_bound": r.get("gemm_bound") if one_blas_thread(doc["provenance"]) else None, "jit": r.get("jit"),
                "peak_array_mb": r.get("peak_array_mb"), "peak_rss_mb": r.get("peak_rss_mb"),
            })
    columns = [
        ("source", "file", str), ("backend", "backend", str), ("rule", "rule", _rules.label), ("T", "T", str),
        ("batch_size", "batch", str), ("layers", "network", str), ("samples_per_s", "samples/s", _num(0)),
        ("speed_vs_bp", "speed vs BP", lambda v: f"{v:.2f}x"), ("x_bptt", "x BPTT (CPU s)", lambda v: f"{v:.2f}x"),
        ("gemm_bound", "GEMM bound (%)", _num(0, 100)), ("jit", "kernels", {True: "on", False: "off"}.get),
        ("peak_array_mb", "peak arrays (MB)", _num(1)), ("peak_rss_mb", "peak RSS (MB)", _num(0)),
    ]
    return Table(rows, columns, title="Training speed and memory")


def provenance_table(results=None) -> Table:
    """Distinct provenance records of the runs: version, commit, backend, dtype, machine, data."""
    res = as_results(results)
    seen = {}
    for run in res.runs:  # every segment's provenance: a run resumed elsewhere counts in each row
        for p in run["segments"] or [run["provenance"]]:
            key = tuple(str(p.get(k)) for k in ("library_version", "git_commit", "backend", "dtype", "machine",
                                                "dataset", "data_checksum"))
            entry = seen.setdefault(key, {"library_version": p.get("library_version"), "git_commit": p.get("git_commit"),
                                          "backend": p.get("backend"), "dtype": p.get("dtype"), "machine": p.get("machine"),
                                          "dataset": p.get("dataset") or run["dataset"],
                                          "data_checksum": p.get("data_checksum"), "runs": set()})
            entry["runs"].add(run["path"])
    columns = [("dataset", "dataset", str), ("runs", "runs", str), ("library_version", "version", str),
               ("git_commit", "commit", lambda v: str(v)[:12] + ("-dirty" if str(v).endswith("-dirty") else "")),
               ("backend", "backend", str), ("dtype", "dtype", str), ("machine", "machine", str),
               ("data_checksum", "data checksum", lambda v: str(v)[:12])]
    return Table([dict(e, runs=len(e["runs"])) for e in seen.values()], columns, title="Provenance")


def biotorch_table() -> Table:
    """The BioTorch reference figures (test error %, non-spiking networks; Sanfiz and Akrout 2021)."""
    rows = [{"method": method, **dict(zip(DATASETS, errors))} for method, *errors in BIOTORCH_TEST_ERROR]
    columns = [("method", "method", str)] + [(d, f"{LABELS[d]}, {net}", _num(2))
                                             for d, net in zip(DATASETS, BIOTORCH_NETWORKS)]
    return Table(rows, columns, title="BioTorch benchmark, test error (%), non-spiking networks")


# ----------------------------------------------------------------- missing results
def missing_message(results=None, dataset: str | None = None, preset: str | None = None,
                    rules=FEEDBACK_RULES, commands=None) -> str:
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
        verdicts, equivalence = [f"- {line}" for line in gap_verdicts(res)], equivalence_table(res)
        bptt_verdicts = [f"- {line}" for line in gap_verdicts(res, base="bptt")]
        parts += ["## Test accuracy", "",
                  ("All rules of a preset share its seeds, data and settings; *own settings* names any in "
                   "which a run differs from its preset in `microcircuit/presets.py` (none should). "
                   "Final test accuracy is the mean ± sample standard deviation over the seeds whose run "
                   "finished (*seeds*; one seed has no sd); *per seed* lists every seed, finished or not, "
                   "and runs still in progress are never averaged in. Two yardsticks: *rate-BP* (`bp`) "
                   "backpropagates through the rate network with time-averaged surrogate gains; *BPTT* (`bptt`) "
                   "backpropagates through the T time steps of the spiking network, as snnTorch and "
                   "SpikingJelly train it. *Error − rate-BP's* (and *− BPTT's*) is the test error "
                   "minus the yardstick's, paired by seed over the seeds both finished: mean ± sd of the per-seed "
                   "differences. *Microcircuit, rate mode* is SC-FA bit for bit (chapter 8); *microcircuit "
                   "(spiking)* is the circuit with spiking error cells. *Final train acc.* is the accuracy on the first 10,000 training images, "
                   "evaluated as the test set is (no augmentation): far above the test accuracy means "
                   "overfitting; close to it, and itself low, means the network underfits."), "",
                  accuracy_table(res).markdown(), "",
                  "### Gaps to rate-BP against the seed noise", "",
                  ("A paired t-interval over seeds (95 %) of each rule's test error minus rate-BP's; the "
                   "sentences are written by `microcircuit.stats.gap_verdict` from the numbers."), "",
                  *(verdicts or ["No rule has a finished run paired with a finished rate-BP run."]), "",
                  "### Gaps to BPTT against the seed noise", "",
                  "The same against BPTT, over the seeds both finished.", "",
                  *(bptt_verdicts or ["No rule has a finished run paired with a finished BPTT run yet."]), "",
                  "## The microcircuit and SC-FA, seed by seed", "",
                  ("In rate mode the microcircuit computes SC-FA's updates exactly (chapter 8) and its error "
                   "cells draw from their own random stream, so the two runs of a seed, made by the same code "
                   "with the same BLAS threads, should write the same log. Every per-epoch record is compared "
                   "(wall time aside); where they differ, what their provenance says differs is named."), "",
                  equivalence.markdown() if equivalence else "No seed has both runs yet.", "",
                  "## Alignment with backpropagation", "",
                  ("Angle between each rule's weight update and BP's on the same mini-batch, per plastic "
                   "layer (input side first; the output layer's is 0 for every rate-mode rule, since all use "
                   "the output error exactly; in spiking mode it is a noisy estimate), averaged over the "
                   "finished seeds."), "",
                  alignment_table(res).markdown(), "",
                  "## Every run", "", runs_table(res).markdown(), ""]
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

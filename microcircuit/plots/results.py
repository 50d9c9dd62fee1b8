"""Figures of the results: learning curves, alignment with BP over training, throughput.

They read what :mod:`microcircuit.report` loads (a :class:`~microcircuit.report.Results` or
a results folder) and never train anything; numbers come from the logs.
"""

from __future__ import annotations

import numpy as np

from .. import report
from ..data import LABELS
from ..files import shown
from ..rules import color as rule_color
from ..rules import label as rule_label
from ..rules import style as rule_style
from .style import figure


def _pick_preset(res: report.Results, dataset: str, preset):
    if preset is not None:
        return preset
    presets = res.presets(dataset)
    if not presets:
        raise ValueError(f"no runs for dataset {dataset!r} in {shown(res.root)}:\n{report.missing_message(res, dataset)}")
    return presets[0]


BAND = "min–max over seeds"
"""What the shaded band around a mean curve spans."""


def _over_seeds(runs, value):
    """Mean and min / max over the finished runs of one rule, per epoch all of them have.

    ``value(epoch_record)`` gives the plotted number (``None``: not logged). Returns
    ``(epochs, mean, low, high, n_runs, finished)``; with no finished run, the one run found
    (``finished`` is ``False``), so that a run in progress still shows, labelled as such.
    """
    done = [r for r in runs if r["status"] == "done"]
    finished = bool(done)
    use = done or runs[:1]
    series = [{e["epoch"]: value(e) for e in r["epochs"] if value(e) is not None} for r in use]
    series = [s for s in series if s]
    if not series:
        return [], [], [], [], 0, finished
    epochs = sorted(set.intersection(*(set(s) for s in series)))
    cols = [np.array([s[k] for s in series], dtype=float) for k in epochs]
    return (epochs, [c.mean(axis=0) for c in cols], [c.min(axis=0) for c in cols], [c.max(axis=0) for c in cols],
            len(series), finished)


def _label(rule, n, finished):
    if not finished:
        return f"{rule_label(rule)} (running)"
    return f"{rule_label(rule)} ({n} seed{'s' if n != 1 else ''})"


def _by_rule(runs):
    out = {}
    for run in runs:
        out.setdefault(run["rule"], []).append(run)
    return out


def learning_curves(results=None, dataset: str = "mnist", preset: str | None = None,
                    metric: str = "test_accuracy", rules=None, ax=None):
    """Test accuracy (%) (or ``metric="train_accuracy"`` / ``"train_loss"`` / ``"test_loss"``)
    against epoch, one line per rule: the mean over its finished seeds, with a band from the
    lowest to the highest seed (:data:`BAND`); the legend says how many seeds. A rule with no
    finished run shows its run in progress, labelled ``(running)``.

    Returns the matplotlib Figure. ``preset`` defaults to the dataset's first preset.
    """
    res = report.as_results(results)
    preset = _pick_preset(res, dataset, preset)
    fig, ax = (ax.figure, ax) if ax is not None else figure(figsize=(6, 3.6))
    labels = {"test_accuracy": "test accuracy (%)", "train_accuracy": "training accuracy (%)",
              "train_loss": "training loss (spiking error, nats)",
              "test_loss": "test loss (spiking error, nats)"}
    scale = 100.0 if metric in ("test_accuracy", "train_accuracy") else 1.0
    for rule, runs in _by_rule(res.select(dataset, preset, rules)).items():
        xs, mean, lo, hi, n, finished = _over_seeds(runs, lambda e: e.get(metric))
        if not xs:
            continue
        ax.plot(xs, scale * np.array(mean), rule_style(rule), color=rule_color(rule),
                marker="o" if len(xs) < 12 else None, ms=3, label=_label(rule, n, finished))
        if n > 1:
            ax.fill_between(xs, scale * np.array(lo), scale * np.array(hi), color=rule_color(rule), alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(labels.get(metric, metric))
    ax.set_title(f"{LABELS.get(dataset, dataset)} ({preset})")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(frameon=False, fontsize="small", title=f"mean; band: {BAND}", title_fontsize="small")
    return fig


def _panels(res, datasets):
    pairs = [p for p in report.expected_pairs(res, None) if datasets is None or p[0] in datasets]
    if not pairs:
        return None, None, []
    cols = min(len(pairs), 3)
    rows = -(-len(pairs) // cols)
    fig, axes = figure(rows, cols, figsize=(3.6 * cols + 0.4, 2.9 * rows), squeeze=False)
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    return fig, axes, pairs


def learning_curves_overview(results=None, datasets=None, rules=None):
    """:func:`learning_curves` (mean and band over seeds), one panel per (dataset, preset) with
    runs; ``None`` if none."""
    res = report.as_results(results)
    fig, axes, pairs = _panels(res, datasets)
    for ax, (dataset, preset) in zip(axes.ravel() if axes is not None else (), pairs):
        learning_curves(res, dataset, preset, rules=rules, ax=ax)
        ax.title.set_fontsize("medium")
    return fig


def accuracy_overview(results=None, datasets=None, rules=None):
    """Final test accuracy (%) per rule, one panel per (dataset, preset) with runs: the mean
    over finished seeds with error bars of +- one sample sd (none for one seed) and every
    seed as a small dot; a rule without a finished seed keeps its tick, with ``n=0``.
    ``None`` if no preset has runs."""
    res = report.as_results(results)
    fig, axes, pairs = _panels(res, datasets)
    for ax, (dataset, preset) in zip(axes.ravel() if axes is not None else (), pairs):
        rows = [r for r in report.accuracy_table(res, datasets=[dataset])
                if r["preset"] == preset and (rules is None or r["rule"] in rules)]
        for x, r in enumerate(rows):
            if r["final_accuracy"] is None:
                continue
            ax.errorbar([x], [100 * r["final_accuracy"]], yerr=None if r["final_accuracy_sd"] is None
                        else [100 * r["final_accuracy_sd"]], fmt="o", color=rule_color(r["rule"]), capsize=4)
            seeds = [100 * r["per_seed"][s] for s in r["seeds"]]
            ax.plot([x + 0.15] * len(seeds), seeds, ".", color=rule_color(r["rule"]), alpha=0.5, ms=4)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([f"{rule_label(r['rule'])} (n={r['n_seeds']})" for r in rows], fontsize="x-small",
                           rotation=35, ha="right")
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(f"{LABELS.get(dataset, dataset)} ({preset})", fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    if fig is not None:
        fig.supxlabel("rule (n: finished seeds); bars: ± 1 sd over seeds, dots: single seeds", fontsize="small")
    return fig


def alignment_curves(results=None, dataset: str = "mnist", preset: str | None = None, rules=None,
                     include_output: bool = False):
    """Angle (degrees) between each rule's update and BP's against epoch, one panel per layer:
    the mean over finished seeds with a :data:`BAND` band, as :func:`learning_curves`.

    The output layer is left out unless ``include_output``: its update is the same for every
    rule (0 degrees). Returns the matplotlib Figure.
    """
    res = report.as_results(results)
    preset = _pick_preset(res, dataset, preset)
    runs = [r for r in res.select(dataset, preset, rules) if any(e.get("alignment_deg") for e in r["epochs"])]
    n_layers = max((len(e["alignment_deg"]) for r in runs for e in r["epochs"] if e.get("alignment_deg")), default=1)
    shown = list(range(n_layers if include_output else max(n_layers - 1, 1)))
    cols = len(shown) if len(shown) <= 3 else 2  # four or more panels: rows of two, readable at page width
    rows = -(-len(shown) // cols)
    fig, axes = figure(rows, cols, figsize=(3.4 * cols + 0.6, 3.0 * rows + 0.2), squeeze=False, sharey=True)
    axes = [ax for row in axes for ax in row]
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    for ax, k in zip(axes, shown):
        for rule, group in _by_rule(runs).items():
            angle = (lambda e, k=k: e["alignment_deg"][k] if e.get("alignment_deg") and len(e["alignment_deg"]) > k
                     else None)
            xs, mean, lo, hi, n, finished = _over_seeds(group, angle)
            if xs:
                ax.plot(xs, mean, rule_style(rule), color=rule_color(rule), label=_label(rule, n, finished))
                if n > 1:
                    ax.fill_between(xs, lo, hi, color=rule_color(rule), alpha=0.2, lw=0)
        ax.axhline(90, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(-3, 120)
        ax.set_xlabel("epoch")
        ax.set_title(f"layer {k + 1}" + (" (output)" if k == n_layers - 1 else ""))
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel("angle to BP update (degrees)")
    if runs and rows > 1:  # a grid: the legend below the panels, where it hides no curve
        handles, labels = axes[len(shown) - 1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False,
                   fontsize="small", title=f"mean; band: {BAND}", title_fontsize="small")
    elif runs:
        axes[len(shown) - 1].legend(frameon=False, fontsize="small", title=f"mean; band: {BAND}", title_fontsize="small")
    fig.suptitle(f"Alignment with backpropagation, {LABELS.get(dataset, dataset)} ({preset})", fontsize="medium")
    return fig


def throughput(results=None, source: str | None = None, T: int | None = None, ax=None):
    """Training throughput (samples/s) per rule from one benchmark file, as bars.

    ``source`` defaults to the first file that measured BP (this library's rules, rather than
    an external baseline such as ``bptt-snntorch``); ``T`` to that file's first.
    """
    res = report.as_results(results)
    rows = report.bench_table(res)
    if source is None and rows:
        ours = [r["source"] for r in rows if r["rule"] == "bp"]
        source = ours[0] if ours else rows[0]["source"]
    rows = [r for r in rows if r["source"] == source]
    if T is None and rows:
        T = rows[0]["T"]
    rows = [r for r in rows if r["T"] == T]
    fig, ax = (ax.figure, ax) if ax is not None else figure(figsize=(5, 3))
    ax.bar([rule_label(r["rule"]) for r in rows], [r["samples_per_s"] for r in rows],
           color=[rule_color(r["rule"]) for r in rows])
    ax.set_ylabel("training throughput (samples/s)")
    ax.set_xlabel("rule")
    ax.tick_params(axis="x", labelrotation=30)
    if not rows:
        ax.set_title("no benchmark results")
        return fig
    network = rows[0]["layers"]
    where = source.removesuffix(f"-{network}")  # "cpu-cifar10-conv-cpu" names the network twice
    ax.set_title(f"{where}: {network}, T = {T}, batch {rows[0]['batch_size']}")
    return fig


def depth_gaps(results=None, base: str = "bptt", presets=None, rules=None, ax=None):
    """The depth study: each rule's test error minus ``base``'s (BPTT, or ``"bp"``: rate-BP), paired
    by seed, against the number of hidden layers: the mean over seeds (line) and the least and
    largest seed (:data:`BAND`). The numbers are :func:`microcircuit.report.depth_gaps`'.

    Returns the matplotlib Figure; a rule is drawn at the depths where it has finished seeds.
    """
    rows = report.depth_gaps(results, presets=presets, base=base, rules=rules)
    fig, ax = (ax.figure, ax) if ax is not None else figure(figsize=(6, 3.6))
    by_rule = {}
    for r in rows:
        if r["seeds"]:
            by_rule.setdefault(r["rule"], []).append(r)
    for rule, points in by_rule.items():
        x = [p["hidden"] for p in points]
        n = sorted({len(p["seeds"]) for p in points})
        seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
        ax.plot(x, [p["mean"] for p in points], marker="o", color=rule_color(rule), linestyle=rule_style(rule),
                label=f"{rule_label(rule)} ({seeds} seed{'s' if n != [1] else ''})")
        ax.fill_between(x, [p["low"] for p in points], [p["high"] for p in points], color=rule_color(rule),
                        alpha=0.15, linewidth=0)
    ax.axhline(0.0, color="0.3", linewidth=0.8, linestyle=":")
    depths = sorted({r["hidden"] for r in rows})
    if depths:
        ax.set_xticks(depths)
    ax.set_xlabel("hidden layers of 800 cells")
    ax.set_ylabel(f"test error − {rule_label(base)}'s (points)")
    ax.set_title(f"Depth on Fashion-MNIST: gap to {rule_label(base)}, paired by seed ({BAND})", fontsize="medium")
    if by_rule:
        ax.legend(fontsize="small", frameon=False)
    return fig

"""Figures of the results: learning curves, alignment with BP over training, throughput.

They read what :mod:`microcircuit.report` loads (a :class:`~microcircuit.report.Results` or
a results folder) and never train anything; numbers come from the logs.
"""

from __future__ import annotations

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


def learning_curves(results=None, dataset: str = "mnist", preset: str | None = None,
                         metric: str = "test_accuracy", rules=None, ax=None):
    """Test accuracy (%) (or ``metric="train_accuracy"`` / ``"train_loss"`` / ``"test_loss"``)
    against epoch, one line per rule.

    Returns the matplotlib Figure. ``preset`` defaults to the dataset's first preset.
    """
    res = report.as_results(results)
    preset = _pick_preset(res, dataset, preset)
    fig, ax = (ax.figure, ax) if ax is not None else figure(figsize=(6, 3.6))
    labels = {"test_accuracy": "test accuracy (%)", "train_accuracy": "training accuracy (%)",
              "train_loss": "training loss (spiking error, nats)",
              "test_loss": "test loss (spiking error, nats)"}
    for run in res.select(dataset, preset, rules):
        pts = [(e["epoch"], e[metric]) for e in run["epochs"] if e.get(metric) is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        if metric in ("test_accuracy", "train_accuracy"):
            ys = [100 * v for v in ys]
        ax.plot(xs, ys, rule_style(run["rule"]), color=rule_color(run["rule"]),
                marker="o" if len(xs) < 12 else None, ms=3, label=rule_label(run["rule"]))
    ax.set_xlabel("epoch")
    ax.set_ylabel(labels.get(metric, metric))
    ax.set_title(f"{LABELS.get(dataset, dataset)} ({preset})")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(frameon=False, fontsize="small")
    return fig


def accuracy_overview(results=None, datasets=None, rules=None):
    """Test accuracy (%) against epoch, one panel per (dataset, preset) with runs; ``None`` if none."""
    res = report.as_results(results)
    pairs = [p for p in report.expected_pairs(res, None) if datasets is None or p[0] in datasets]
    if not pairs:
        return None
    cols = min(len(pairs), 3)
    rows = -(-len(pairs) // cols)
    fig, axes = figure(rows, cols, figsize=(3.6 * cols + 0.4, 2.9 * rows), squeeze=False)
    for ax, (dataset, preset) in zip(axes.ravel(), pairs):
        learning_curves(res, dataset, preset, rules=rules, ax=ax)
        ax.title.set_fontsize("medium")
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    return fig


def alignment_curves(results=None, dataset: str = "mnist", preset: str | None = None, rules=None,
                   include_output: bool = False):
    """Angle (degrees) between each rule's update and BP's against epoch, one panel per layer.

    The output layer is left out unless ``include_output``: its update is the same for every
    rule (0 degrees). Returns the matplotlib Figure.
    """
    res = report.as_results(results)
    preset = _pick_preset(res, dataset, preset)
    runs = [r for r in res.select(dataset, preset, rules) if any(e.get("alignment_deg") for e in r["epochs"])]
    n_layers = max((len(e["alignment_deg"]) for r in runs for e in r["epochs"] if e.get("alignment_deg")), default=1)
    shown = list(range(n_layers if include_output else max(n_layers - 1, 1)))
    fig, axes = figure(1, len(shown), figsize=(3.4 * len(shown) + 0.6, 3.2), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], shown):
        for run in runs:
            pts = [(e["epoch"], e["alignment_deg"][k]) for e in run["epochs"]
                   if e.get("alignment_deg") and len(e["alignment_deg"]) > k]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, rule_style(run["rule"]), color=rule_color(run["rule"]),
                        label=rule_label(run["rule"]))
        ax.axhline(90, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(-3, 120)
        ax.set_xlabel("epoch")
        ax.set_title(f"layer {k + 1}" + (" (output)" if k == n_layers - 1 else ""))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("angle to BP update (degrees)")
    if runs:
        axes[0][-1].legend(frameon=False, fontsize="small")
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

"""Results tables and the report, on fake result folders built in tmp_path."""

import json

import pytest

from microcircuit import plots, presets, report
from microcircuit.rules import FEEDBACK_RULES as RULES


def write_run(root, dataset, preset, rule, accuracies, angles=None, status="done", seconds=10.0, epochs=None,
              train=None):
    folder = root / dataset / preset / rule
    folder.mkdir(parents=True)
    records = []
    for k, acc in enumerate(accuracies, start=1):
        rec = {"epoch": k, "train_loss": 1.0 / k, "seconds": seconds, "test_accuracy": acc, "test_loss": 2.0 / k}
        if angles is not None:
            rec["alignment_deg"] = angles[k - 1]
        if train is not None:
            rec["train_accuracy"] = train[k - 1]
        records.append(rec)
    log = {
        "config": {"rule": rule, "epochs": epochs or len(accuracies)},
        "provenance": {"library_version": "0.1.0", "git_commit": "abc123def4567890", "backend": "numpy",
                       "dtype": "float32", "seed": 0, "dataset": dataset, "data_checksum": "f" * 64,
                       "python": "3.12", "numpy": "2.0", "machine": "x86_64 2 cpus"},
        "status": status,
        "wall_seconds": seconds * len(accuracies),
        "epochs": records,
    }
    (folder / "log.json").write_text(json.dumps(log))
    return folder


def write_bench(root, name, results, blas_threads="1"):
    folder = root / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    provenance = {"machine": "x86_64 2 cpus", "blas_threads": blas_threads}
    (folder / f"{name}.json").write_text(json.dumps({"provenance": provenance, "results": results}))


def bench_entry(rule, T, sps):
    return {"rule": rule, "T": T, "batch_size": 64, "layers": [784, 800, 10], "backend": "numpy",
            "dtype": "float32", "samples_per_s": sps, "peak_array_mb": 10.0, "peak_rss_mb": 200.0}


@pytest.fixture
def results_root(tmp_path):
    root = tmp_path / "results"
    # written out of order on purpose: tables must sort by dataset, then rule order
    write_run(root, "cifar10", "cifar10-conv", "bp", [0.40, 0.55])
    write_run(root, "mnist", "mnist-mlp", "microcircuit", [0.90, 0.95, 0.94], angles=[[60, 0], [55, 0], [50, 0]])
    write_run(root, "mnist", "mnist-mlp", "bp", [0.91, 0.97, 0.98], angles=[[0, 0]] * 3, train=[0.92, 0.98, 0.99])
    write_run(root, "mnist", "mnist-mlp", "fa", [0.80, 0.85], angles=[[89, 0], [80, 0]], status="running", epochs=3)
    write_run(root, "mnist", "mnist-mlp", "scfa", [0.90, 0.96, 0.96], angles=[[61, 0], [54, 0], [49, 0]])
    write_bench(root, "cpu", [bench_entry("microcircuit", 8, 500.0), bench_entry("bp", 8, 1000.0),
                              bench_entry("fa", 16, 300.0), bench_entry("bp", 16, 600.0)])
    return root


def test_load_results_finds_runs_and_bench(results_root):
    res = report.load_results(results_root)
    assert [(r["dataset"], r["rule"]) for r in res.runs] == [
        ("mnist", "bp"), ("mnist", "fa"), ("mnist", "scfa"), ("mnist", "microcircuit"), ("cifar10", "bp")]
    assert res.datasets() == ["mnist", "cifar10"]
    assert len(res.bench) == 1 and not res.problems and not res.empty


def test_accuracy_table_numbers_and_order(results_root):
    rows = report.accuracy_table(results_root)
    mnist = [r for r in rows if r["dataset"] == "mnist"]
    assert [r["rule"] for r in mnist] == list(RULES)
    bp = mnist[0]
    assert bp["final_accuracy"] == 0.98 and bp["best_accuracy"] == 0.98 and bp["n_seeds"] == 1
    assert bp["final_accuracy_sd"] is None and bp["accuracy_text"] == "98.00"  # one seed: no sd
    assert bp["epochs"] == 3 and bp["wall_seconds"] == 30.0 and bp["status"] == "done"
    assert bp["final_error_pct"] == pytest.approx(2.0) and bp["final_train_accuracy"] == 0.99
    mc = mnist[4]
    assert mc["final_accuracy"] == 0.94 and mc["best_accuracy"] == 0.95
    assert mc["final_train_accuracy"] is None  # a log without training-set evaluation
    per_run = {r["rule"]: r for r in report.runs_table(results_root) if r["dataset"] == "mnist"}
    assert per_run["microcircuit"]["best_epoch"] == 2
    assert per_run["scfa"]["best_epoch"] == 2  # a tie goes to the earlier epoch
    assert mc["gap_to_bp_pct"] == pytest.approx(4.0) and bp["gap_to_bp_pct"] == 0.0
    assert mc["gap_n"] == 1 and "rests on one seed" in mc["gap_verdict"] and bp["gap_verdict"] is None
    fa = mnist[1]
    assert fa["status"] == "running" and fa["epochs"] == 2 and fa["planned_epochs"] == 3
    assert fa["final_accuracy"] is None and fa["n_seeds"] == 0  # a run in progress is not averaged in
    assert fa["per_seed_text"] == "s0 running (2/3 ep., 85.00)"
    assert fa["gap_to_bp_pct"] is None  # a run in progress is not compared with a finished one
    # cifar10 comes after mnist and lists its four missing rules
    cifar = [r for r in rows if r["dataset"] == "cifar10"]
    assert [r["rule"] for r in cifar] == list(RULES)
    assert [r["status"] for r in cifar] == ["done"] + [report.MISSING] * 4
    assert all(r["final_accuracy"] is None and r["gap_to_bp_pct"] is None for r in cifar[1:])


def test_missing_run_is_marked_not_invented(results_root):
    rows = report.accuracy_table(results_root)
    dfa = next(r for r in rows if r["dataset"] == "mnist" and r["rule"] == "dfa")
    assert dfa["status"] == report.MISSING
    assert dfa["final_accuracy"] is None and dfa["best_accuracy"] is None and dfa["wall_seconds"] is None
    md = rows.markdown()
    assert "| MNIST | mnist-mlp | DFA | 0 | \u2014 | \u2014 |" in md


def test_expected_pairs_without_any_run(results_root):
    rows = report.accuracy_table(results_root, expected=[("fashion-mnist", "mnist-mlp")])
    fashion = [r for r in rows if r["dataset"] == "fashion-mnist"]
    assert len(fashion) == 5 and all(r["status"] == report.MISSING for r in fashion)
    datasets = [r["dataset"] for r in rows]
    assert datasets.index("fashion-mnist") > datasets.index("mnist")
    assert datasets.index("fashion-mnist") < datasets.index("cifar10")


def test_extra_rules_follow_the_five(tmp_path):
    root = tmp_path / "r"
    write_run(root, "mnist", "mnist-mlp", "microcircuit-spiking", [0.5])
    write_run(root, "mnist", "mnist-mlp", "bp", [0.6])
    rows = report.accuracy_table(root)
    assert [r["rule"] for r in rows] == [*RULES, "microcircuit-spiking"]


def test_markdown_and_html_rendering(results_root):
    table = report.accuracy_table(results_root)
    md = table.markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| dataset | preset | rule | seeds | final test acc. (%), mean ± sd | per seed (%) |")
    assert ("| MNIST | mnist-mlp | rate-BP | 1 | 98.00 | s0 98.00 | 99.00 | 98.00 | (baseline) | \u2014 | 3 | 30 s | done | \u2014 |"
            in lines)
    assert ("| MNIST | mnist-mlp | microcircuit, rate mode (= SC-FA) | 1 | 94.00 | s0 94.00 | \u2014 | 95.00 | +4.00 (1 seed) | \u2014 | 3 | 30 s | done "
            "| \u2014 |" in lines)
    html = table._repr_html_()
    assert html.startswith("<table>") and "<td>SC-FA</td>" in html and "<td>98.00</td>" in html


def test_own_settings_name_where_a_run_differs_from_its_preset(tmp_path, monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "toy", dict(dataset="mnist", layers=[4, 2], lr=1e-3, T=8, epochs=5))
    root = tmp_path / "results"
    for rule, lr in (("bp", 3e-4), ("scfa", 1e-3)):
        folder = write_run(root, "mnist", "toy", rule, [0.5, 0.6])
        log = json.loads((folder / "log.json").read_text())
        log["config"].update(lr=lr, T=8)  # the planned epochs (2, not 5) have their own column
        (folder / "log.json").write_text(json.dumps(log))
    write_run(root, "mnist", "not-a-preset", "bp", [0.5])
    rows = {(r["preset"], r["rule"]): r for r in report.accuracy_table(root)}
    assert rows[("toy", "bp")]["own_settings"] == {"lr": 3e-4}
    assert rows[("toy", "scfa")]["own_settings"] is None and rows[("not-a-preset", "bp")]["own_settings"] is None
    line = next(x for x in report.accuracy_table(root).markdown().splitlines() if "| toy | rate-BP |" in x)
    assert line.endswith("| done | lr 0.0003 |")


def test_alignment_table(results_root):
    rows = report.alignment_table(results_root)
    mc = next(r for r in rows if r["dataset"] == "mnist" and r["rule"] == "microcircuit")
    assert mc["first_deg"] == [60, 0] and mc["final_deg"] == [50, 0] and mc["mean_deg"] == [55.0, 0.0]
    cifar_bp = next(r for r in rows if r["dataset"] == "cifar10" and r["rule"] == "bp")
    assert cifar_bp["final_deg"] is None  # no angles logged: shown as a dash
    assert "60.0 / 0.0" in rows.markdown()


def test_bench_table_relative_speed_and_order(results_root):
    rows = report.bench_table(results_root)
    assert [(r["T"], r["rule"]) for r in rows] == [(8, "bp"), (8, "microcircuit"), (16, "bp"), (16, "fa")]
    assert rows[1]["speed_vs_bp"] == 0.5 and rows[3]["speed_vs_bp"] == 0.5 and rows[0]["speed_vs_bp"] == 1.0
    assert rows[0]["layers"] == "784-800-10"
    assert "| cpu | numpy | microcircuit, rate mode (= SC-FA) | 8 | 64 | 784-800-10 | 500 | 0.50x | — | — | — | 10.0 | 200 |" in rows.markdown()


def test_bench_table_shows_the_bptt_ratio_gemm_bound_and_kernels(tmp_path):
    root = tmp_path / "r"
    write_bench(root, "cpu", [bench_entry("bp", 8, 1000.0),
                              dict(bench_entry("microcircuit", 8, 900.0), x_bptt=4.5678, gemm_bound=0.543, jit=True)])
    rows = report.bench_table(root)
    mc = rows[1]
    assert (mc["x_bptt"], mc["gemm_bound"], mc["jit"]) == (4.5678, 0.543, True) and rows[0]["x_bptt"] is None
    assert "| 900 | 0.90x | 4.57x | 54 | on |" in rows.markdown()


def test_bench_table_shows_no_gemm_bound_for_a_run_on_several_blas_threads(tmp_path):
    root = tmp_path / "r"
    write_bench(root, "many", [dict(bench_entry("microcircuit", 8, 900.0), gemm_bound=0.01, jit=True)], blas_threads=None)
    write_bench(root, "one", [dict(bench_entry("microcircuit", 8, 900.0), gemm_bound=0.6, jit=True)])
    rows = {r["source"]: r for r in report.bench_table(root)}
    assert rows["many"]["gemm_bound"] is None and rows["one"]["gemm_bound"] == 0.6


def test_bench_without_bp_has_no_ratio(tmp_path):
    root = tmp_path / "r"
    write_bench(root, "gpu", [bench_entry("fa", 8, 100.0)])
    rows = report.bench_table(root)
    assert rows[0]["speed_vs_bp"] is None and "\u2014" in rows.markdown()


def test_bench_compares_each_network_with_its_own_bp(tmp_path):
    root = tmp_path / "r"
    conv = [dict(bench_entry(rule, 4, sps), network="cifar10-conv-cpu", layers=[[3, 32, 32], {"type": "Conv"}, 10])
            for rule, sps in (("bp", 200.0), ("microcircuit", 150.0))]
    write_bench(root, "cpu", [bench_entry("bp", 4, 1000.0), bench_entry("microcircuit", 4, 900.0)] + conv)
    rows = report.bench_table(root)
    ratio = {(r["layers"], r["rule"]): r["speed_vs_bp"] for r in rows}
    assert ratio[("cifar10-conv-cpu", "microcircuit")] == 0.75 and ratio[("784-800-10", "microcircuit")] == 0.9
    assert "| cifar10-conv-cpu | 150 | 0.75x | — |" in rows.markdown()


def test_bench_plot_prefers_a_file_of_this_librarys_rules(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    root = tmp_path / "r"
    write_bench(root, "a-baseline", [dict(bench_entry("bptt-snntorch", 8, 50.0))])
    write_bench(root, "cpu", [bench_entry("bp", 8, 1000.0), bench_entry("fa", 8, 900.0)])
    fig = plots.throughput(root)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["rate-BP", "FA"] and fig.axes[0].get_title().startswith("cpu: 784-800-10")
    conv = dict(bench_entry("bp", 4, 200.0), network="cifar10-conv-cpu", layers=[[3, 32, 32], 10])
    write_bench(root, "cpu-cifar10-conv-cpu", [conv])
    fig = plots.throughput(root, source="cpu-cifar10-conv-cpu")
    assert fig.axes[0].get_title().startswith("cpu: cifar10-conv-cpu, T = 4")
    fig = plots.throughput(root, source="a-baseline")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["bptt-snntorch"]
    assert plots.throughput(tmp_path / "empty").axes[0].get_title() == "no benchmark results"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_absent_folder_is_empty_not_an_error(tmp_path):
    res = report.load_results(tmp_path / "does-not-exist")
    assert res.empty and res.runs == [] and res.bench == []
    assert report.accuracy_table(res) == [] and report.bench_table(res) == []
    msg = report.missing_message(res, "mnist")
    assert "does not exist" in msg and "5 of 5 runs absent" in msg
    assert "  python -m microcircuit runs mnist-mlp\n" in msg  # all rules missing: no --rules filter
    custom = report.missing_message(res, "cifar10", commands="make cifar")
    assert "  make cifar" in custom and "microcircuit train" not in custom
    with pytest.raises(ValueError, match="no runs for dataset"):
        plots.learning_curves(res, "mnist")


def test_corrupt_files_are_skipped_and_listed(results_root):
    bad = results_root / "mnist" / "mnist-mlp" / "dfa"
    bad.mkdir()
    (bad / "log.json").write_text("{ not json")
    (results_root / "bench" / "broken.json").write_text(json.dumps({"no": "results"}))
    res = report.load_results(results_root)
    assert len(res.runs) == 5 and len(res.bench) == 1
    assert len(res.problems) == 2
    assert next(r for r in report.accuracy_table(res) if r["rule"] == "dfa")["status"] == report.MISSING


def test_no_gap_against_an_unfinished_bp_run(tmp_path):
    root = tmp_path / "r"
    write_run(root, "mnist", "mnist-mlp", "bp", [0.9], status="running", epochs=20)
    write_run(root, "mnist", "mnist-mlp", "scfa", [0.95, 0.97])
    assert all(r["gap_to_bp_pct"] is None for r in report.accuracy_table(root))


def test_run_without_epochs(tmp_path):
    root = tmp_path / "r"
    write_run(root, "mnist", "mnist-mlp", "bp", [], status="running")
    row = report.accuracy_table(root)[0]
    assert row["status"] == "running" and row["epochs"] == 0 and row["final_accuracy"] is None


def test_diverged_status_is_shortened(tmp_path):
    root = tmp_path / "r"
    write_run(root, "mnist", "mnist-mlp", "fa", [0.3], status="diverged: training diverged at epoch 2 ...")
    row = next(r for r in report.accuracy_table(root) if r["rule"] == "fa")
    assert row["status"] == "diverged"


def test_missing_message_counts_only_absent_runs(results_root):
    msg = report.missing_message(results_root, "mnist")
    assert "1 of 5 runs absent" in msg and "python -m microcircuit runs mnist-mlp --rules dfa\n" in msg
    assert report.missing_message(results_root, "mnist", rules=("bp", "fa")).startswith("All runs are present")


def test_train_command_uses_presets():
    cmd = presets.train_command("mnist", "scfa")
    assert cmd == ("python -m microcircuit train --preset mnist-mlp --rule scfa --seed 0 "
                   "--out data/results/mnist/mnist-mlp/scfa/seed-0 --checkpoint runs/mnist-mlp/scfa/seed-0.npz --quiet")
    # the same places as the runs the sweep and `runs` make
    from microcircuit import training

    out, ckpt = training.run_paths("mnist-mlp", "scfa", 2, results="data/results", runs="runs")
    assert f"--seed 2 --out {out} --checkpoint {ckpt} " in presets.train_command("mnist", "scfa", seed=2)
    other = presets.train_command("fashion-mnist", "bp", preset="mnist-mlp")
    assert "--preset mnist-mlp --dataset fashion-mnist --rule bp --seed 0 --out data/results/fashion-mnist/mnist-mlp/bp" in other
    spiking = presets.train_command("mnist", "microcircuit-spiking")
    assert "--rule microcircuit --mode spiking" in spiking and "/mnist-mlp/microcircuit-spiking/seed-0 " in spiking
    from microcircuit.presets import PRESETS

    for dataset in ("mnist", "fashion-mnist", "cifar10"):
        preset = presets.preset_for(dataset)
        assert preset is None or PRESETS[preset]["dataset"] == dataset or dataset != "cifar10"
    assert presets.runs_command("mnist-mlp", ["bp", "fa"]) == "python -m microcircuit runs mnist-mlp --rules bp fa"


def test_report_markdown_and_cli(results_root, tmp_path):
    from microcircuit.cli import main

    out = tmp_path / "REPORT.md"
    assert main(["report", "--root", str(results_root), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Test accuracy" in text and "## Speed and memory" in text and "## Provenance" in text
    assert "| MNIST | mnist-mlp | rate-BP | 1 | 98.00 | s0 98.00 |" in text
    assert "0.91" in text and "Sanfiz" in text  # the BioTorch reference table


def test_report_markdown_without_results(tmp_path):
    text = report.report_markdown(tmp_path / "nothing")
    assert "No training runs found" in text and "python -m microcircuit runs mnist-mlp" in text


def test_figures_have_labelled_axes(results_root):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = plots.learning_curves(results_root, "mnist")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and "accuracy" in ax.get_ylabel()
    assert len(ax.lines) == 4
    fig = plots.learning_curves(results_root, "mnist", metric="train_accuracy")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "training accuracy (%)" and len(ax.lines) == 1  # only BP's log has it
    assert list(ax.lines[0].get_ydata()) == pytest.approx([92.0, 98.0, 99.0])
    fig = plots.alignment_curves(results_root, "mnist")
    assert len(fig.axes) == 1 and "degrees" in fig.axes[0].get_ylabel()
    fig = plots.accuracy_overview(results_root)
    assert len([a for a in fig.axes if a.lines]) == 2  # mnist and cifar10 panels
    assert plots.accuracy_overview(results_root, datasets=["fashion-mnist"]) is None
    fig = plots.throughput(results_root)
    assert "samples/s" in fig.axes[0].get_ylabel()
    import matplotlib.pyplot as plt

    plt.close("all")


# ------------------------------------------------- chapter 7-9 figures (plots, widgets)
def test_chapter_figures_have_labelled_axes_and_close_themselves():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from microcircuit import plots as pp

    fig = pp.hebbian_figure(0.5, g=0.8, r_pre=(1.0, 0.5, 0.0))
    dW = fig.axes[1].patches
    assert [round(p.get_height(), 6) for p in dW] == [0.4, 0.2, 0.0]  # eta * g * a * r_k
    assert "ΔW" in fig.axes[1].get_ylabel() and fig.axes[1].get_xlabel() == "presynaptic cell k"
    neg = pp.hebbian_figure(-0.5, g=0.8, r_pre=(1.0,))
    assert [round(p.get_height(), 6) for p in neg.axes[0].patches] == [0.0, 0.4]  # only E- fires
    fig = pp.convergence([10, 100, 1000], {"layer 1": [0.3, 0.1, 0.03]}, T_e=16)
    assert "trials" in fig.axes[0].get_xlabel() and "error" in fig.axes[0].get_ylabel()
    history = {"bp": [[0, 0], [0, 0]], "fa": [[92, 0], [80, 0]]}
    fig = pp.alignment_meter_figure(1, history)
    assert len(fig.axes) == 1 and "degrees" in fig.axes[0].get_xlabel()
    assert [p.get_width() for p in fig.axes[0].patches] == [0, 80]
    assert plt.get_fignums() == []

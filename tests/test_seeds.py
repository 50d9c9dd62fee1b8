"""Results over seeds: mean +- sd, paired gaps to BP and identical logs, on result folders
built in tmp_path with known accuracies, checked against independent numpy computations."""

import json
import math

import numpy as np
import pytest

from microcircuit import plots, report, seeds

T_975_DF2 = 4.302653  # Student's t, 97.5 % quantile, 2 degrees of freedom (published tables)

BP = {0: 0.9810, 1: 0.9790, 2: 0.9850}
SCFA = {0: 0.9760, 1: 0.9770, 2: 0.9790}
FA = {0: 0.9600, 1: 0.9480, 2: 0.9550}


def write_seed(root, preset, rule, seed, accuracies, status="done", planned=None, blas="1", commit="c" * 40,
               alignment=None):
    folder = root / "mnist" / preset / rule / f"seed-{seed}"
    folder.mkdir(parents=True)
    records = [{"epoch": k, "train_loss": 1.0 / k, "seconds": 10.0 + seed + len(rule), "test_accuracy": acc,
                "test_loss": 2.0 / k, "alignment_deg": alignment or [45.0 + k, 0.0]}
               for k, acc in enumerate(accuracies, start=1)]
    prov = {"git_commit": commit, "backend": "numpy", "dtype": "float32", "seed": seed, "blas_threads": blas,
            "machine": "x86_64 2 cpus", "numpy": "2.0", "data_checksum": "f" * 64}
    log = {"config": {"rule": rule, "epochs": planned or len(accuracies), "lr": 1e-3, "seed": seed},
           "provenance": prov, "segments": [dict(prov, from_epoch=0, to_epoch=len(accuracies))],
           "status": status, "wall_seconds": 60.0, "epochs": records}
    (folder / "log.json").write_text(json.dumps(log))
    return folder


def curve(final):
    return [final - 0.02, final - 0.01, final]


@pytest.fixture
def three_seeds(tmp_path):
    root = tmp_path / "results"
    for s in range(3):
        write_seed(root, "mnist-mlp", "bp", s, curve(BP[s]))
        write_seed(root, "mnist-mlp", "scfa", s, curve(SCFA[s]))
        write_seed(root, "mnist-mlp", "microcircuit", s, curve(SCFA[s]))  # the same log, wall time aside
        write_seed(root, "mnist-mlp", "fa", s, curve(FA[s]), alignment=[80.0 - s, 0.0])
    return root


def rows_of(root, **kw):
    return {r["rule"]: r for r in report.accuracy_table(root, **kw) if r["preset"] == "mnist-mlp"}


def test_all_seeds_are_read_by_default_and_one_can_be_picked(three_seeds):
    assert len(report.load_results(three_seeds).runs) == 12
    assert {r["seed"] for r in report.load_results(three_seeds, seeds=(1,)).runs} == {1}


def test_mean_sd_and_paired_gap_match_numpy(three_seeds):
    rows = rows_of(three_seeds)
    for rule, accs in (("bp", BP), ("scfa", SCFA), ("fa", FA)):
        a = np.array([accs[s] for s in range(3)])
        assert rows[rule]["final_accuracy"] == pytest.approx(a.mean(), abs=1e-12)
        assert rows[rule]["final_accuracy_sd"] == pytest.approx(a.std(ddof=1), abs=1e-12)
        assert rows[rule]["n_seeds"] == 3 and rows[rule]["status"] == "done"
    fa = rows["fa"]
    d = 100 * (1 - np.array([FA[s] for s in range(3)])) - 100 * (1 - np.array([BP[s] for s in range(3)]))
    half = T_975_DF2 * d.std(ddof=1) / math.sqrt(3)
    assert fa["gap_to_bp_pct"] == pytest.approx(d.mean(), abs=1e-4)
    assert fa["gap_sd"] == pytest.approx(d.std(ddof=1), abs=1e-9) and fa["gap_n"] == 3
    assert fa["gap_low"] == pytest.approx(d.mean() - half, abs=1e-6)
    assert fa["gap_high"] == pytest.approx(d.mean() + half, abs=1e-6)
    assert fa["gap_low"] > 0 and "larger than the seed noise" in fa["gap_verdict"]  # FA is clearly worse here
    assert fa["gap_verdict"].startswith("FA's test error − rate-BP's is +")
    scfa = rows["scfa"]  # errors 0.5, 0.2, 0.6 pp above BP's: the interval still contains 0
    assert scfa["gap_low"] < 0 < scfa["gap_high"] and "within the seed noise" in scfa["gap_verdict"]
    assert rows["fa"]["accuracy_text"] == f"{100 * np.mean(list(FA.values())):.2f} ± " \
                                          f"{100 * np.std(list(FA.values()), ddof=1):.2f}"
    assert rows["fa"]["per_seed_text"] == "s0 96.00 · s1 94.80 · s2 95.50"
    assert rows["bp"]["gap_text"] == "(baseline)" and rows["bp"]["gap_verdict"] is None
    assert rows["fa"]["gap_to_bptt_pct"] is None and rows["fa"]["bptt_gap_text"] is None  # no BPTT run here


BPTT = {0: 0.9830, 2: 0.9800}  # seed 1 unfinished: the pairing uses seeds 0 and 2 only


def test_gap_to_bptt_is_paired_by_the_seeds_both_finished(three_seeds):
    write_seed(three_seeds, "mnist-mlp", "bptt", 0, curve(BPTT[0]))
    write_seed(three_seeds, "mnist-mlp", "bptt", 1, [0.5], status="running", planned=3)
    write_seed(three_seeds, "mnist-mlp", "bptt", 2, curve(BPTT[2]))
    rows = rows_of(three_seeds, rules=("bp", "bptt", "fa"))
    d = np.array([100 * (BPTT[s] - FA[s]) for s in (0, 2)])  # FA's error minus BPTT's, per seed
    fa = rows["fa"]
    assert fa["gap_to_bptt_pct"] == pytest.approx(d.mean(), abs=1e-4) and fa["bptt_gap_n"] == 2
    assert fa["bptt_gap_seeds"] == [0, 2] and fa["bptt_gap_sd"] == pytest.approx(d.std(ddof=1), abs=1e-9)
    assert fa["bptt_gap_verdict"].startswith("FA's test error − BPTT's is +")
    assert rows["bptt"]["bptt_gap_text"] == "(baseline)" and rows["bp"]["gap_to_bptt_pct"] is not None
    assert fa["gap_to_bp_pct"] != fa["gap_to_bptt_pct"]  # two yardsticks, two numbers
    lines = report.gap_verdicts(three_seeds, rules=("bp", "bptt", "fa"), base="bptt")
    assert any(line.startswith("MNIST, mnist-mlp: FA's test error − BPTT's") for line in lines)


def test_runs_in_progress_and_missing_seeds_are_shown_not_averaged(three_seeds):
    write_seed(three_seeds, "mnist-mlp", "dfa", 0, curve(0.97))
    write_seed(three_seeds, "mnist-mlp", "dfa", 1, [0.5], status="running", planned=3)
    dfa = rows_of(three_seeds)["dfa"]
    assert dfa["status"] == "1 done, 1 running, 1 missing"
    assert dfa["n_seeds"] == 1 and dfa["final_accuracy"] == 0.97 and dfa["final_accuracy_sd"] is None
    assert dfa["per_seed_text"] == "s0 97.00 · s1 running (1/3 ep., 50.00) · s2 missing"
    # the paired gap uses only the seeds both rules finished: seed 0
    assert dfa["gap_n"] == 1 and dfa["gap_seeds"] == [0]
    assert dfa["gap_to_bp_pct"] == pytest.approx(100 * (BP[0] - 0.97), abs=1e-4)
    assert "rests on one seed" in dfa["gap_verdict"]
    line = next(x for x in report.accuracy_table(three_seeds).markdown().splitlines() if "| DFA |" in x)
    assert "| 1 | 97.00 | s0 97.00 · s1 running (1/3 ep., 50.00) · s2 missing |" in line
    assert "| +1.10 (1 seed) |" in line and line.endswith("| 1 done, 1 running, 1 missing | \u2014 |")


def test_one_seed_is_one_seed(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "bp", 0, [0.98])
    write_seed(root, "mnist-mlp", "scfa", 0, [0.97])
    rows = rows_of(root)
    assert rows["scfa"]["accuracy_text"] == "97.00" and rows["scfa"]["final_accuracy_sd"] is None
    assert rows["scfa"]["gap_text"] == "+1.00 (1 seed)" and rows["scfa"]["gap_sd"] is None
    text = report.headline(root)
    assert "SC-FA                           97.00  1 seed   error − rate-BP's +1.00 (1 seed)" in text
    assert "±" not in text and "SC-FA's test error − rate-BP's rests on one seed" in text


def test_headline_gives_mean_sd_seeds_and_verdicts(three_seeds):
    text = report.headline(three_seeds)
    lines = text.splitlines()
    assert lines[0] == "MNIST, mnist-mlp (3 epochs), final test accuracy (%):"
    a = 100 * np.array(list(SCFA.values()))
    assert f"SC-FA {a.mean():.2f} ± {a.std(ddof=1):.2f} 3 seeds" in " ".join(text.split())
    assert sum("seed noise" in x for x in lines) == 3  # FA, SC-FA, microcircuit


def test_identical_logs_are_detected(three_seeds):
    eq = report.equivalence_table(three_seeds)
    assert [r["seed"] for r in eq] == [0, 1, 2] and all(r["identical"] for r in eq)
    assert eq[0]["verdict"] == "bit-identical: all 3 per-epoch records equal (wall time aside)."
    assert "bit-identical" in eq.markdown()


def test_one_differing_record_is_found_with_its_reason(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "microcircuit", 0, [0.90, 0.95, 0.96])
    write_seed(root, "mnist-mlp", "scfa", 0, [0.90, 0.95 + 1e-4, 0.96], blas="2")
    write_seed(root, "mnist-mlp", "microcircuit", 1, [0.90, 0.95, 0.96])
    write_seed(root, "mnist-mlp", "scfa", 1, [0.90, 0.95, 0.9601])
    row0, row1 = report.equivalence_table(root)
    assert not row0["identical"] and row0["first_difference"] == (2, "test_accuracy", 0.95, 0.95 + 1e-4)
    assert row0["reasons"] == ["blas_threads 1 vs 2"] and "the provenance shows blas_threads 1 vs 2" in row0["verdict"]
    assert row1["first_difference"][0] == 3 and "no difference that would explain it" in row1["verdict"]


def test_a_differing_commit_in_a_resumed_segment_is_a_reason(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "microcircuit", 0, [0.9, 0.8])
    folder = write_seed(root, "mnist-mlp", "scfa", 0, [0.9, 0.7])
    log = json.loads((folder / "log.json").read_text())
    log["segments"].append(dict(log["segments"][0], git_commit="d" * 40, from_epoch=1))
    (folder / "log.json").write_text(json.dumps(log))
    (row,) = report.equivalence_table(root)
    assert row["reasons"] == [f"git_commit {'c' * 10} vs {'c' * 10}/{'d' * 10}"]


def test_a_run_resumed_on_a_gpu_names_both_backends_and_commits(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "bp", 0, [0.9, 0.8])
    folder = write_seed(root, "mnist-mlp", "microcircuit", 0, [0.9, 0.8])
    log = json.loads((folder / "log.json").read_text())
    log["segments"][0]["to_epoch"] = 1
    log["segments"].append(dict(log["segments"][0], backend="cupy", machine="x86_64 16 cpus", git_commit="d" * 40,
                                from_epoch=1, to_epoch=2))
    (folder / "log.json").write_text(json.dumps(log))
    rows = {r["rule"]: r for r in report.runs_table(root)}
    assert rows["microcircuit"]["backend"] == "numpy/cupy" and rows["bp"]["backend"] == "numpy"
    assert rows["microcircuit"]["commit"] == f"{'c' * 10}/{'d' * 10}" and rows["bp"]["commit"] == "c" * 10
    by_backend = {r["backend"]: r for r in report.provenance_table(root)}
    assert by_backend["numpy"]["runs"] == 2 and by_backend["cupy"]["runs"] == 1   # the resumed run counts in both
    assert by_backend["cupy"]["machine"] == "x86_64 16 cpus"
    assert seeds.provenance_values({"provenance": {}, "segments": [{}]}, "blas_threads") is None  # not recorded


def test_a_run_in_progress_is_identical_so_far_not_identical(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "microcircuit", 0, [0.90, 0.95, 0.96])
    write_seed(root, "mnist-mlp", "scfa", 0, [0.90, 0.95], status="running", planned=3)
    (row,) = report.equivalence_table(root)
    assert not row["identical"] and row["compared"] == 2
    assert row["verdict"] == "identical so far: the 2 epochs both have are equal (SC-FA running at epoch 2)."


def test_compare_logs_treats_nan_as_equal_and_ignores_only_seconds():
    base = {"status": "done", "config": {}, "provenance": {}}
    a = dict(base, epochs=[{"epoch": 1, "seconds": 1.0, "test_loss": float("nan")}])
    b = dict(base, epochs=[{"epoch": 1, "seconds": 9.0, "test_loss": float("nan")}])
    assert seeds.compare_logs(a, b)["identical"]
    c = dict(base, epochs=[{"epoch": 1, "seconds": 1.0, "test_loss": float("nan"), "extra": 0}])
    assert seeds.compare_logs(a, c)["first_difference"] == (1, "extra", None, 0)


def test_a_setting_absent_from_an_older_log_counts_as_its_default():
    old = {"config": {"T": 8}, "provenance": {}}  # written before threshold_adaptation existed
    new = {"config": {"T": 8, "threshold_adaptation": 0.0, "target_rate": 0.1}, "provenance": {}}
    assert seeds.provenance_differences(old, new) == []
    on = {"config": {"T": 8, "threshold_adaptation": 0.01}, "provenance": {}}
    assert seeds.provenance_differences(old, on) == ["setting threshold_adaptation 0.0 vs 0.01"]


def test_report_markdown_shows_spread_gaps_and_equivalence(three_seeds, tmp_path):
    from microcircuit.cli import main

    out = tmp_path / "REPORT.md"
    assert main(["report", "--root", str(three_seeds), "--out", str(out)]) == 0
    text = out.read_text()
    assert "### Gaps to rate-BP against the seed noise" in text and "### Gaps to BPTT against the seed noise" in text and "- MNIST, mnist-mlp: FA's test error − rate-BP's" in text
    assert "| MNIST | mnist-mlp | 0 | bit-identical: all 3 per-epoch records equal (wall time aside). |" in text
    assert "## Every run" in text and text.count("| MNIST | mnist-mlp | SC-FA | ") == 5  # accuracy, alignment, 3 runs


def test_alignment_table_averages_finished_seeds(three_seeds):
    fa = next(r for r in report.alignment_table(three_seeds) if r["rule"] == "fa")
    assert fa["n_seeds"] == 3 and fa["final_deg"] == [pytest.approx(79.0), 0.0]


def test_learning_curves_plot_the_mean_with_a_min_max_band(three_seeds):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plots.learning_curves(three_seeds, "mnist", rules=("fa",))
    ax = fig.axes[0]
    (line,) = ax.lines
    finals = np.array([FA[s] for s in range(3)])
    curves = 100 * np.array([curve(FA[s]) for s in range(3)])
    assert list(line.get_ydata()) == pytest.approx(list(curves.mean(axis=0)))
    assert line.get_label() == "FA (3 seeds)" and "min–max" in ax.get_legend().get_title().get_text()
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(curves.min()) and ys.max() == pytest.approx(100 * finals.max())
    fig = plots.accuracy_overview(three_seeds)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if hasattr(c, "has_yerr")]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:4] == ["rate-BP (n=3)", "FA (n=3)", "DFA (n=0)", "SC-FA (n=3)"]
    fa_bar = bars[1]  # error bars of BP, FA, SC-FA, microcircuit: DFA has no run
    seg = fa_bar.lines[2][0].get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * 100 * finals.std(ddof=1))
    plt.close("all")


def test_headline_lists_a_missing_rule_as_missing(tmp_path):
    root = tmp_path / "r"
    write_seed(root, "mnist-mlp", "bp", 0, [0.98])
    lines = report.headline(root).splitlines()
    assert len(lines) == 1 + 5 and lines[4].split() == ["SC-FA", "—", "0", "seeds", "[missing]"]


def _fashion_seed(root, preset, rule, seed, final):
    folder = root / "fashion-mnist" / preset / rule / f"seed-{seed}"
    folder.mkdir(parents=True)
    log = {"config": {"rule": rule, "epochs": 1, "seed": seed}, "provenance": {"seed": seed}, "status": "done",
           "epochs": [{"epoch": 1, "train_loss": 1.0, "seconds": 1.0, "test_accuracy": final}]}
    (folder / "log.json").write_text(json.dumps(log))


def test_depth_gaps_pair_each_rule_with_bptt_by_seed_at_every_depth(tmp_path):
    acc = {"bptt": [0.90, 0.89, 0.88, 0.87], "fa": [0.89, 0.87, 0.85, 0.83], "scfa": [0.895, 0.885, 0.875, 0.865]}
    presets = ("fashion-mlp", "fashion-mlp2", "fashion-mlp3", "fashion-mlp4")
    for depth, name in enumerate(presets):
        for rule, finals in acc.items():
            for seed in (0, 1):
                if (rule, seed, depth) != ("fa", 1, 3):  # FA's seed 1 never finished at depth 4
                    _fashion_seed(tmp_path, name, rule, seed, finals[depth] - 0.002 * seed * (rule == "fa"))
    rows = {(r["preset"], r["rule"]): r for r in report.depth_gaps(tmp_path)}
    assert [rows[p, "fa"]["hidden"] for p in presets] == [1, 2, 3, 4]
    fa2 = rows["fashion-mlp2", "fa"]
    assert fa2["seeds"] == [0, 1] and fa2["gaps"][0] == pytest.approx(2.0) and fa2["gaps"][1] == pytest.approx(2.2)
    assert fa2["mean"] == pytest.approx(2.1) and (fa2["low"], fa2["high"]) == pytest.approx((2.0, 2.2))
    assert rows["fashion-mlp4", "fa"]["seeds"] == [0]  # only the seeds both finished
    assert rows["fashion-mlp3", "scfa"]["mean"] == pytest.approx(0.5)
    assert ("fashion-mlp", "bptt") not in rows  # the yardstick is no row of its own
    fig = plots.depth_gaps(tmp_path)
    ax = fig.axes[0]
    assert [list(line.get_xdata()) for line in ax.lines[:2]] == [[1, 2, 3, 4]] * 2
    assert ax.get_ylabel() == "test error − BPTT's (points)" and len(ax.collections) == 2

"""The benchmark's figures are well formed, and the forward pass streams over time."""

import pytest

from microcircuit import bench, presets
from microcircuit.cli import main


def test_peak_array_memory_does_not_grow_with_T():
    short = bench.measure("microcircuit", T=2, batch_size=16, batches=2, layers=(64, 48, 10), warmup=1)
    long = bench.measure("microcircuit", T=16, batch_size=16, batches=2, layers=(64, 48, 10), warmup=1)
    assert short["samples_per_s"] > 0 and long["samples_per_s"] > 0
    assert long["peak_array_mb"] <= 1.1 * short["peak_array_mb"] + 0.01


def test_bench_table_lists_every_rule():
    results = [bench.measure(rule, T=2, batch_size=8, batches=1, layers=(16, 12, 4), warmup=1)
               for rule in ("bp", "microcircuit")]
    table = bench.format_table(results)
    assert table.count("\n") == 2 and "microcircuit" in table and "bp" in table


def test_default_network_is_the_mnist_preset_that_cpu_json_measured():
    # data/results/bench/cpu.json was measured with 784-800-10, T = 8, batch 64, Adam and the
    # fast-sigmoid surrogate before benchmarks took presets; the default must still mean that
    settings = bench.network_settings()
    assert (settings["layers"], settings["T"], settings["batch_size"]) == ([784, 800, 10], 8, 64)
    assert (settings["optimizer"], settings["surrogate"]) == ("adam", "fast_sigmoid")
    assert not {"dataset", "epochs", "augment", "flip"} & set(settings)


def test_preset_network_with_overrides():
    settings = bench.network_settings("cifar10-conv-cpu", T=2, batch_size=4)
    ref = presets.preset("cifar10-conv-cpu")
    assert (settings["T"], settings["batch_size"]) == (2, 4)
    assert settings["layers"] == ref["layers"] and settings["weight_scale"] == ref["weight_scale"] == 2.0
    r = bench.measure("scfa", T=1, batch_size=2, batches=1, warmup=1, repeats=1, preset="cifar10-conv-cpu")
    assert r["network"] == "cifar10-conv-cpu" and (r["T"], r["batch_size"]) == (1, 2)
    assert list(r["layers"][0]) == [3, 32, 32] and r["samples_per_s"] > 0
    dense = bench.measure("bp", T=2, batch_size=8, batches=1, warmup=1, repeats=1, layers=(16, 12, 4))
    assert dense["network"] == "16-12-4" and dense["preset"] == "mnist-mlp"


def test_unknown_preset_is_refused_with_the_choices(capsys):
    assert main(["bench", "--preset", "cifar100-big"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("microcircuit bench: error: unknown preset 'cifar100-big'") and "cifar10-conv-cpu" in err


def test_run_passes_the_preset_to_each_process_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    results = bench.run(rules=("microcircuit",), Ts=(1,), batch_size=2, batches=1, preset="cifar10-conv-cpu", out=out)
    import json

    doc = json.loads(out.read_text())
    assert doc["results"] == results and results[0]["network"] == "cifar10-conv-cpu"
    assert doc["provenance"]["backend"] == "numpy" and results[0]["T"] == 1
    from microcircuit import backend

    ours = next(r for r in results if r["rule"] == "microcircuit")  # (BPTT's comes first where torch is installed)
    assert doc["provenance"]["jit"] == ours["jit"] == backend.kernels_enabled()  # were the fused kernels on


def test_summary_gives_the_headline_ratios():
    results = [{"rule": "bptt-snntorch", "T": 8, "cpu_samples_per_s": 1000.0},
               {"rule": "microcircuit", "T": 8, "cpu_samples_per_s": 5000.0, "gemm_bound": 0.55, "jit": True, "x_bptt": 5.0},
               {"rule": "microcircuit-spiking", "T": 8, "cpu_samples_per_s": 3100.0, "jit": True},
               {"rule": "bp", "T": 16, "cpu_samples_per_s": 10.0}]
    assert bench.summary(results) == ["microcircuit (rate), T=8, Numba kernels on: 5.00x BPTT per CPU s, "
                                      "GEMM bound 55 % of the step, spiking/rate 0.62"]
    assert bench.summary(results[1:2]) == ["microcircuit (rate), T=8, Numba kernels on: 5.00x BPTT per CPU s, "
                                           "GEMM bound 55 % of the step"]


def test_summary_says_how_to_get_the_bptt_baseline(monkeypatch):
    monkeypatch.setattr(bench, "has_bptt", lambda: False)
    rate = {"rule": "microcircuit", "T": 8, "cpu_samples_per_s": 5000.0, "gemm_bound": 0.5, "jit": False}
    assert bench.summary([rate]) == ["microcircuit (rate), T=8, Numba kernels off: x BPTT not measured "
                                     "(pip install 'microcircuit[bptt]' adds snnTorch), GEMM bound 50 % of the step"]


def test_summary_of_a_gpu_run_names_cupys_kernels_and_no_bptt_hint(monkeypatch):
    monkeypatch.setattr(bench, "has_bptt", lambda: False)
    rows = [{"rule": "microcircuit", "T": 8, "cpu_samples_per_s": 4000.0, "gemm_bound": None, "jit": True,
             "backend": "cupy"},
            {"rule": "microcircuit-spiking", "T": 8, "cpu_samples_per_s": 3000.0, "jit": True, "backend": "cupy"}]
    assert bench.summary(rows) == ["microcircuit (rate), T=8, CuPy kernels on: spiking/rate 0.75"]


def test_summary_of_a_multithreaded_run_gives_wall_time_ratios_and_no_gemm_bound():
    rows = [{"rule": "microcircuit", "T": 8, "samples_per_s": 4000.0, "cpu_samples_per_s": 400.0, "gemm_bound": 0.01,
             "jit": True, "x_bptt": 2.0},
            {"rule": "microcircuit-spiking", "T": 8, "samples_per_s": 2000.0, "cpu_samples_per_s": 100.0, "jit": True}]
    assert bench.summary(rows, one_thread=False) == ["microcircuit (rate), T=8, Numba kernels on: 2.00x BPTT per CPU s, "
                                                     "spiking/rate 0.50"]
    assert bench.summary(rows)[0].endswith("GEMM bound 1 % of the step, spiking/rate 0.25")


def test_gemm_bound_counts_the_products_a_step_cannot_avoid():
    from microcircuit import Network

    net = Network([784, 800, 10], T=8, batch_size=64)
    # forward (the first layer once: constant input), Hebbian, and feedback above the first layer
    assert bench.products(net) == [(1, (800, 784, 64)), (1, (800, 64, 784)),
                                   (8, (10, 800, 64)), (1, (10, 64, 800)), (1, (800, 10, 64))]
    bern = Network([20, 8, 4], T=3, batch_size=5, encoding="bernoulli")
    assert [t for t, _ in bench.products(bern)] == [3, 1, 3, 1, 1]
    r = bench.measure("microcircuit", T=2, batch_size=16, batches=3, layers=(64, 48, 10), warmup=1, repeats=1)
    assert 0 < r["gemm_bound"] < 2 and r["cpu_samples_per_s"] > 0


def test_ratio_to_bptt_is_per_cpu_second_at_the_same_T():
    rows = [{"rule": "bptt-snntorch", "T": 8, "cpu_samples_per_s": 1000.0},
            {"rule": "microcircuit", "T": 8, "cpu_samples_per_s": 5200.0},
            {"rule": "microcircuit", "T": 16, "cpu_samples_per_s": 4000.0}]
    bench.add_ratios(rows)
    assert rows[1]["x_bptt"] == 5.2 and "x_bptt" not in rows[2] and "x_bptt" not in rows[0]


@pytest.mark.skipif(not bench.has_bptt(), reason="torch and snntorch not installed (optional)")
def test_bptt_baseline_trains_the_presets_network():
    r = bench.measure_bptt(T=2, batch_size=4, batches=1, warmup=1, preset="cifar10-conv-cpu")
    assert r["rule"] == "bptt-snntorch" and r["T"] == 2 and r["cpu_samples_per_s"] > 0
    assert r["layers"][1] == {"type": "Conv", "channels": 32, "kernel": 3, "stride": 1, "padding": 1}


def test_set_jit_reaches_the_measuring_processes(tmp_path):
    from microcircuit import backend

    pytest.importorskip("numba")
    kept = backend.jit_enabled()
    try:
        backend.set_jit(False)
        (row,) = bench.run(rules=["microcircuit"], batches=1, batch_size=8, layers=[64, 16, 10], bptt=False)
    finally:
        backend.set_jit(kept)
    assert row["jit"] is False  # recorded by the process that measured


def test_compare_interleaves_rounds_and_pairs_each_ratio_within_its_round():
    """The wall-clock comparison, on a fake measurement: every (rule, T, threads) once per round,
    rounds in shuffled orders, medians and ranges over rounds, ratios to snnTorch within a round."""
    from microcircuit import bench

    calls = []
    speed = {"bptt-snntorch": 100.0, "bp": 400.0, "bptt": 150.0}
    slow_round = {1: 0.5}  # round 1 is a slow moment of the machine, for every case alike

    def fake(kwargs, threads):
        rule = kwargs.get("rule", "bptt-snntorch")
        r = sum(1 for c in calls if c[:2] == (rule, threads))  # this case's round
        calls.append((rule, threads, r))
        rate = speed[rule] * threads * slow_round.get(r, 1.0) * (1 + 0.01 * r)
        return {"rule": rule, "T": 8, "batch_size": 64, "network": "784-800-10", "samples_per_s": rate}

    rows = bench.compare(rules=("bp", "bptt"), Ts=(8,), threads=(1, 2), rounds=3, bptt=True, measure_one=fake)
    assert len(calls) == 3 * 3 * 2 and {c[2] for c in calls} == {0, 1, 2}
    orders = [[c[:2] for c in calls[k * 6:(k + 1) * 6]] for k in range(3)]
    assert len({tuple(o) for o in orders}) > 1  # the rounds are interleaved in different orders
    row = {(r["rule"], r["threads"]): r for r in rows}
    bp2 = row["bp", 2]
    rates = sorted(400.0 * 2 * f * (1 + 0.01 * r) for r, f in ((0, 1.0), (1, 0.5), (2, 1.0)))
    assert bp2["samples_per_s"] == rates[1] and (bp2["low"], bp2["high"]) == (rates[0], rates[2])
    assert bp2["x_snntorch"] == 4.0 and bp2["x_low"] == bp2["x_high"] == 4.0  # the slow round slows both sides
    assert row["bptt", 1]["x_snntorch"] == 1.5 and row["bptt-snntorch", 1]["x_snntorch"] is None
    assert "3 interleaved rounds" in bench.format_comparison(rows)

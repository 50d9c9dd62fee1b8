"""The benchmark's figures are well formed, and the forward pass streams over time."""

from microcircuit import bench


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

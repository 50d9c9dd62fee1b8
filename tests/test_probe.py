"""The probe (``python -m microcircuit probe``): a few short epochs with each layer's activity."""

from __future__ import annotations

import pytest

from microcircuit import probe
from microcircuit.cli import main

TINY = {"layers": [784, 16, 10], "T": 3}


def test_probe_reports_each_epoch_and_each_layers_activity():
    lines = []
    rows = probe.probe("mnist-mlp", "bp", settings=TINY, train=300, val=100, train_eval=100, epochs=2,
                       source="sample", echo=lines.append)
    assert [r["epoch"] for r in rows] == [1, 2] and len(lines) == 2 and lines[0].startswith("epoch 1: train loss")
    for r in rows:
        assert len(r["rate"]) == len(r["silent"]) == len(r["gain"]) == 2  # hidden and output layer
        assert all(0 <= v <= 1 for v in r["rate"] + r["silent"]) and all(g > 0 for g in r["gain"])
        assert 0 <= r["validation_accuracy"] <= 1 and r["threshold"] == []


def test_probe_shows_a_silent_layer():
    rows = probe.probe("mnist-mlp", "bp", settings=dict(TINY, weight_scale=1e-3), train=200, val=100, epochs=1,
                       source="sample", echo=lambda _: None)
    assert rows[0]["silent"][0] == 1.0 and rows[0]["rate"][0] == 0.0  # no hidden cell fired on any image


def test_probe_settings_and_their_mistakes():
    assert probe.parse_settings(["weight_scale=1", "lr_schedule=constant", "layers=[784, 8, 10]"]) == \
        {"weight_scale": 1, "lr_schedule": "constant", "layers": [784, 8, 10]}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        probe.parse_settings(["lr"])
    with pytest.raises(ValueError, match="train \\+ val must be at most"):
        probe.probe("mnist-mlp", "bp", settings=TINY, train=10**6, val=10, source="sample", echo=lambda _: None)


def test_probe_on_the_command_line(capsys):
    assert main(["probe", "mnist-mlp", "--rule", "fa", "--sample", "--train", "200", "--val", "100", "--epochs", "1",
                 "--set", "layers=[784, 12, 10]", "T=2"]) == 0
    assert "rate" in capsys.readouterr().out
    assert main(["probe", "mnist-mlp", "--sample", "--set", "nonsense"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line

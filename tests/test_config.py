"""The network config, the rule registry and the command line built from them."""

import json

import numpy as np
import pytest
from conftest import toy

from microcircuit import Conv, Network, NetworkConfig, Pool, rules
from microcircuit.cli import main, parser
from microcircuit.config import is_dense


def test_config_round_trips_through_json_with_layer_specs():
    cfg = NetworkConfig(layers=[[3, 8, 8], Conv(4, 3), Pool(2), 10], rule="scfa", T=3, flip=True, seed=7)
    back = NetworkConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.layers[1] == Conv(4, 3) and back.in_shape == (3, 8, 8)
    assert cfg.to_dict()["layers"][:2] == [[3, 8, 8], {"type": "Conv", "channels": 4, "kernel": 3, "stride": 1,
                                                          "padding": 1}]
    assert not cfg.is_dense() and NetworkConfig(layers=[16, 8, 4]).is_dense() and not is_dense([(1, 4, 4), 4])
    with pytest.raises(ValueError, match=r"unknown network settings \['lrr'\]"):
        NetworkConfig.from_dict({**cfg.to_dict(), "lrr": 1})
    with pytest.raises(AttributeError):
        cfg.T = 5  # frozen: a network's settings never change under it


def test_network_from_a_config_is_the_network_from_keywords():
    cfg = NetworkConfig(layers=[16, 12, 4], rule="fa", T=4, seed=2)
    a, b = Network(cfg), Network([16, 12, 4], rule="fa", T=4, seed=2)
    assert a.config == b.config and a.T == 4
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    assert Network(cfg, lr=0.5).config.lr == 0.5 and Network(cfg).config.lr == cfg.lr


def test_fit_trains_to_the_end_of_the_schedule_unless_told():
    x, y = toy(64)
    net = Network([16, 8, 4], rule="bp", T=2, epochs=3, seed=0)
    net.partial_fit(x, y)
    assert net.fit(x, y).epoch_ == 3  # the remaining two epochs of the schedule
    assert net.fit(x, y).epoch_ == 3 and net.fit(x, y, epochs=1).epoch_ == 4


def test_registry_builds_every_rule_and_names_the_variants():
    assert rules.RULES == ("bp", "bptt", "fa", "dfa", "scfa", "microcircuit")
    assert rules.RUN_RULES == rules.RULES + ("microcircuit-spiking",)
    assert rules.FEEDBACK_RULES == ("bp", "fa", "dfa", "scfa", "microcircuit")
    for name in rules.RULES:
        net = Network([16, 8, 4], rule=name, T=2)
        assert net.rule.name == name and rules.label(name) and rules.color(name).startswith("#")
    assert rules.network_settings("microcircuit-spiking") == {"rule": "microcircuit", "mode": "spiking", "T_e": 16}
    assert rules.network_settings("fa") == {"rule": "fa"} and rules.label("scfa") == "SC-FA"
    assert (rules.label("bp"), rules.label("bptt")) == ("rate-BP", "BPTT")  # which yardstick ran
    assert rules.label("microcircuit") == "microcircuit, rate mode (= SC-FA)"
    with pytest.raises(ValueError, match="unknown rule 'hebb'"):
        rules.network_settings("hebb")
    with pytest.raises(ValueError, match="unknown rule 'microcircuit-spiking'"):
        rules.make_rule("microcircuit-spiking", mode="rate", T_e=4, feedback=None, seed=0)  # a variant: its network settings pick the rule


def test_the_command_line_offers_every_setting():
    args = parser().parse_args(["train", "--out", "x", "--theta", "0.5", "--T-e", "4", "--flip", "yes",
                                "--layers", "784,32,10", "--feedback", "random"])
    assert (args.theta, args.T_e, args.flip, args.layers, args.feedback) == (0.5, 4, True, [784, 32, 10], "random")
    for field in NetworkConfig.__dataclass_fields__:
        assert getattr(parser().parse_args(["train", "--out", "x"]), field) is None  # absent: not given


def test_a_bad_setting_ends_in_one_line(tmp_path, capsys):
    for argv, text in ((["--epochs", "0"], "--epochs: must be a positive int"), (["--rule", "hebb"], "unknown rule")):
        try:
            code = main(["train", "--dataset", "mnist", "--sample", "--out", str(tmp_path / "r"), "--quiet", *argv])
        except SystemExit as exit:  # argparse's own check
            code = exit.code
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("microcircuit train: error: ") and text in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_runs_trains_every_named_rule_of_a_preset_where_the_book_looks(tmp_path, capsys):
    argv = ["runs", "mnist-mlp", "--rules", "bp", "dfa", "--sample", "--epochs", "1", "--quiet",
            "--results", str(tmp_path / "res"), "--runs", str(tmp_path / "ckpt")]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["task"] for r in rows] == ["mnist-mlp/bp/seed-0", "mnist-mlp/dfa/seed-0"]
    for rule in ("bp", "dfa"):
        log = json.loads((tmp_path / "res" / "mnist" / "mnist-mlp" / rule / "seed-0" / "log.json").read_text())
        assert log["status"] == "done" and log["config"]["rule"] == rule and len(log["epochs"]) == 1
    capsys.readouterr()
    assert main(["runs", "nope"]) == 2
    assert capsys.readouterr().err.startswith("microcircuit runs: error: unknown preset 'nope'")

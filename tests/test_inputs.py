"""Bad inputs to the API (issue 15): layer sizes, empty inputs, labels that are not class indices,
epochs, unknown settings and alignment counts raise a ``ValueError`` naming the argument before
anything is trained or written; uint8 images warn once per call; NumPy scalars are settings like
any other.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reliability_helpers import KW, snapshot, toy as _toy

from microcircuit import DivergenceError, Network, backend, training


@pytest.mark.parametrize("layers", [[16, 8.5, 4], ["16", 8, 4], [16, 0, 4], [16, -3, 4], [16, 8, 0], [16, None, 4]])
def test_network_rejects_bad_layer_sizes(layers):
    with pytest.raises(ValueError, match="layers"):
        Network(layers)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict", "evaluate"])
def test_empty_inputs_are_a_value_error(method):
    net = Network([16, 8, 4], seed=0)
    x, y = np.zeros((0, 16), np.float32), np.zeros(0, int)
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises(ValueError, match="no samples"):
        getattr(net, method)(*args)
    assert net.epoch_ == 0


@pytest.mark.parametrize("labels", [np.array(["a", "b"] * 16), np.array([0.0, np.nan] * 16), [None] * 32])
def test_labels_that_are_not_class_indices_are_a_value_error(labels):
    net = Network([16, 8, 4], seed=0)
    x = np.random.default_rng(0).random((32, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="labels"):
        net.fit(x, labels)
    assert net.epoch_ == 0


@pytest.mark.parametrize("epochs", [0, -1, 2.5, "3"])
def test_fit_epochs_must_be_a_positive_int(epochs):
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    before = backend.to_numpy(net.plastic_layers[0].W).copy()
    with pytest.raises(ValueError, match="epochs"):
        net.fit(x, y, epochs=epochs)
    assert net.epoch_ == 0
    np.testing.assert_array_equal(backend.to_numpy(net.plastic_layers[0].W), before)


def test_uint8_images_warn_once_per_call_and_floats_do_not():
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    with pytest.warns(UserWarning, match="255") as caught:
        with pytest.raises(DivergenceError, match="scale them"):  # 0..255 saturates it: stopped, as a run is
            net.partial_fit((x * 255).astype(np.uint8), y)
    assert len([w for w in caught if "255" in str(w.message)]) == 1
    with pytest.warns(UserWarning, match="255"):
        net.predict((x * 255).astype(np.uint8))
    net = Network([16, 8, 4], seed=0)  # a fresh one: the epoch on raw pixels moved the weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.partial_fit(x, y)
        net.evaluate(x, y)


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_run_epochs_must_be_a_positive_int(tmp_path, epochs):
    x, y = _toy()
    with pytest.raises(ValueError, match="epochs"):
        training.run((x, y), None, tmp_path / "r", epochs=epochs, quiet=True, **KW)
    assert snapshot(tmp_path / "r") == {}


def test_run_on_no_samples_is_a_value_error_before_any_file(tmp_path):
    x, y = _toy()
    with pytest.raises(ValueError, match="no samples"):
        training.run((x[:0], y[:0]), None, tmp_path / "r", epochs=1, quiet=True, **KW)
    assert snapshot(tmp_path / "r") == {}


def test_numpy_scalars_are_settings_like_any_other(tmp_path):
    from microcircuit import training
    from microcircuit.data import load_sample

    net = Network([784, 8, 10], seed=np.int64(1), lr=np.float32(0.01), T=np.int64(2))
    net.save(tmp_path / "c.npz")
    back = Network.load(tmp_path / "c.npz")
    assert (back.config.seed, back.config.T) == (1, 2) and type(back.config.seed) is int
    x, y = load_sample("mnist", "train")
    log = training.run((x[:32], y[:32]), None, tmp_path / "run", epochs=1, layers=[784, 8, 10], T=2,
                       seed=np.int64(3), train_eval_samples=0, quiet=True)
    assert log["status"] == "done" and log["config"]["seed"] == 3


def test_run_names_an_unknown_setting_and_a_bad_alignment_count_before_training(tmp_path):
    from microcircuit import training
    from microcircuit.data import load_sample

    x, y = load_sample("mnist", "train")
    data = (x[:32], y[:32])
    with pytest.raises(ValueError, match="unknown network setting.*lrr"):
        training.run(data, None, tmp_path / "a", epochs=1, layers=[784, 8, 10], lrr=0.1, quiet=True)
    with pytest.raises(ValueError, match="alignment_samples must be an int >= 1"):
        training.run(data, None, tmp_path / "b", epochs=1, layers=[784, 8, 10], alignment_samples=0, quiet=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

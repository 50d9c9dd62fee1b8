"""The book's machinery: run tiers, figures, teaching widgets, configuration, chapters.

The chapters themselves are executed by nbval (``make nbval``) and the HTML by
``make browser``; this file checks the pieces those rely on, quickly.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from microcircuit import Network, plots, tiers, widgets
from microcircuit.neurons import LIFParameters, simulate

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


# ------------------------------------------------------------------------- tiers
def test_tier_defaults_to_book(monkeypatch):
    monkeypatch.delenv("MICROCIRCUIT_TIER", raising=False)
    assert tiers.tier() == "book"
    assert tiers.by_tier(smoke=1, book=2, full=3) == 2


@pytest.mark.parametrize("name, expected", [("smoke", 1), ("book", 2), ("full", 3), (" FULL ", 3)])
def test_by_tier_picks_the_active_tier(monkeypatch, name, expected):
    monkeypatch.setenv("MICROCIRCUIT_TIER", name)
    assert tiers.by_tier(smoke=1, book=2, full=3) == expected


def test_by_tier_full_falls_back_to_book():
    assert tiers.by_tier(smoke=1, book=2, tier_name="full") == 2
    assert tiers.by_tier(smoke=1, book=2, full=None, tier_name="smoke") == 1


def test_bad_tier_names_are_rejected(monkeypatch):
    monkeypatch.setenv("MICROCIRCUIT_TIER", "quick")
    with pytest.raises(ValueError, match="MICROCIRCUIT_TIER"):
        tiers.tier()
    with pytest.raises(ValueError, match="unknown run tier"):
        tiers.by_tier(smoke=1, book=2, tier_name="paper")


# ------------------------------------------------------------------------- plots
def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.axison]


def test_circuit_diagram_draws_one_marker_per_cell():
    fig = plots.circuit_diagram((4, 3, 2))
    counts = {c.get_label(): len(c.get_offsets()) for c in fig.axes[0].collections if c.get_label()}
    assert counts == {"input": 4, "pyramidal (P)": 5, "error E+": 5, "error E-": 5}


@pytest.mark.parametrize("sizes", [(3,), (3, 0, 2)])
def test_circuit_diagram_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError):
        plots.circuit_diagram(sizes)


def test_neuron_figures_have_labelled_axes_with_units():
    out = simulate(np.full((16, 3), 0.3))
    figs = [
        plots.raster(out["spikes"]),
        plots.membrane_trace(out["v"][:, 0], out["spikes"][:, 0], current=0.3),
        plots.rate_vs_current(np.linspace(0, 1, 5), np.linspace(0, 1, 5), T=16),
        plots.surrogate_curve(LIFParameters()),
        plots.encoding_raster(np.array([0.2, 0.8]), np.ones((8, 2))),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        for xlabel, ylabel in _labels(fig):
            assert xlabel or ylabel
    assert figs[0].axes[0].get_xlabel() == "time (ms)"
    assert "θ" in figs[1].axes[-1].get_ylabel()
    # plots never leave figures open in pyplot
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_raster_marks_every_spike():
    spikes = np.zeros((10, 3))
    spikes[[1, 4, 7], [0, 1, 2]] = 1
    fig = plots.raster(spikes, dt_ms=2.0)
    offsets = fig.axes[0].collections[0].get_offsets()
    assert len(offsets) == 3
    assert sorted(np.asarray(offsets)[:, 0].tolist()) == [4.0, 10.0, 16.0]  # steps 2, 5, 8 at 2 ms


def test_error_cells_draws_one_panel_per_plastic_layer():
    net = Network([6, 5, 4, 3], rule="microcircuit", T=4, seed=0)
    from microcircuit import backend
    from microcircuit.losses import one_hot

    r = net.forward(backend.asarray(np.random.default_rng(0).random((2, 6))))
    e = net.loss.error(r, one_hot(backend.asarray(np.array([0, 2])), 3))
    fig = plots.error_cells(net.rule.error_phase(net.layers, e))
    assert len(fig.axes) == 3
    assert "output" in fig.axes[0].get_ylabel()


# ----------------------------------------------------------------------- widgets
def _sweep(value):
    fig, ax = plots.figure(figsize=(2, 1.5))
    ax.plot([0, 1], [0, value])
    ax.set_xlabel("x")
    return fig


def test_static_slider_has_one_frame_per_value_and_a_range_input():
    slider = widgets.static_slider(_sweep, [0.1, 0.5, 0.9, 1.3], "slope", dpi=30)
    html = slider.html
    assert slider.n_frames == 4
    assert html.count('<img class="mc-frame"') == 4
    assert html.count("data:image/png;base64,") == 4
    assert len(re.findall(r'<input [^>]*type="range"[^>]*max="3"', html)) == 1
    assert html.count("display:block") == 1  # exactly one frame visible at first
    assert "oninput=" in html and "<script" not in html  # works without script tags or a kernel
    assert json.loads(re.search(r'data-labels="([^"]*)"', html).group(1).replace("&quot;", '"')) == [
        "0.1", "0.5", "0.9", "1.3"]
    assert slider._repr_html_() == html


def test_static_slider_frames_differ_and_start_is_checked():
    slider = widgets.static_slider(_sweep, [0.0, 1.0], "slope", dpi=30, start=0)
    assert slider.frames[0] != slider.frames[1]
    with pytest.raises(ValueError):
        widgets.static_slider(_sweep, [0.0, 1.0], "slope", start=5)
    with pytest.raises(ValueError):
        widgets.static_slider(_sweep, [], "slope")


def test_teaching_widget_carries_live_and_static_faces():
    pytest.importorskip("ipywidgets")
    w = widgets.teaching_widget(lambda slope, offset=0.0: _sweep(slope + offset), "slope", [0.0, 0.5, 1.0],
                                live={"offset": [0.0, 1.0]}, fixed={"offset": 0.0})
    bundle = w._repr_mimebundle_()
    assert bundle["text/html"] == w.static.html
    assert "application/vnd.jupyter.widget-view+json" in bundle
    controls = w.live.children[0].children
    assert [c.description for c in controls] == ["slope", "offset"]


@pytest.mark.parametrize("make", [widgets.lif_widget, widgets.encoding_widget])
def test_book_widgets_stay_small(make, monkeypatch):
    monkeypatch.setenv("MICROCIRCUIT_TIER", "book")
    w = make()
    assert w.static.n_frames >= 3
    assert len(w.static.html) < widgets.MAX_STATIC_BYTES


def test_error_phase_widget_needs_a_microcircuit():
    net = Network([6, 4, 3], rule="scfa", T=4)
    with pytest.raises(TypeError, match="microcircuit"):
        widgets.error_phase_widget(net, np.zeros(6))
    net = Network([6, 4, 3], rule="microcircuit", T=4)
    w = widgets.error_phase_widget(net, np.full(6, 0.5))
    assert w.static.n_frames == 3 * 2  # target class x error-cell mode


def test_hebbian_and_alignment_widgets():
    w = widgets.hebbian_widget(values=(-0.5, 0.0, 0.5))
    assert w.static.n_frames == 3 * 3 and "apical" in w.static.label  # apical input x gain
    history = {"fa": [[80.0, 0.0], [60.0, 0.0]], "scfa": [[50.0, 0.0], [40.0, 0.0]]}
    meter = widgets.alignment_meter(history)
    assert meter.static.n_frames == 2 and meter.static.labels == ["0", "1"] and meter.static.start == 1
    fig = plots.convergence([1, 4, 16], {"layer 1": [0.4, 0.2, 0.1]})
    assert fig.axes[0].get_xscale() == "log"


# ---------------------------------------------------------- configuration, scripts
def test_config_fails_on_errors_and_hides_inert_widgets():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["raise_on_error"] is True
    overrides = config["sphinx"]["config"]["nb_mime_priority_overrides"]
    assert ["*", "application/vnd.jupyter.widget-view+json", None] in overrides
    assert config["sphinx"]["config"]["nb_ipywidgets_js"] == {}
    for pattern in (".venv", "tests", "data", "microcircuit", "scripts", "docs", "README.md", "runs"):
        assert pattern in config["exclude_patterns"]
    assert config["launch_buttons"]["binderhub_url"] and config["launch_buttons"]["colab_url"]


def test_toc_lists_every_chapter_and_they_exist():
    yaml = pytest.importorskip("yaml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for name in ("02_credit_assignment", "06_microcircuit", "07_hebbian_rule", "08_equivalence", "09_learning",
                 "10_mnist", "11_cifar10", "12_results"):
        assert f"chapters/{name}" in files
    for f in files:
        assert any((ROOT / f"{f}{ext}").is_file() for ext in (".ipynb", ".md")), f


def test_cache_key_changes_with_library_and_tier(tmp_path, monkeypatch, load_script):
    mod = load_script("book_cache_key")
    (tmp_path / "microcircuit").mkdir()
    (tmp_path / "microcircuit" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    monkeypatch.setattr(mod, "CACHE", tmp_path / "_build" / ".jupyter_cache")
    monkeypatch.setattr(mod, "KEY_FILE", tmp_path / "_build" / ".key")
    monkeypatch.setattr(mod, "DOCTREES", tmp_path / "_build" / ".doctrees")
    monkeypatch.setenv("MICROCIRCUIT_TIER", "book")
    k1 = mod.key()
    monkeypatch.setenv("MICROCIRCUIT_TIER", "smoke")
    assert mod.key() != k1
    monkeypatch.setenv("MICROCIRCUIT_TIER", "book")
    assert mod.key() == k1
    # a stale cache is removed when the library changes, kept otherwise
    mod.CACHE.mkdir(parents=True)
    assert mod.main([]) == 0 and not mod.CACHE.exists()
    mod.CACHE.mkdir(parents=True)
    assert mod.main([]) == 0 and mod.CACHE.exists()
    (tmp_path / "microcircuit" / "a.py").write_text("x = 2\n")
    mod.DOCTREES.mkdir(parents=True)
    assert mod.main(["--check"]) == 1
    assert mod.main([]) == 0 and not mod.CACHE.exists() and not mod.DOCTREES.exists()


def test_browser_check_skips_cleanly_without_chromium(monkeypatch, load_script):
    mod = load_script("browser_check")
    monkeypatch.setattr(mod, "chromium_path", lambda: None)
    assert mod.missing_requirements() is not None
    assert mod.main([]) == 0


# ------------------------------------------------------------------ the chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_outputs_are_clean_and_small(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"], "stored error output"
    assert not [o for o in outputs if o.get("name") == "stderr"], "stored stderr (warnings, tqdm)"
    assert all(c.get("execution_count") for c in code), "not executed: run `make notebooks`"
    assert path.stat().st_size < 750_000  # book-tier outputs at the book's resolution (ch. 10: 4 panels of seed bands, up to 7 rules)
    assert "widgets" not in nb["metadata"]
    if path.stem != "01_preface":
        assert any("nbval-check-output" in c["metadata"].get("tags", [])
                   or "".join(c["source"]).lstrip().startswith("# NBVAL_CHECK_OUTPUT") for c in code)
        # chapters import what they teach; they never define library-sized code
        assert not any(re.search(r"^\s*(class|def) \w+", "".join(c["source"]), re.MULTILINE) and
                       len("".join(c["source"]).splitlines()) > 15 for c in code)

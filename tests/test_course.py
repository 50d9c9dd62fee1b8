"""The book as a course: every chapter a lesson, every exercise checkable, every widget two-way.

What a student and a lecturer rely on: chapter numbers in the titles, objectives, a time
estimate and key takeaways, at least two exercises per chapter with hidden solutions, self-checks
that accept the right answer and reject a wrong one (without printing it), figures with captions
and alt text, and static widgets with two controls that fit the page budget.
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from microcircuit import Network, exercises, plots, widgets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = {int(p.name[:2]): p for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")}
LESSONS = [n for n in sorted(CHAPTERS) if 2 <= n <= 12]


def _cells(n):
    return json.loads(CHAPTERS[n].read_text())["cells"]


def _markdown(n):
    return ["".join(c["source"]) for c in _cells(n) if c["cell_type"] == "markdown"]


def test_every_chapter_title_carries_its_number():
    assert sorted(CHAPTERS) == list(range(1, 13))
    for n in CHAPTERS:
        assert _markdown(n)[0].startswith(f"# {n}. "), CHAPTERS[n].name


@pytest.mark.parametrize("n", LESSONS)
def test_chapter_is_a_lesson(n):
    md = _markdown(n)
    opening = "\n".join(md[:3])
    assert "Learning objectives" in opening and re.search(r"\*\*Time:\*\* about \d+ minutes", opening)
    assert md[-1].startswith("## Key takeaways") and md[-1].count("\n- ") >= 3
    text = "\n".join(md)
    exercises_ = re.findall(rf"```{{admonition}} Exercise {n}\.(\d+): \S", text)
    solutions = re.findall(rf":::{{admonition}} Solution {n}\.(\d+)\n:class: dropdown\n", text)
    assert len(exercises_) >= 2, "fewer than two exercises"
    assert exercises_ == solutions, "every exercise needs one hidden solution, in order"
    assert exercises_ == [str(k) for k in range(1, len(exercises_) + 1)], "exercises numbered 1, 2, ..."
    # one format only: no numbered-list exercises or untitled solutions left
    assert not re.search(r"admonition\} Solution\s*\n|admonition\} Solution \d+\n", text)


def _prose(text):
    """The text a reader sees as prose: code blocks, inline code, maths and {doc} links removed
    (directive fences such as ```{admonition} keep their content)."""
    lines, code = [], False
    for line in text.splitlines():
        fence = line.strip().startswith("```")
        if fence and (code or not line.strip()[3:].startswith("{")) and line.strip() != "```" or (fence and code):
            code = not code
            continue
        if not code:
            lines.append(line)
    prose = "\n".join(lines)
    return re.sub(r"\{doc\}`[^`]*`|`[^`\n]*`|\$\$.*?\$\$|\$[^$]*\$", "", prose, flags=re.S)


@pytest.mark.parametrize("n", sorted(CHAPTERS))
def test_chapter_links_every_chapter_reference(n):
    for text in _markdown(n):
        prose = _prose(text)
        assert not re.search(r"\b[Cc]hapters? \d", prose), prose[:200]


@pytest.mark.parametrize("n", sorted(CHAPTERS))
def test_checked_outputs_use_tags_not_visible_comments(n):
    code = [c for c in _cells(n) if c["cell_type"] == "code"]
    assert not any("NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code)
    assert any("nbval-check-output" in c["metadata"].get("tags", []) for c in code), "no checked cell"


@pytest.mark.parametrize("n", sorted(CHAPTERS))
def test_every_figure_has_a_caption_and_real_alt_text(n):
    for c in _cells(n):
        if c["cell_type"] != "code" or not any("image/png" in o.get("data", {}) for o in c.get("outputs", [])):
            continue
        meta = c["metadata"].get("mystnb", {})
        caption, alt = meta.get("figure", {}).get("caption", ""), meta.get("image", {}).get("alt", "")
        assert len(caption) > 20 and meta["figure"].get("name", "").startswith(f"fig-ch{n}-"), c["id"]
        assert len(alt) > 30 and not re.fullmatch(r"[0-9a-f]{16,}(\.png)?", alt), c["id"]


def test_self_checks_are_used_by_the_chapters_and_exist():
    used = set()
    for n in CHAPTERS:
        for c in _cells(n):
            used |= set(re.findall(r"check_exercise_(\d+)_(\d+)\(answer\)", "".join(c["source"])))
    assert {f"{a}.{b}" for a, b in used} == set(exercises.CHECKS)


# right answers computed here independently of microcircuit.exercises (formulas, by hand)
RIGHT_WRONG = {
    "2.1": (64 * 32 + 32 * 10, 784 * 64 + 64 * 32 + 32 * 10),
    "3.1": (math.floor(10 * 0.4), 5),
    "3.2": (1 - math.exp(-1 / 5), 0.2),
    "4.1": (100, 99),
    "4.2": (2 / 8, 0.3),
    "5.1": ([6, 8, 0], [6, 8, 4]),
    "6.4": ([0.0, 0.3], [0.3, 0.0]),
    "7.1": (0.01 * (0.2 - 0.1) * 0.5, 0.01 * (0.2 + 0.1) * 0.5),
    "7.3": ([3, 1], [1, 2, 3]),
    "8.3": (4.0, 16.0),
    "9.4": (0.5, math.sin(math.radians(60))),
    "10.1": (784 * 800 + 800 + 800 * 10 + 10, 784 * 800 + 800 * 10),
    "11.1": (16 * 3 * 3 * 3, 16 * 3 * 3),
    "11.2": (16 * 3 * 3 * 3 * 32 * 32, 16 * 3 * 3 * 3 * 30 * 30),
    "12.1": (11.20 - 8.63, 10.05 - 8.63),
    "12.2": (1.0, 1.5),
}


@pytest.mark.parametrize("number", sorted(exercises.CHECKS))
def test_self_check_accepts_the_right_answer_and_rejects_a_wrong_one(number):
    check = exercises.CHECKS[number]
    right, wrong = RIGHT_WRONG[number]
    ok, bad, empty = check(right), check(wrong), check(None)
    assert bool(ok) and "right" in repr(ok)
    assert not bool(bad) and "not yet" in repr(bad)
    assert empty.ok is None and "no answer yet" in repr(empty)
    # a wrong answer's message never gives the right one away
    shown = [str(v) for v in np.ravel(right)] + [f"{float(v):.2f}" for v in np.ravel(right)]
    assert not any(s in repr(bad) for s in shown if len(s) > 1)
    assert not bool(check("not a number"))


def test_inverting_the_feedback_flips_alternate_layers():
    rng = np.random.default_rng(3)
    for sizes, flipped in (([20, 16, 12, 8, 4], [1, 3]), ([20, 16, 12, 4], [2])):
        net = Network(sizes, rule="microcircuit", T=8, seed=2, weight_scale=2.0)
        normal, inverted = exercises.inverted_feedback_updates(net, rng.random((8, 20)), rng.integers(0, 4, size=8))
        assert exercises.flipped_layers(normal, inverted) == flipped
        for k, (a, b) in enumerate(zip(normal, inverted), start=1):
            if k not in flipped:  # the other layers keep their update exactly
                np.testing.assert_allclose(b[0], a[0], atol=1e-6 * np.abs(a[0]).max())
        assert not hasattr(net.rule, "__dict__") or "kernel" not in net.rule.__dict__  # wiring restored


# ----------------------------------------------------------------------- widgets
def _two(a, b):
    fig, ax = plots.figure(figsize=(2, 1.5))
    ax.plot([0, 1], [a, b])
    return fig


def test_static_grid_has_one_frame_per_pair_and_two_controls():
    grid = widgets.static_grid(_two, [("a", [0.0, 1.0, 2.0], "first"), ("b", [5, 6], "second")], dpi=30,
                               alt="a line")
    html = grid.html
    assert grid.n_frames == 6 and html.count('<img class="mc-frame"') == 6
    assert len(re.findall(r'<input [^>]*class="mc-control" type="range"', html)) == 2
    assert html.count("display:block") == 1 and "<script" not in html
    assert len(set(grid.frames)) == 6  # every combination is its own picture
    # the first frame shown is (middle of a, middle of b) = index 1 * 2 + 1
    assert grid.start == 3 and 'data-index="3" alt="a line (first = 1, second = 6)"' in html


@pytest.mark.parametrize("make", [widgets.lif_widget, widgets.encoding_widget, widgets.hebbian_widget])
def test_book_widgets_have_two_controls_within_budget(make, monkeypatch):
    monkeypatch.setenv("MICROCIRCUIT_TIER", "book")
    w = make()
    assert len(w.static.controls) == 2 and all(len(v) >= 2 for _, v in w.static.controls)
    assert len(w.static.html) < widgets.MAX_STATIC_BYTES
    assert len(set(w.static.frames)) == w.static.n_frames  # no two pictures alike


def test_error_phase_widget_teaches_with_two_controls():
    net = Network([16, 6, 4], rule="microcircuit", T=8, surrogate="fast_sigmoid", seed=0)
    x = np.random.default_rng(0).random(16)
    w = widgets.error_phase_widget(net, x, label=2)
    assert [c for c, _ in w.static.controls] == ["target class", "error cells"]
    assert w.start["target"] == 2 and w.start["mode"] == "rate"
    rate = w.static.frames[::2]  # rate mode, one per target: every target its own picture
    assert len(set(rate)) == 4
    fig = widgets.error_phase_figure(net, x, target=1, label=2)
    assert len(fig.axes) == 1 + 2  # the input image and one panel per plastic layer, nothing else


def test_live_widgets_open_on_the_static_picture():
    pytest.importorskip("ipywidgets")
    w = widgets.hebbian_widget(values=(-0.5, 0.0, 0.5), gains=(0.0, 0.8))
    controls = {c.description: c.value for c in w.live.children[0].children}
    assert controls == {"a": w.start["a"], "g": w.start["g"]}
    labels = [labs[k] for (_, labs), k in zip(w.static.controls, w.static.starts)]
    assert labels == [f"{w.start['a']:+.2f}", f"{w.start['g']:.2f}"]


def test_update_scatter_widget_shows_both_controls():
    x = np.random.default_rng(0).random((16, 12))
    y = np.arange(16) % 3
    samples = {rule: [widgets.update_sample(Network([12, 8, 3], rule=rule, seed=0), x, y, n=50)] * 2
               for rule in ("fa", "scfa")}
    assert samples["scfa"][0]["agree"] > samples["fa"][0]["agree"]
    w = widgets.update_scatter_widget(samples)
    assert w.static.n_frames == 4 and [len(v) for _, v in w.static.controls] == [2, 2]


def test_no_placeholder_is_left_in_the_chapters():
    """A reader never meets ``<repository url>`` or a TODO: the setup cell knows the URL."""
    import re

    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        assert not re.search(r"<[a-z ]*url>|\bTODO\b|\bFIXME\b", text, flags=re.I), path.name

"""The rule registry: every learning rule of the book by name, and what a run of it uses.

The one place that names the rules. Each :class:`RuleEntry` holds the factory that builds the
rule, the name that tables, figures and chapters show (which says what ran: rate-BP or BPTT,
the spiking circuit or its rate twin), its colour and line style, and the ``Network`` settings
a run of it uses (``microcircuit-spiking`` is the microcircuit in spiking mode). Every other
module reads it: :data:`RULES` (what ``Network(rule=...)`` accepts), :data:`RUN_RULES` (what
``train``, ``runs``, ``sweep`` and ``bench`` accept), :func:`make_rule`, :func:`label`.

The rules themselves live in their own modules: fixed feedback (bp, fa, dfa, scfa) in
:mod:`microcircuit.feedback`, the microcircuit's error cells in :mod:`microcircuit.circuit`,
backpropagation through time in :mod:`microcircuit.bptt`. Adding a rule is its module and one
entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .bptt import BPTT
from .circuit import Microcircuit
from .feedback import DirectFeedbackAlignment, FeedbackAlignment, Rule


def _microcircuit(*, mode, T_e, feedback, seed):
    return Microcircuit(mode=mode, T_e=T_e, feedback=feedback or "sign_concordant", seed=seed)


@dataclass(frozen=True)
class RuleEntry:
    """One rule of the book: how to build it and how tables and figures show it.

    ``make(mode=, T_e=, feedback=, seed=)`` builds the :class:`~microcircuit.feedback.Rule`
    (``None`` for a variant, which runs another entry with other settings); ``network`` holds
    the ``Network`` settings a run of this entry uses; ``options`` the ``Network`` settings only
    this rule reads; ``feedback`` the wiring of a fixed-feedback rule; ``label`` the name every
    table and figure shows; ``local``: whether the rule is one of the book's local-learning
    candidates (its forward pass keeps no graph), ``False`` for a yardstick that is not.
    """

    name: str
    label: str
    color: str
    make: Callable | None
    network: dict = field(default_factory=dict)
    options: tuple = ()
    feedback: str | None = None
    style: str = "-"
    local: bool = True


def _fixed(name, feedback):
    def make(**_):
        rule = FeedbackAlignment(feedback)
        rule.name = name
        return rule

    return make


REGISTRY = {e.name: e for e in (
    RuleEntry("bp", "rate-BP", "#000000", _fixed("bp", "symmetric"), feedback="symmetric"),
    RuleEntry("bptt", "BPTT", "#1f77b4", lambda **_: BPTT(), style="-.", local=False),
    RuleEntry("fa", "FA", "#ff7f0e", _fixed("fa", "random"), feedback="random"),
    RuleEntry("dfa", "DFA", "#9467bd", lambda **_: DirectFeedbackAlignment(), feedback="direct"),
    RuleEntry("scfa", "SC-FA", "#2ca02c", _fixed("scfa", "sign_concordant"), feedback="sign_concordant"),
    RuleEntry("microcircuit", "microcircuit, rate mode (= SC-FA)", "#d62728", _microcircuit,
              options=("mode", "T_e", "feedback"), style="--"),
    RuleEntry("microcircuit-spiking", "microcircuit (spiking)", "#d62728", None,
              network={"rule": "microcircuit", "mode": "spiking", "T_e": 16}, style=":"),
)}
"""Every rule by name, in the order tables and figures list them."""

RULES = tuple(name for name, e in REGISTRY.items() if e.make is not None)
"""The rules ``Network(rule=...)`` builds: bp, bptt, fa, dfa, scfa, microcircuit."""

RUN_RULES = tuple(REGISTRY)
"""The rules a run names (``train``, ``runs``, ``sweep``, ``bench``): those and ``microcircuit-spiking``."""

FEEDBACK_RULES = tuple(name for name in RULES if REGISTRY[name].local)
"""The rules that carry the error down by feedback, one pass with no graph kept (bp, fa, dfa,
scfa, microcircuit): those the book's small experiments compare; BPTT is the yardstick."""


def entry(name: str) -> RuleEntry:
    """The registry entry ``name``; a ValueError naming the choices for an unknown one."""
    if name not in REGISTRY:
        raise ValueError(f"unknown rule {name!r}: choose one of {RUN_RULES}")
    return REGISTRY[name]


def make_rule(name: str, *, mode: str, T_e: int, feedback: str | None, seed) -> Rule:
    """The rule called ``name`` (one of :data:`RULES`), built by its registry entry from the
    network's settings (:class:`~microcircuit.config.NetworkConfig` holds their defaults)."""
    if name not in RULES:
        hint = f" (a run variant: Network(**rules.network_settings({name!r})))" if name in REGISTRY else ""
        raise ValueError(f"unknown rule {name!r}: choose one of {RULES}{hint}")
    return REGISTRY[name].make(mode=mode, T_e=T_e, feedback=feedback, seed=seed)


def network_settings(name: str) -> dict:
    """The ``Network`` settings of a run of ``name``: ``{"rule": name}``, or a variant's."""
    return dict(entry(name).network or {"rule": name})


def label(name: str) -> str:
    """Display name (``"scfa"`` -> ``"SC-FA"``, ``"bp"`` -> ``"rate-BP"``); unknown names are kept."""
    return REGISTRY[name].label if name in REGISTRY else name


def color(name: str, default: str = "0.5") -> str:
    """The rule's colour in every figure (``default`` for unknown names)."""
    return REGISTRY[name].color if name in REGISTRY else default


def style(name: str) -> str:
    """The rule's matplotlib line style (``"-"`` for unknown names)."""
    return REGISTRY[name].style if name in REGISTRY else "-"


def order(name: str):
    """Sort key: registry order first, unknown names after, alphabetically."""
    return (list(REGISTRY).index(name) if name in REGISTRY else len(REGISTRY), name)

"""The library's shape: one place per fact, layered imports, no cycles, modules of a readable size.

The layering is the picture in ``shared/spec/architecture.md``: a module imports only modules
of its own layer or of layers below it (a function-level import too), and the module-level
imports form no cycle. ``microcircuit/__init__.py`` is the package's front door and may
import from any layer.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import microcircuit
from microcircuit import config, data, presets, rules

PACKAGE = Path(microcircuit.__file__).parent
ROOT = PACKAGE.parent

LAYERS = [
    {"_version", "environment", "logs", "backend", "files", "locks", "tiers", "stats"},
    {"neurons", "encoding"},
    {"layers"},
    {"losses", "feedback", "circuit", "bptt", "rules", "optim"},
    {"config", "network", "augment", "metrics", "checkpoint"},
    {"identity", "data", "presets", "runspec", "training", "sweep", "seeds"},
    {"bench", "probe", "report", "plots", "plots.style", "plots.cells", "plots.results", "plots.learning", "widgets", "sliders",
     "exercises"},
    {"cli", "__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        if parts:
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The library modules an ``import from`` names (relative imports resolved)."""
    package = module.split(".")[:-1] if not MODULES[module].name == "__init__.py" else module.split(".")
    if node.level == 0:
        if not (node.module or "").startswith("microcircuit"):
            return []
        base = node.module.split(".")[1:]
    else:
        base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    targets = []
    for alias in node.names:
        sub = ".".join(base + [alias.name])
        targets.append(sub if sub in MODULES else ".".join(base))
    return [t for t in targets if t]


def imports(module: str) -> tuple[set, set]:
    """``(module-level imports, imports inside functions)`` of a library module."""
    tree = ast.parse(MODULES[module].read_text())
    top, inner = set(), set()
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    nested = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found = set(_resolve(module, node))
        elif isinstance(node, ast.Import):
            found = {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("microcircuit.")}
        else:
            continue
        (inner if id(node) in nested else top).update(found - {module})
    return top, inner


def test_every_module_has_a_layer():
    assert set(MODULES) - {""} == set(LAYER), "add new modules to LAYERS (and to architecture.md's picture)"


@pytest.mark.parametrize("module", sorted(LAYER))
def test_no_module_imports_one_above_it(module):
    top, inner = imports(module)
    above = sorted(m for m in top | inner if LAYER.get(m, -1) > LAYER[module])
    assert not above, f"{module} (layer {LAYER[module]}) imports {above} from above"


def test_module_level_imports_have_no_cycle():
    graph = {m: imports(m)[0] & set(LAYER) for m in LAYER}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in graph[m]:
            assert state.get(n) != "open", f"import cycle: {' -> '.join(path + [n])}"
            if n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_the_layering_test_sees_upward_imports():
    """The checker itself: a hand-made upward import is caught."""
    assert "network" in imports("training")[0] and LAYER["network"] < LAYER["training"]
    assert "circuit" in imports("rules")[0] and "feedback" in imports("circuit")[0]


# ------------------------------------------------------------------ one place per fact
FACTS = {
    "rule names": (set(rules.REGISTRY), "rules"),
    "dataset names": (set(data.DATASETS), "data"),
    "preset names": (set(presets.PRESETS), "presets"),
    "setting names": ({f for f in config.NetworkConfig.__dataclass_fields__} - {"layers", "seed", "epochs"},
                      "config"),
}
ALSO = {"setting names": {"presets"}}  # presets are named values of the settings


def _literals(tree):
    """Every literal collection of strings in a module: tuples, lists, sets, dict keys and
    keyword-argument names of ``dict(...)`` calls."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            yield node.lineno, {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        elif isinstance(node, ast.Dict):
            yield node.lineno, {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
            yield node.lineno, {k.arg for k in node.keywords if k.arg}


def _sources():
    yield from ((f"microcircuit/{p.relative_to(PACKAGE)}", m, p) for m, p in MODULES.items())
    for p in sorted((ROOT / "scripts").glob("*.py")):
        yield f"scripts/{p.name}", None, p


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_each_fact_is_written_in_one_module(fact):
    """No literal list of two or more rule / dataset / preset names (or of four or more
    network settings) outside the module that owns them: everyone else imports it."""
    names, owner = FACTS[fact]
    least = 4 if fact == "setting names" else 2
    found = []
    for shown, module, path in _sources():
        if module == owner or module in ALSO.get(fact, ()):
            continue
        for line, strings in _literals(ast.parse(path.read_text())):
            if len(strings & names) >= least:
                found.append(f"{shown}:{line}: {sorted(strings & names)}")
    assert not found, f"{fact} written outside microcircuit/{owner}.py:\n" + "\n".join(found)


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_each_fact_has_one_object(fact):
    """At run time too: any module attribute holding two or more of those names is the owner's
    own object (imported), never a copy."""
    names, owner = FACTS[fact]
    if fact == "setting names":
        return  # the fields are the dataclass itself
    owned = {id(v) for v in vars(importlib.import_module(f"microcircuit.{owner}")).values()}
    for info in pkgutil.walk_packages(microcircuit.__path__, "microcircuit."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for attr, value in vars(mod).items():
            if isinstance(value, (tuple, list, set, frozenset, dict)) and not attr.startswith("__"):
                keys = set(value) if not isinstance(value, dict) else set(value.keys())
                strings = {k for k in keys if isinstance(k, str)}
                if len(strings & names) >= 2:
                    assert id(value) in owned, f"{info.name}.{attr} is a copy of the {fact} of {owner}"


def test_the_single_source_test_sees_a_copy(tmp_path):
    tree = ast.parse('RULES = ("bp", "fa")\nPRESET = dict(dataset="mnist", layers=[1])\n')
    found = [s for _, s in _literals(tree)]
    assert {"bp", "fa"} in found and {"dataset", "layers"} in found


# ------------------------------------------------------------------------ sizes
LINES = 500  # a module a reader takes in at one sitting; the exceptions below say why they are longer
LONG = {  # over LINES, with room to grow, and why
    "network": (300, "Network is the front door and delegates (augment, metrics, checkpoint): it stays short"),
    "cli": (600, "every subcommand in one module (issue 16), with the one-line errors and the Ctrl-C and "
                 "SIGTERM handling that all of them share"),
    "data": (760, "one concept (datasets: readers, checksums, search, download, loaders, and which file "
                  "a user may not read); its tests patch its internals, so it stays one module"),
    "report": (720, "loading the results and the tables the book shows (accuracy and alignment over seeds, "
                    "every run, the microcircuit against SC-FA seed by seed, speed, provenance, BioTorch), "
                    "the headline numbers and the report's markdown; the statistics live in seeds and stats"),
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module):
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    limit = LONG.get(module, (LINES,))[0]
    assert lines <= limit, f"{path.name}: {lines} lines (limit {limit})"


def test_no_module_reaches_into_another_objects_private_state():
    """``obj._name`` only on ``self`` or ``cls``: what one module needs of another's objects is public
    (``Network.check_inputs``, ``eval_generator``, ``output_error``, ``train_rng``; the microcircuit's
    ``error_phase(mode=, gen=, sign=)``)."""
    allowed = {"_repr_mimebundle_"}  # IPython's display protocol
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.attr not in allowed
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{module}:{node.lineno}: .{node.attr}")
    assert not found, "private state reached from outside:\n" + "\n".join(found)

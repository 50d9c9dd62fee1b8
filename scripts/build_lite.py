"""Build the book's "run in the browser" site: JupyterLite with the chapters and the library.

``make lite`` (and ``make book``, after the HTML) runs this. It

1. builds a wheel of the library (``pip wheel --no-deps .``) and collects the wheels of its
   pure-Python dependencies (tqdm, pooch and what they need, at the versions installed here),
   so that ``%pip install microcircuit`` in the browser is answered by the site itself;
   NumPy and matplotlib come with Pyodide;
2. stages a JupyterLite folder, ``_build/lite/`` (``lite/*.json`` + ``pypi/*.whl``), with the
   chapters under ``chapters/`` so that a chapter page's JupyterLite button
   (``lab/index.html?path=chapters/NN_name.ipynb``) opens that chapter;
3. runs ``jupyter lite build`` into ``_build/html/lite/`` (offline: every asset comes from the
   installed ``jupyterlite-core`` and ``jupyterlite-pyodide-kernel``), then, with ``--check``,
   ``jupyter lite check``.

The dependency wheels are downloaded once (pip's ordinary index) into ``_build/lite-wheels/``
and reused; ``--offline`` refuses to download and fails with one line if one is missing.

Usage::

    python scripts/build_lite.py [--output _build/html/lite] [--check] [--offline]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_build" / "lite"
WHEELS = ROOT / "_build" / "lite-wheels"
OUTPUT = ROOT / "_build" / "html" / "lite"
LIBRARY = "microcircuit"
EXTRAS = ("widgets",)  # the setup cell installs microcircuit[widgets]
# already there: compiled packages of Pyodide's own distribution (no pure-Python wheel exists)
# and what the Pyodide kernel itself runs on (IPython, traitlets, comm, its widgetsnbextension)
PYODIDE_PROVIDES = {"numpy", "matplotlib", "ipython", "traitlets", "comm", "widgetsnbextension"}
# how Pyodide answers environment markers
PYODIDE_ENV = {"sys_platform": "emscripten", "platform_system": "Emscripten", "os_name": "posix",
               "platform_machine": "wasm32", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "extra": ""}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist_name: str, extras: tuple[str, ...] = ()) -> list[str]:
    """Names of the requirements of an installed distribution (with ``extras``), as Pyodide evaluates them."""
    from packaging.requirements import Requirement

    out = []
    for text in md.requires(dist_name) or []:
        req = Requirement(text)
        if req.marker is not None:
            env = dict(PYODIDE_ENV, python_version="{}.{}".format(*sys.version_info[:2]),
                       python_full_version=".".join(map(str, sys.version_info[:3])))
            if not any(req.marker.evaluate(dict(env, extra=e)) for e in ("", *extras)):
                continue
        out.append(canonical(req.name))
    return out


def dependency_closure(root: str = LIBRARY, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """``{name: installed version}`` for every pure-Python package ``root[extras]`` needs under Pyodide."""
    seen: dict[str, str] = {}
    todo = list(_requirements(root, extras))
    while todo:
        name = todo.pop()
        if name in seen or name in PYODIDE_PROVIDES:
            continue
        seen[name] = md.version(name)
        todo += _requirements(name)
    return dict(sorted(seen.items()))


def wheel_name_version(path: Path) -> tuple[str, str, str]:
    """``(canonical name, version, tag)`` from a wheel's file name."""
    parts = path.name[:-4].split("-")
    return canonical(parts[0]), parts[1], "-".join(parts[-3:])


def requires_dist(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def build_library_wheel(dest: Path) -> Path:
    for old in dest.glob(f"{LIBRARY}-*.whl"):
        old.unlink()
    had_build = (ROOT / "build").exists()
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)  # setuptools would pack a stale copy of removed files
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dest), str(ROOT)], check=True)  # setuptools from the lite extra: offline
    if not had_build:  # setuptools leaves build/ in the source tree
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = dest.glob(f"{LIBRARY}-*.whl")
    return wheel


def collect_dependency_wheels(dest: Path, offline: bool) -> list[Path]:
    wheels = []
    for name, version in dependency_closure().items():
        have = [w for w in dest.glob("*.whl") if wheel_name_version(w)[:2] == (name, version)]
        if not have:
            if offline:
                raise SystemExit(f"no wheel of {name}=={version} in {dest}: run without --offline once "
                                 "(it downloads the pure-Python dependency wheels)")
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--platform", "any", "--implementation", "py", "-d", str(dest),
                            f"{name}=={version}"], check=True)
            have = [w for w in dest.glob("*.whl") if wheel_name_version(w)[:2] == (name, version)]
        (wheel,) = have
        if not wheel_name_version(wheel)[2].endswith("none-any"):
            raise SystemExit(f"{wheel.name} is not a pure-Python wheel: Pyodide cannot install it")
        wheels.append(wheel)
    return wheels


def stage(wheels: list[Path]) -> Path:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    (STAGE / "pypi").mkdir(parents=True)
    for name in ("jupyter_lite_config.json", "jupyter-lite.json"):
        shutil.copy(ROOT / "lite" / name, STAGE / name)
    for wheel in wheels:
        shutil.copy(wheel, STAGE / "pypi" / wheel.name)
    chapters = STAGE / "contents" / "chapters"
    chapters.mkdir(parents=True)
    for nb in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy(nb, chapters / nb.name)
    return STAGE


def jupyter(*args: str) -> None:
    exe = Path(sys.executable).with_name("jupyter")
    env = dict(os.environ, JUPYTERLITE_NO_LIBARCHIVE="1")
    subprocess.run([str(exe if exe.exists() else "jupyter"), "lite", *args, "--lite-dir", str(STAGE)],
                   check=True, cwd=STAGE, env=env)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="also run `jupyter lite check`")
    parser.add_argument("--offline", action="store_true", help="never download a dependency wheel")
    args = parser.parse_args(argv)
    try:
        import jupyterlite_core  # noqa: F401
        import jupyterlite_pyodide_kernel  # noqa: F401
    except ImportError:
        print("jupyterlite is not installed: `make lite` installs it (pip install -e '.[lite]')")
        return 1
    WHEELS.mkdir(parents=True, exist_ok=True)
    wheels = [build_library_wheel(WHEELS), *collect_dependency_wheels(WHEELS, args.offline)]
    stage(wheels)
    output = args.output.resolve()
    if output.exists():
        shutil.rmtree(output)
    jupyter("build", "--contents", "contents", "--output-dir", str(output))
    if args.check:
        jupyter("check", "--contents", "contents", "--output-dir", str(output))
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    print(f"JupyterLite site: {output} ({size / 2**20:.1f} MiB; wheels: "
          + ", ".join(f"{w.name} ({w.stat().st_size / 1024:.0f} KiB)" for w in wheels) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Helpers of the hostile-user tests (issue 15): run the command line in a fresh process,
optionally with a fault injected first, and check what it printed and left on disk."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

# a tiny MNIST run on the bundled sample: a second or two of training
SMALL = ["--dataset", "mnist", "--sample", "--limit", "200", "--layers", "784,16,10", "--T", "2", "--quiet",
         "--train-eval", "100"]

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
LINUX = sys.platform.startswith("linux")

# the toy network of the API tests (on ``toy`` data)
KW = dict(layers=[16, 12, 4], rule="bp", T=4, seed=1, lr=3e-3, surrogate="fast_sigmoid")


def toy(n=128, seed=0):
    """The 4-class toy problem on 16 inputs (``conftest.toy``), 128 samples unless told."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int) + 2 * (x[:, 0] > 0.5)
    return x, y


def options(base, changes, epochs: bool = True) -> list:
    """``base`` with each ``--flag value`` of ``changes`` replaced (or appended); with
    ``epochs``, ``--epochs 1`` unless ``changes`` sets it."""
    args = list(base)
    for flag, value in zip(changes[::2], changes[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args if "--epochs" in args or not epochs else args + ["--epochs", "1"]


def _sigint_as_in_a_terminal():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python then turns it into KeyboardInterrupt


def cli(*args, env=None, prelude: str | None = None, cwd=None, timeout: int = 180, popen: bool = False):
    """Run ``python -m microcircuit ARGS`` in a fresh process (a ``CompletedProcess``).

    ``prelude`` is Python run in that process before the command line (fault injection:
    it may patch ``os.replace`` or a method); ``env`` adds environment variables (the
    debug switch ``MICROCIRCUIT_DEBUG`` is off unless given). ``popen=True`` returns the
    running ``Popen`` instead.
    """
    full = dict(os.environ, TQDM_DISABLE="1")
    full.pop("MICROCIRCUIT_DEBUG", None)
    full.update({k: str(v) for k, v in (env or {}).items()})
    args = [str(a) for a in args]
    if prelude:
        code = (prelude + "\nimport runpy, sys\nsys.argv = ['microcircuit'] + sys.argv[1:]\n"
                "runpy.run_module('microcircuit', run_name='__main__', alter_sys=True)\n")
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "microcircuit", *args]
    if popen:  # Ctrl-C as in a terminal, even when these tests run in a background job (which ignores SIGINT)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, cwd=cwd,
                                preexec_fn=_sigint_as_in_a_terminal if os.name == "posix" else None)
    return subprocess.run(cmd, capture_output=True, text=True, env=full, cwd=cwd, timeout=timeout)


def user_error(proc, command: str, *needles: str, code: int = 1, detail: bool = False) -> str:
    """Assert ``proc`` failed as a user's mistake must: exit ``code``, no traceback, and one
    line ``microcircuit COMMAND: error: ...`` naming every needle (with ``detail``, indented
    lines of detail may follow it, as for a dataset's checksums). Returns the line."""
    err = proc.stderr
    assert "Traceback" not in err, err
    assert proc.returncode == code, (proc.returncode, err)
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[0].startswith(f"microcircuit {command}: error: "), err
    if detail:
        assert all(line.startswith("  ") for line in lines[1:]), err
    else:
        assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(folder) -> dict:
    """Every file under ``folder`` (relative path -> bytes): what must not be lost or changed."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder) -> list:
    """Leftovers of interrupted atomic writes (``.NAME.XXXX.tmp``)."""
    return sorted(p.name for p in Path(folder).rglob(".*.tmp"))


def read_log(folder) -> dict:
    return json.loads((Path(folder) / "log.json").read_text())


def epochs_of(folder) -> list[int]:
    return [r["epoch"] for r in read_log(folder)["epochs"]]


def weights(path) -> list:
    """The plastic layers' weights and biases of a checkpoint, as host arrays."""
    from microcircuit import Network, backend

    net = Network.load(path)
    return [backend.to_numpy(a).copy() for layer in net.plastic_layers for a in (layer.W, layer.b)]


# ------------------------------------------------------------- fault injection (preludes)
def kill_after_replace(target: str, nth: int) -> str:
    """SIGKILL this process right after the ``nth`` atomic rename onto a file named ``target``
    (e.g. just after the checkpoint of epoch ``nth`` is in place, before the log is)."""
    return f"""
import os, signal
_real_replace = os.replace
_seen = [0]
def _replace(src, dst, *a, **k):
    _real_replace(src, dst, *a, **k)
    if os.path.basename(str(dst)) == {target!r}:
        _seen[0] += 1
        if _seen[0] == {nth}:
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = _replace
"""


def kill_before_replace(target: str, nth: int) -> str:
    """SIGKILL this process just before the ``nth`` rename onto ``target``: the temporary file
    of that write is left behind."""
    return f"""
import os, signal
_real_replace = os.replace
_seen = [0]
def _replace(src, dst, *a, **k):
    if os.path.basename(str(dst)) == {target!r}:
        _seen[0] += 1
        if _seen[0] == {nth}:
            os.kill(os.getpid(), signal.SIGKILL)
    _real_replace(src, dst, *a, **k)
os.replace = _replace
"""


def pause_after_log(epochs: int, seconds: float = 120) -> str:
    """Sleep (interruptibly, once) right after a ``log.json`` holding ``epochs`` epochs is in place."""
    return f"""
import json, os, time
_real_replace = os.replace
_paused = [False]
def _replace(src, dst, *a, **k):
    _real_replace(src, dst, *a, **k)
    if os.path.basename(str(dst)) == "log.json" and not _paused[0]:
        with open(dst) as f:
            if len(json.load(f).get("epochs", [])) == {epochs}:
                _paused[0] = True
                time.sleep({seconds})
os.replace = _replace
"""


def disk_full_on(name_part: str, nth: int) -> str:
    """Make the ``nth`` write to a temporary file whose name contains ``name_part`` fail with
    ENOSPC (the disk is full), as the kernel would."""
    return f"""
import errno, os
_real_fdopen = os.fdopen
_seen = [0]
class _Full:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __getattr__(self, name):
        return getattr(self._f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._f.close()
        return False
def _fdopen(fd, *a, **k):
    f = _real_fdopen(fd, *a, **k)
    try:
        name = os.readlink(f"/proc/self/fd/{{fd}}")
    except OSError:
        return f
    if {name_part!r} in os.path.basename(name):
        _seen[0] += 1
        if _seen[0] == {nth}:
            return _Full(f)
    return f
os.fdopen = _fdopen
"""


def no_training(code: int = 99) -> str:
    """Exit with ``code`` the moment training starts (proves an error came before it)."""
    return f"""
import os
import microcircuit.network as _network
def _no(self, *a, **k):
    os._exit({code})
_network.Network.partial_fit = _no
"""


def injected_bug() -> str:
    """A programming error inside training (not a user's mistake)."""
    return """
import microcircuit.network as _network
def _bug(self, *a, **k):
    raise ZeroDivisionError("injected bug")
_network.Network.partial_fit = _bug
"""


# ------------------------------------------------------------------- fake dataset files
def write_idx(path, array: np.ndarray, magic: int):
    """Write ``array`` (uint8) as a gzipped IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def fake_mnist(folder, n: int = 64) -> dict:
    """An MNIST folder in the original format made from the bundled sample (its content
    checksums differ from the registry's, as any copy that is not the real dataset would)."""
    from microcircuit import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, images, labels in (("train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                                  ("test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        x, y = data.load_sample("mnist", split)
        write_idx(folder / images, np.rint(x[:n] * 255).reshape(n, 28, 28), 2051)
        write_idx(folder / labels, y[:n], 2049)
        paths[split] = (folder / images, folder / labels)
    return paths

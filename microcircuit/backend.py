"""One array backend for the whole library: NumPy by default, CuPy on a GPU.

Every module gets its array namespace from here::

    from microcircuit import backend
    xp = backend.xp()          # numpy or cupy
    W = backend.asarray(host_array)

Initial weights and data order are drawn on the host with a seeded
``numpy.random.Generator`` and then moved to the device (``asarray``), so the same seed gives
the same network on both backends; noise inside hot loops uses :func:`noise_generator`.

Select the backend with the environment variable ``MICROCIRCUIT_BACKEND=cupy`` or
``microcircuit.set_backend("cupy")``; the dtype with ``MICROCIRCUIT_DTYPE=float64`` or
``set_dtype("float64")`` (float32 is the default).

Optional accelerator: where Numba is installed (``pip install 'microcircuit[jit]'``), the
hot element-wise loops (the LIF step with its surrogate gain, Adam, pooling, the error cells
and their binomial spike counts) run as compiled kernels on the NumPy backend (:func:`kernel`).
They do the same IEEE operations in the same order as the NumPy code they replace (no
fast-math), and the binomial counts come from Numba's port of NumPy's sampler on the same
stream, so results are bit-identical, and the NumPy code stays the reference that the tests
hold them against. ``MICROCIRCUIT_JIT=0`` or
``set_jit(False)`` switches them off; where Numba cannot be imported (Pyodide) they are off.

On the CuPy backend the same switch fuses the LIF step and Adam into CuPy's own
``ElementwiseKernel``s (:func:`cuda_kernel`): one kernel launch instead of a dozen, each
element computed by the same IEEE operations in the same order as the CuPy code they replace
(compiled with ``--fmad=false``, so no multiply-add is contracted), hence bit-identical to it.
"""

from __future__ import annotations

import numpy as np

from . import environment
from .environment import BACKENDS as _BACKENDS, DTYPES as _DTYPES

_state = {"name": None, "module": None, "dtype": None, "jit": None}
_kernels = {}


def set_backend(name: str) -> None:
    """Switch the array backend to ``"numpy"`` or ``"cupy"``.

    Networks built before the switch keep their arrays where they are; build (or ``load``)
    networks after switching.
    """
    name = str(name).lower()
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {_BACKENDS}")
    if name == "cupy":
        try:
            import cupy
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise ImportError(
                "backend 'cupy' needs CuPy: pip install 'microcircuit[cuda12]' "
                "(or [cuda13]) on a machine with an NVIDIA GPU"
            ) from exc
        try:
            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError(f"CuPy is installed but no CUDA device is usable: {exc}") from exc
        _state["module"] = cupy
    else:
        _state["module"] = np
    _state["name"] = name


def set_dtype(dtype) -> None:
    """Set the floating-point dtype of all new arrays (``"float32"`` or ``"float64"``)."""
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}: choose one of {_DTYPES}")
    _state["dtype"] = np.dtype(name)


def _ensure() -> None:
    """The backend, dtype and kernels' switch of ``MICROCIRCUIT_BACKEND``, ``MICROCIRCUIT_DTYPE`` and
    ``MICROCIRCUIT_JIT`` (checked by :mod:`microcircuit.environment`), where not set already."""
    if _state["module"] is None:
        set_backend(environment.choice(environment.BACKEND) or "numpy")
    if _state["dtype"] is None:
        set_dtype(environment.choice(environment.DTYPE) or "float32")
    if _state["jit"] is None:
        _state["jit"] = environment.flag(environment.JIT, default=True)


def set_jit(enabled: bool) -> None:
    """Use (``True``) or skip (``False``) the fused kernels: Numba's on NumPy (where installed), CuPy's on CuPy."""
    _state["jit"] = bool(enabled)


def _switched_on() -> bool:
    """The kernels' switch: ``set_jit``, else ``MICROCIRCUIT_JIT`` (on unless 0/no/false/off; another
    value is an error naming it)."""
    _ensure()
    return _state["jit"]


def jit_enabled() -> bool:
    """True when the Numba kernels run: NumPy backend, Numba importable, not switched off."""
    if not _switched_on() or _state["name"] != "numpy":
        return False
    if "numba" not in _kernels:
        try:
            import numba
        except Exception:  # not installed, or no compiler for this platform (Pyodide)
            numba = None
        _kernels["numba"] = numba
    return _kernels["numba"] is not None


def kernel(fn):
    """``fn`` compiled by Numba (cached on disk after the first compilation), or ``None``
    when the kernels are off (:func:`jit_enabled`): the caller then runs its NumPy code.

    No fast-math and NumPy's error model: float32 stays float32 and every operation is the
    correctly rounded IEEE one, in the order written, as in the NumPy code it replaces.
    """
    if not jit_enabled():
        return None
    compiled = _kernels.get(fn)
    if compiled is None:
        njit = _kernels["numba"].njit
        try:
            compiled = njit(cache=True, error_model="numpy", nogil=True)(fn)
        except RuntimeError:  # no writable cache folder: compile in each process instead
            compiled = njit(error_model="numpy", nogil=True)(fn)
        _kernels[fn] = compiled
    return compiled


def cuda_kernels_enabled() -> bool:
    """True when the fused CuPy kernels run: CuPy backend, not switched off (``set_jit``, ``MICROCIRCUIT_JIT``)."""
    return _switched_on() and _state["name"] == "cupy"


def kernels_enabled() -> bool:
    """True when fused kernels replace the plain array code: Numba's on NumPy, CuPy's on CuPy."""
    return jit_enabled() or cuda_kernels_enabled()


def cuda_kernel(spec):
    """The CuPy ``ElementwiseKernel`` of ``spec = (in_params, out_params, body, name)``, compiled
    once per process (CuPy keeps the binary on disk too), or ``None`` when the CuPy kernels are
    off (:func:`cuda_kernels_enabled`): the caller then runs its array code.

    Compiled with ``--fmad=false``: ``a * b + c`` stays a rounded product and a rounded sum,
    as in the array code, instead of one fused multiply-add.
    """
    if not cuda_kernels_enabled():
        return None
    compiled = _kernels.get(spec)
    if compiled is None:
        in_params, out_params, body, kernel_name = spec
        compiled = _state["module"].ElementwiseKernel(in_params, out_params, body, kernel_name,
                                                      options=("--fmad=false",))
        _kernels[spec] = compiled
    return compiled


def xp():
    """The array namespace in use: the ``numpy`` or the ``cupy`` module."""
    _ensure()
    return _state["module"]


def name() -> str:
    """Name of the active backend, ``"numpy"`` or ``"cupy"``."""
    _ensure()
    return _state["name"]


def dtype() -> np.dtype:
    """The floating-point dtype of new arrays."""
    _ensure()
    return _state["dtype"]


def asarray(a, dtype=None):
    """Move a host array (or anything array-like) to the backend, cast to ``dtype``.

    Integer arrays keep their integer type when ``dtype`` is ``None`` and the input is
    integral; floating input is cast to the active dtype.
    """
    a_np = a if hasattr(a, "__cuda_array_interface__") else np.asarray(a)
    if dtype is None:
        dtype = dtype_of(a_np)
    return xp().asarray(a_np, dtype=dtype)


def dtype_of(a):
    """The dtype ``asarray`` gives to ``a``: integers stay integers, floats use the active dtype."""
    kind = np.dtype(a.dtype).kind
    return a.dtype if kind in "iub" else dtype()


def to_numpy(a) -> np.ndarray:
    """Copy a backend array to a host NumPy array (a no-op for NumPy arrays)."""
    if hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def is_cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def noise_generator(seed: int):
    """A random generator that lives on the backend's device, for noise inside hot loops.

    Initial weights and data order are drawn on the host (``numpy.random.default_rng``); sampling that
    happens at every time step (Bernoulli input spikes, spiking error cells) draws on the
    device so that no arrays cross to the host. ``seed`` is an int or a
    ``numpy.random.SeedSequence``.
    """
    if isinstance(seed, np.random.SeedSequence):
        seed = seed if name() == "numpy" else int(seed.generate_state(1)[0])
    else:
        seed = int(seed)
    if name() == "cupy":
        return xp().random.RandomState(seed)
    return np.random.default_rng(seed)


def binomial(gen, n: int, p):
    """Binomial ``(n, p)`` counts, one per entry of ``p``, in the active dtype, from a :func:`noise_generator`.

    A sum of ``n`` independent Bernoulli(``p``) draws has exactly this law, at the cost of one
    draw instead of ``n``. (The generator's own sampler: a faster hand-written inversion was
    measured, but it would change every spiking run's draws; see docs/decisions.md.) With the
    optional Numba kernels on, the same sampler runs compiled: the same draws, bit for bit.
    """
    fused = kernel(_binomial_kernel) if isinstance(gen, np.random.Generator) else None
    if fused is not None and p.flags.c_contiguous and p.size and 0 <= p.min() and p.max() <= 1:
        out = np.empty(p.shape, dtype=dtype())
        fused(gen, int(n), p.reshape(-1), out.reshape(-1))
        return out
    return gen.binomial(int(n), p).astype(dtype())


def _binomial_kernel(gen, n, p, out):
    """Numba kernel of :func:`binomial`: Numba's port of NumPy's sampler, drawing from the same
    bit generator in the same order, so the counts are NumPy's (the tests check it). Invalid
    ``p``, NaN included, goes to NumPy, which raises."""
    for i in range(p.size):
        out[i] = gen.binomial(n, np.float64(p[i]))


def uniform(gen, shape):
    """Uniform [0, 1) samples of ``shape`` in the active dtype from a :func:`noise_generator`."""
    if isinstance(gen, np.random.Generator):
        return gen.random(shape, dtype=np.float32 if dtype() == np.float32 else np.float64)
    return gen.random_sample(shape, dtype=dtype())

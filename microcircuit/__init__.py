"""microcircuit: spiking cortical microcircuits that learn by local Hebbian plasticity.

The library behind the open textbook. Its modules follow the book's chapters:
``neurons`` (LIF soma), ``encoding`` (input spikes), ``layers`` (pyramidal cells),
``losses`` (global spiking errors), ``rules`` (BP, FA, DFA, SC-FA), ``circuit`` (the
three-cell microcircuit and its Hebbian rule), ``network`` (``Network``), ``optim``,
``training`` (runs with checkpoints and provenance), ``data`` (datasets), ``plots``
and ``widgets``; ``backend`` picks NumPy or CuPy.
"""

__version__ = "0.1.0"

from .backend import set_backend, set_dtype  # noqa: E402
from .layers import Conv, Dense, Pool  # noqa: E402
from .network import RULES, DivergenceError, Network  # noqa: E402

__all__ = ["Network", "Dense", "Conv", "Pool", "RULES", "DivergenceError", "set_backend", "set_dtype", "__version__"]

"""microcircuit: spiking cortical microcircuits that learn by local Hebbian plasticity.

The library behind the open textbook. Its modules follow the book's chapters, from the
bottom up (a module imports only those above it in this list):

- ``environment`` (every environment variable, read and checked), ``logs`` (a run log's schema),
  ``backend`` (NumPy or CuPy, dtype, random streams), ``files`` (atomic writes; where the
  bundled samples and results are);
- ``neurons`` (LIF soma), ``encoding`` (input spikes), ``layers`` (pyramidal cells);
- ``losses`` (global spiking errors), ``feedback`` (rate-BP, FA, DFA, SC-FA), ``circuit`` (the
  three-cell microcircuit and its Hebbian rule), ``bptt`` (backpropagation through time, the
  spiking yardstick), ``rules`` (the rule registry), ``optim``;
- ``config`` (``NetworkConfig``), ``network`` (``Network``), with ``augment``, ``metrics``
  and ``checkpoint``;
- ``data`` (datasets), ``presets`` (named settings), ``training`` (runs with checkpoints and
  provenance), ``sweep`` (many runs on Dask);
- ``bench``, ``report`` (result tables), ``plots`` (figures), ``widgets``;
- ``cli`` (``python -m microcircuit``).
"""

from ._version import __version__
from .backend import set_backend, set_dtype
from .config import NetworkConfig
from .layers import Conv, Dense, Pool
from .network import DivergenceError, Network
from .rules import FEEDBACK_RULES, RULES

__all__ = ["Network", "NetworkConfig", "Dense", "Conv", "Pool", "RULES", "FEEDBACK_RULES", "DivergenceError", "set_backend",
           "set_dtype", "__version__"]

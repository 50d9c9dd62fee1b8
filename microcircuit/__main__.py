"""``python -m microcircuit``: the command line of :mod:`microcircuit.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

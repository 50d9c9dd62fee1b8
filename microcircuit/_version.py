"""The library's version: read by the package, its checkpoints and logs, and pyproject.toml."""

__version__ = "0.1.0"

"""ngcws: declarative project workspaces for NVIDIA NGC deep-learning containers."""

__version__ = "0.1.0"

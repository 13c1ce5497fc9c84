"""sessionscope: self-hosted session analytics."""

__version__ = "0.1.0"

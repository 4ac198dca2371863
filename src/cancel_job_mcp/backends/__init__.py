"""Backends: one module per place jobs run, all behind the `Backend` protocol."""

from .base import Backend

__all__ = ["Backend"]

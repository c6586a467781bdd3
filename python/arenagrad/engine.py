"""micrograd's ``Value``, backed by arenagrad's C++ arena.

``from arenagrad.engine import Value`` replaces ``from micrograd.engine import Value``.
"""
from ._core import Value

__all__ = ["Value"]

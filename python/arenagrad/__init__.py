"""arenagrad: micrograd's scalar autograd with a C++ graph-node arena.

Same API and numbers as micrograd (``arenagrad.engine.Value``, ``arenagrad.nn.MLP``), much faster.
"""
from contextlib import contextmanager

from . import _core
from ._core import grad, live_nodes, memory_stats, sum, trim
from .engine import Value

__version__ = "0.1.0"
# Not `sum`: `from arenagrad import *` must not shadow the builtin (arenagrad.sum stays).
__all__ = ["Value", "no_grad", "grad", "live_nodes", "memory_stats", "trim", "__version__"]


@contextmanager
def no_grad():
    """Inside this block, operations record no graph: results are leaves (empty ``_prev``)."""
    _core._enter_no_grad()
    try:
        yield
    finally:
        _core._exit_no_grad()

"""arenagrad.reference: the lecture's micrograd in plain Python, the oracle for the C++ engine.

Never imports arenagrad._core, so it can check the C++ engine independently.
"""
from .engine import Value
from .higher_order import grad
from .nn import MLP, Layer, Module, Neuron

__all__ = ["Value", "grad", "Module", "Neuron", "Layer", "MLP"]

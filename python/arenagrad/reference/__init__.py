"""arenagrad.reference: the lecture's micrograd in plain Python, the oracle for the C++ engine.

Never imports arenagrad._core, so it can check the C++ engine independently.
"""
from .engine import Value
from .nn import MLP, Layer, Module, Neuron

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP"]

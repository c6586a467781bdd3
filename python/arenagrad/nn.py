"""micrograd's nn, with the forward pass in C++.

``from arenagrad.nn import MLP`` replaces ``from micrograd.nn import MLP``: same constructors,
attributes (``neuron.w``, ``neuron.b``, ``layer.neurons``, ``mlp.layers``), reprs and numbers.
Each module's ``__call__`` builds one sample's graph in a single C++ call.
"""
import random

import numpy as np

from ._core import Network
from .engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]


class Module:

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self):
        return []

    # The C++ Network does not pickle: modules pickle their Values and rebuild it.
    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_net"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._net = Network(self._layer_specs())


class Neuron(Module):

    def __init__(self, nin, nonlin=True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin
        self._net = Network(self._layer_specs())

    def __call__(self, x):
        return self._net(x)

    def parameters(self):
        return self.w + [self.b]

    def _layer_specs(self):
        return [([self.w], [self.b], self.nonlin)]

    def __repr__(self):
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):

    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]
        self._net = Network(self._layer_specs())

    def __call__(self, x):
        return self._net(x)

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def _layer_specs(self):
        return [([n.w for n in self.neurons], [n.b for n in self.neurons], self.neurons[0].nonlin)]

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):

    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i+1], nonlin=i != len(nouts)-1) for i in range(len(nouts))]
        self._net = Network(self._layer_specs())
        self._parameters = [p for layer in self.layers for p in layer.parameters()]

    def __call__(self, x):
        return self._net(x)

    def parameters(self):
        return list(self._parameters)  # the same Values every call, in micrograd's order

    def _layer_specs(self):
        return [spec for layer in self.layers for spec in layer._layer_specs()]

    def predict(self, X):
        """Forward over the rows of ``X`` (N, nin) without building a graph, in C++.

        Returns shape (N,) when the last layer has one neuron, else (N, nout); equal to calling
        the model on each row.
        """
        out = self._net.predict(np.asarray(X, dtype=np.float64))
        return out[:, 0] if out.shape[1] == 1 else out

    def state_dict(self):
        """Per-layer weights as numpy: ``layers.i.weight`` (nout, nin) and ``layers.i.bias`` (nout,)."""
        state = {}
        for i, layer in enumerate(self.layers):
            state[f"layers.{i}.weight"] = np.array([[w.data for w in n.w] for n in layer.neurons])
            state[f"layers.{i}.bias"] = np.array([n.b.data for n in layer.neurons])
        return state

    def load_state_dict(self, state):
        """Loads ``state_dict()``-shaped arrays into the existing parameter Values."""
        expected = self.state_dict()
        missing = expected.keys() - state.keys()
        unexpected = state.keys() - expected.keys()
        if missing or unexpected:
            raise KeyError(f"state_dict keys do not match: missing {sorted(missing)}, "
                           f"unexpected {sorted(unexpected)}")
        arrays = {}
        for key, current in expected.items():
            array = np.asarray(state[key], dtype=np.float64)
            if array.shape != current.shape:
                raise ValueError(f"{key}: expected shape {current.shape}, got {array.shape}")
            arrays[key] = array
        for i, layer in enumerate(self.layers):
            for j, n in enumerate(layer.neurons):
                for w, x in zip(n.w, arrays[f"layers.{i}.weight"][j]):
                    w.data = float(x)
                n.b.data = float(arrays[f"layers.{i}.bias"][j])

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"

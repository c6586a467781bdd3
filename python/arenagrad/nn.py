"""micrograd's nn, with the forward pass in C++.

``from arenagrad.nn import MLP`` replaces ``from micrograd.nn import MLP``: same constructors,
attributes (``neuron.w``, ``neuron.b``, ``layer.neurons``, ``mlp.layers``), reprs and numbers.

The modules are plain objects, as micrograd's are: a call uses the Values, lists, widths and
``nonlin`` flags they hold at the time of the call. For speed, a module's call runs one C++
``Network`` built from that structure, a cache that is checked before every use and rebuilt
when stale (cpp/bindings.cpp [M1]): assigning a structural attribute (``w``, ``b``, ``nonlin``,
``neurons``, ``layers``) advances a structure epoch, and the lists the network was built from
must still hold the very same objects.
"""
import random

import numpy as np

from ._core import Network, StaleNetwork, _structure_changed, _structure_epoch
from .engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]

_STRUCTURE = frozenset({"w", "b", "nonlin", "neurons", "layers"})


class Module:

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self):
        return []

    # [M1] a compiled network must never outlive the structure it was built from.
    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name in _STRUCTURE:
            _structure_changed()

    def __delattr__(self, name):
        object.__delattr__(self, name)
        if name in _STRUCTURE:
            _structure_changed()

    # The network is a cache: copies and pickles hold the structure and rebuild it when called.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_net", None)
        state.pop("_cached_parameters", None)
        return state


class _Forward(Module):
    """What Neuron, Layer and MLP share: a call runs the cached C++ network, rebuilt when stale."""

    _net = Network()  # never fresh: the first call builds the module's own

    def __call__(self, x):
        try:
            return self._net(x)
        except StaleNetwork:
            self._net = _compile(self)
            return self._net(x)

    def parameters(self):
        """micrograd's list, in its order; cached with the network while that is fresh, since
        a fresh network means the same Values in the same lists [M1]."""
        net = self._net
        if not net.fresh():
            return self._parameters_now()
        cached_net, params = self.__dict__.get("_cached_parameters", (None, None))
        if cached_net is not net:
            params = self._parameters_now()
            object.__setattr__(self, "_cached_parameters", (net, params))
        return list(params)

    def _predict(self, X):
        try:
            return self._net.predict(X)
        except StaleNetwork:
            self._net = _compile(self)
            return self._net.predict(X)


class Neuron(_Forward):

    def __init__(self, nin, nonlin=True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def _parameters_now(self):
        return [*self.w, self.b]

    def _forward_python(self, x):  # micrograd's, for weights that are not arenagrad Values
        x = _as_inputs(x, len(self.w))
        act = sum((wi*xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def __repr__(self):
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(_Forward):

    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def _parameters_now(self):
        return [p for n in self.neurons for p in n.parameters()]

    def _forward_python(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(_Forward):

    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i+1], nonlin=i != len(nouts)-1) for i in range(len(nouts))]

    def _parameters_now(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def _forward_python(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def predict(self, X):
        """Forward over the rows of ``X`` (N, nin) without building a graph, in C++.

        Returns shape (N,) when the last layer has one neuron, else (N, nout); equal to calling
        the model on each row.
        """
        _check_real(X, "X")
        out = self._predict(np.asarray(X, dtype=np.float64))
        return out[:, 0] if out.shape[1] == 1 else out

    def state_dict(self):
        """Per-layer weights as numpy: ``layers.i.weight`` (nout, nin) and ``layers.i.bias`` (nout,)."""
        _dense_layers(self)  # widths that don't fit raise ValueError naming the layer
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
            _check_real(state[key], key)
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


# ---- building the cached network from what a module holds now --------------------------------

class _PythonForward:
    """micrograd's own forward, for modules the C++ network can't run (a parameter that is not
    an arenagrad Value, a list of another type, a subclass). Stale, like the C++ network, when
    the structure epoch moves or a list it was built from changes, so that a module that can
    run in C++ again goes back to it."""

    def __init__(self, module):
        self.module, self.epoch = module, _structure_epoch()
        self.watched = [(seq, tuple(seq)) for seq in _lists_of(module)]

    def fresh(self):
        return (_structure_epoch() == self.epoch
                and all(len(seq) == len(items) and all(a is b for a, b in zip(seq, items))
                        for seq, items in self.watched))

    def __call__(self, x):
        if not self.fresh():
            raise StaleNetwork("structure changed")
        return self.module._forward_python(x)

    def predict(self, X):
        rows = []
        from . import no_grad
        with no_grad():
            for x in np.asarray(X, dtype=np.float64):
                out = self(x)
                rows.append([v.data for v in (out if isinstance(out, list) else [out])])
        return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def _lists_of(module):
    """Every list or tuple of the module's structure (layers, neurons, w), depth first."""
    found = []
    for name in ("layers", "neurons", "w"):
        seq = getattr(module, name, None)
        if type(seq) in (list, tuple):
            found.append(seq)
            for item in seq:
                if isinstance(item, Module):
                    found += _lists_of(item)
    return found


def _compile(module):
    """The module's network, from the structure it holds now [M1]."""
    try:
        layers, watched = _dense_layers(module)
    except _NotDense:
        return _PythonForward(module)
    specs = [[(n.w, n.b, bool(n.nonlin)) for n in neurons] for neurons in layers]
    return Network(specs, watched)


class _NotDense(Exception):
    """The module is not made of plain Layers of plain Neurons over arenagrad Values."""


def _sequence(obj):
    if type(obj) not in (list, tuple):
        raise _NotDense
    return obj


def _dense_layers(module):
    """(layers, watched): the module's Neurons layer by layer, and every list they came from.

    Raises _NotDense when the C++ network can't run it, and ValueError naming the layer when
    widths don't fit (micrograd's zip would silently truncate).
    """
    if type(module) is Neuron:
        layers, watched = [[module]], []
    elif type(module) is Layer:
        layers = [_sequence(module.neurons)]
        watched = [module.neurons]
    elif type(module) is MLP:
        mlp_layers = _sequence(module.layers)
        if not mlp_layers:
            raise ValueError("the MLP has no layers")
        if any(type(layer) is not Layer for layer in mlp_layers):
            raise _NotDense
        layers = [_sequence(layer.neurons) for layer in mlp_layers]
        watched = [mlp_layers, *layers]
    else:
        raise _NotDense
    width = None
    for k, neurons in enumerate(layers):
        where = f"layer {k}" if type(module) is MLP else type(module).__name__.lower()
        if not neurons:
            raise ValueError(f"{where} has no neurons")
        for j, n in enumerate(neurons):
            if type(n) is not Neuron or type(n.b) is not Value:
                raise _NotDense
            w = _sequence(n.w)
            if any(type(wi) is not Value for wi in w):
                raise _NotDense
            if width is None:
                width = len(w)
            elif len(w) != width:
                raise ValueError(
                    f"{where}: neuron {j} takes {len(w)} inputs, but "
                    + (f"layer {k-1} gives {width}" if j == 0 else f"neuron 0 takes {width}"))
            watched.append(w)
        width = len(neurons)
    return layers, watched


def _as_inputs(x, nin):
    """micrograd's input for a neuron: a sequence of nin numbers or Values (checked length)."""
    if isinstance(x, np.ndarray):
        _check_real(x, "x")
    elif not isinstance(x, (list, tuple)):
        x = [x]
    if len(x) != nin:
        raise ValueError(f"expected {nin} inputs, got {len(x)}")
    return x


def _check_real(X, what):
    if np.iscomplexobj(X):
        raise TypeError(f"{what} must hold real numbers, not complex")

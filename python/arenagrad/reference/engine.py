"""The lecture's scalar autograd engine (Karpathy's micrograd) in plain Python.

This is the oracle the C++ engine is tested against: every operator is composed
exactly as micrograd composes it, with Python's float semantics where Python raises.
"""
import math
import numbers

import numpy as np

# What a Value holds: Python's real numbers and numpy's (numpy's bool is not numbers.Real).
REAL = (numbers.Real, np.bool_)


def _is_complex_pow(x, y):
    """Where Python's float ** returns a complex number: a finite negative base to a finite
    non-integer power."""
    return x < 0 and math.isfinite(x) and math.isfinite(y) and y != math.floor(y)


def _pow(x, k):
    """Forward x ** k for floats: Python raises ZeroDivisionError (0.0 ** -1) and
    OverflowError itself; where it would give a complex number we raise ValueError."""
    if _is_complex_pow(x, k):
        raise ValueError(f"negative base {x} to the non-integer power {k}")
    return x ** k


def _inverse(x):
    """1 / x as C computes it: 1/0 is inf (a user may have set x.data = 0 after the forward)."""
    return 1 / x if x != 0 else math.copysign(math.inf, x)


def _odd_integer(y):
    return math.isfinite(y) and y == math.floor(y) and y % 2 == 1


def _ieee_pow(x, y):
    """x ** y for the backward pass, with C's pow results (inf, nan) instead of exceptions."""
    y = float(y)  # what float ** int does: the parity of 2**70 - 1 is that of 2.0**70
    if _is_complex_pow(x, y):
        return math.nan
    try:
        return x ** y
    except (ZeroDivisionError, OverflowError):
        return math.copysign(math.inf, x) if _odd_integer(y) else math.inf


class Value:
    """ stores a single scalar value and its gradient """

    def __init__(self, data, _children=(), _op='', label=''):
        if not isinstance(data, REAL):
            raise TypeError(f"Value data must be a real number, not {type(data).__name__!r}")
        self.data = float(data)
        self.grad = 0.0
        # internal variables used for autograd graph construction
        self._backward = lambda: None
        # the same local derivatives written with Value ops, for grad() (grad.py): given the
        # output's gradient g (a Value), [(child, d self / d child * g), ...]; None: no rule
        self._local_grads = None
        self._prev = set(_children)
        self._op = _op  # the op that produced this node, for graphviz / debugging / etc
        self.label = label

    def __add__(self, other):
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        out._local_grads = lambda g: [(self, g), (other, g)]

        return out

    def __mul__(self, other):
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        out._local_grads = lambda g: [(self, other * g), (other, self * g)]

        return out

    def __pow__(self, other):
        if isinstance(other, Value):
            return self._pow_value(other, _pow(self.data, other.data))
        if not isinstance(other, REAL):
            _operand(other)  # raises TypeError for another engine's Value
            return NotImplemented
        k = int(other) if isinstance(other, (numbers.Integral, np.bool_)) else float(other)
        return self._power(k, _pow(self.data, k))

    def _power(self, k, data):
        # self ** k, its value `data` computed by the caller: Python's (raising) for the forward,
        # C's (inf, nan) for a derivative, as backward() computes it
        out = Value(data, (self,), f'**{k}')

        def _backward():
            self.grad += (k * _ieee_pow(self.data, k - 1)) * out.grad
        out._backward = _backward
        out._local_grads = lambda g: [
            (self, (k * self._power(k - 1, _ieee_pow(self.data, k - 1))) * g)]

        return out

    def _pow_value(self, other, data):
        # a ** b with a Value exponent: d/db a**b = a**b * log(a), NaN for a <= 0 (as torch)
        out = Value(data, (self, other), '**')

        def _backward():
            self.grad += (other.data * _ieee_pow(self.data, other.data - 1)) * out.grad
            other.grad += (out.data * math.log(self.data) if self.data > 0 else math.nan) * out.grad
        out._backward = _backward

        def _local_grads(g):
            b_minus_1 = other - 1
            a_pow = self._pow_value(b_minus_1, _ieee_pow(self.data, b_minus_1.data))
            d_other = out * (self.log() if self.data > 0 else Value(math.nan))
            return [(self, (other * a_pow) * g), (other, d_other * g)]
        out._local_grads = _local_grads

        return out

    def __rpow__(self, other):  # other ** self
        other = _operand(other)
        if other is NotImplemented:
            return NotImplemented
        return other._pow_value(self, _pow(other.data, self.data))

    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        out._local_grads = lambda g: [(self, Value(float(out.data > 0)) * g)]  # relu'' = 0

        return out

    def tanh(self):
        t = math.tanh(self.data)  # stable: no overflow for large inputs
        out = Value(t, (self,), 'tanh')

        def _backward():  # reads out.data, as exp does, so it holds after recompute() too
            self.grad += (1 - out.data * out.data) * out.grad  # d tanh = 1 - t^2
        out._backward = _backward
        out._local_grads = lambda g: [(self, (1 - out * out) * g)]

        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), 'exp')

        def _backward():
            self.grad += out.data * out.grad  # d exp = exp
        out._backward = _backward
        out._local_grads = lambda g: [(self, out * g)]

        return out

    def log(self):
        out = Value(math.log(self.data), (self,), 'log')

        def _backward():
            self.grad += _inverse(self.data) * out.grad  # d log = 1/x
        out._backward = _backward
        out._local_grads = lambda g: [(self, self._power(-1, _inverse(self.data)) * g)]

        return out

    def sigmoid(self):
        x = self.data
        if x >= 0:
            s = 1 / (1 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1 + e)
        out = Value(s, (self,), 'sigmoid')

        def _backward():  # reads out.data, as exp does
            self.grad += out.data * (1 - out.data) * out.grad  # d sigmoid = s (1 - s)
        out._backward = _backward
        out._local_grads = lambda g: [(self, (out * (1 - out)) * g)]

        return out

    def backward(self):

        # topological order all of the children in the graph
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)

        # go one variable at a time and apply the chain rule to get its gradient
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __neg__(self):  # -self
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self - other
        other = _operand_or_number(other)
        if other is NotImplemented:
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):  # other - self
        other = _operand_or_number(other)
        if other is NotImplemented:
            return NotImplemented
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self / other
        other = _operand_or_number(other)
        if other is NotImplemented:
            return NotImplemented
        return self * other**-1

    def __rtruediv__(self, other):  # other / self
        other = _operand_or_number(other)
        if other is NotImplemented:
            return NotImplemented
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def _operand_or_number(other):
    """A Value stays a Value, a real number becomes a Python float (so that `-other` and
    `other**-1` follow Python's float rules, also for numpy scalars), anything else is
    NotImplemented; another engine's Value is a TypeError."""
    if isinstance(other, Value):
        return other
    if isinstance(other, REAL):
        return float(other)
    return _operand(other)


def _operand(other):
    """The other operand as a Value: numbers are wrapped, as micrograd does."""
    if isinstance(other, Value):
        return other
    if isinstance(other, REAL):
        return Value(other)
    if hasattr(other, 'data') and hasattr(other, '_prev'):
        raise TypeError(f"cannot mix a reference Value with a {type(other).__module__}."
                        f"{type(other).__name__}")
    return NotImplemented

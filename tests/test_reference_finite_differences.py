"""First link of the chain of oracles: central finite differences check the reference's
gradients for every op (the reference then checks the C++ engine)."""
import math

import pytest

from arenagrad.reference.engine import Value
from conftest import build

H = 1e-6
# Central differences: error <= h^2/6 |f'''| (truncation) + eps |f| / h (rounding)
# = 1.7e-13 |f'''| + 2.2e-10 |f| at h = 1e-6. With |f|, |f'''| <= ~100 at the points below that
# is < 3e-8, so 1e-6 relative (abs floor 1e-6) has margin, while a wrong local derivative
# (a lost factor, sign, or term) is off by far more.
FD_TOL = 1e-6


def fd_grads(Value, expr, data, h=H):
    grads = []
    for i in range(len(data)):
        up, down = list(data), list(data)
        up[i] += h
        down[i] -= h
        grads.append((build(Value, expr, up)[1].data - build(Value, expr, down)[1].data) / (2 * h))
    return grads


def assert_matches_fd(Value, expr, data):
    leaves, root = build(Value, expr, data)
    root.backward()
    for leaf, want in zip(leaves, fd_grads(Value, expr, data)):
        got = leaf.grad
        assert abs(got - want) <= FD_TOL * max(1.0, abs(want)), (
            f"d/d{leaf.label} at {data}: backward {got!r}, finite differences {want!r}")


UNARY = {
    "neg": lambda a: -a,
    "relu": lambda a: a.relu(),
    "tanh": lambda a: a.tanh(),
    "exp": lambda a: a.exp(),
    "sigmoid": lambda a: a.sigmoid(),
    "pow2": lambda a: a**2,
    "pow3": lambda a: a**3,
    "pow-1": lambda a: a**-1,
    "pow-2": lambda a: a**-2,
    "pow0": lambda a: a**0,
    "pow1": lambda a: a**1,
    "add_const": lambda a: a + 2,
    "radd_const": lambda a: 2.5 + a,
    "sub_const": lambda a: a - 2,
    "rsub_const": lambda a: 2.5 - a,
    "mul_const": lambda a: a * 3,
    "rmul_const": lambda a: -1.5 * a,
    "div_const": lambda a: a / 4,
    "rdiv_const": lambda a: 3 / a,
    "rpow_const": lambda a: 2 ** a,
    "rpow_float": lambda a: 0.7 ** a,
}
UNARY_POSITIVE = {  # domain x > 0
    "log": lambda a: a.log(),
    "pow0.5": lambda a: a**0.5,
    "pow-2.5": lambda a: a**-2.5,
    "pow1.5": lambda a: a**1.5,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
POINTS = [-1.7, -0.3, 0.4, 1.3, 2.9]
PAIRS = [(1.3, -0.7), (0.6, 2.2), (-1.1, 0.9), (2.5, -1.9)]


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("op", list(UNARY))
def test_reference_unary_grad_matches_fd(op, x):
    assert_matches_fd(Value, UNARY[op], [x])


@pytest.mark.parametrize("x", [0.3, 1.3, 2.9])
@pytest.mark.parametrize("op", list(UNARY_POSITIVE))
def test_reference_unary_grad_matches_fd_positive_domain(op, x):
    assert_matches_fd(Value, UNARY_POSITIVE[op], [x])


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("op", list(BINARY))
def test_reference_binary_grad_matches_fd(op, a, b):
    assert_matches_fd(Value, BINARY[op], [a, b])


@pytest.mark.parametrize("a, b", [(1.3, -0.7), (0.6, 2.2), (2.5, 1.9), (0.4, -2.1)])
def test_reference_value_pow_grad_matches_fd(a, b):
    assert_matches_fd(Value, lambda a, b: a ** b, [a, b])


@pytest.mark.parametrize("x", [-2.0, -0.5])
def test_reference_value_pow_grad_matches_fd_negative_base_integer_exponent(x):
    # the exponent is an unlabelled constant here: its gradient (NaN for a <= 0) is not checked
    assert_matches_fd(Value, lambda a: a ** Value(3.0), [x])


def test_reference_shared_dag_grad_matches_fd():
    def expr(a, c):
        b = a + a
        d = b * b
        return d * a + (a * c).tanh() + (d / c).exp() - c.sigmoid()
    assert_matches_fd(Value, expr, [0.7, 1.9])


def test_reference_neuron_grad_matches_fd():
    def expr(x1, x2, w1, w2, b):
        return (x1 * w1 + x2 * w2 + b).tanh()
    assert_matches_fd(Value, expr, [2.0, 0.5, -3.0, 1.0, 6.8813735870195432])


def test_reference_relu_both_sides_of_kink_match_fd():
    # h = 1e-6 stays on one side of the kink at +-1e-3
    for x in (-1e-3, 1e-3):
        assert_matches_fd(Value, lambda a: (a * 3).relu() * a, [x])


def test_fd_check_rejects_wrong_tanh_gradient():
    class WrongTanh(Value):
        def tanh(self):
            out = Value(math.tanh(self.data), (self,), "tanh")

            def _backward():
                self.grad += (1 - out.data) * out.grad  # wrong: 1 - t instead of 1 - t^2
            out._backward = _backward
            return out

    with pytest.raises(AssertionError, match="finite differences"):
        assert_matches_fd(WrongTanh, lambda a: a.tanh(), [0.5])


def test_fd_check_rejects_assignment_instead_of_accumulation():
    class Overwrites(Value):
        def __mul__(self, other):
            out = Value(self.data * other.data, (self, other), "*")

            def _backward():
                self.grad = other.data * out.grad  # wrong: = instead of +=
                other.grad = self.data * out.grad
            out._backward = _backward
            return out

    with pytest.raises(AssertionError, match="finite differences"):
        assert_matches_fd(Overwrites, lambda a, b: a * b + a * a, [1.5, -0.5])

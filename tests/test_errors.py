"""Errors (README "What is stricter or more"): Python's float semantics where Python raises,
TypeError for things that are not real numbers, and an exception leaves the graph and every
Value unchanged."""
import gc
import operator

import numpy as np
import pytest

from arenagrad.nn import Neuron


@pytest.mark.parametrize("data, type_name", [
    ("x", "str"), (None, "NoneType"), ([1], "list"), (1j, "complex"),
    (np.complex128(1j), "complex"), ({}, "dict"),
], ids=repr)
def test_constructor_rejects_non_real_naming_type(engine, data, type_name):
    with pytest.raises(TypeError, match=type_name):
        engine.Value(data)


def test_constructor_rejects_a_value(engine):
    with pytest.raises(TypeError, match="Value"):
        engine.Value(engine.Value(1.0))


# (id, data of the existing Value x, the failing operation, exception type)
ERRORS = [
    ("add_str", 1.0, lambda V, x: x + "x", TypeError),
    ("radd_str", 1.0, lambda V, x: "x" + x, TypeError),
    ("mul_none", 1.0, lambda V, x: x * None, TypeError),
    ("rmul_none", 1.0, lambda V, x: None * x, TypeError),
    ("sub_list", 1.0, lambda V, x: x - [1], TypeError),
    ("rsub_str", 1.0, lambda V, x: "x" - x, TypeError),
    ("div_str", 1.0, lambda V, x: x / "x", TypeError),
    ("rdiv_none", 1.0, lambda V, x: None / x, TypeError),
    ("pow_str", 1.0, lambda V, x: x ** "x", TypeError),
    ("rpow_str", 1.0, lambda V, x: "x" ** x, TypeError),
    ("mul_complex", 1.0, lambda V, x: x * 1j, TypeError),
    ("zero_pow_minus_one", 0.0, lambda V, x: x ** -1, ZeroDivisionError),
    ("neg_zero_pow_minus_three", -0.0, lambda V, x: x ** -3, ZeroDivisionError),
    ("zero_pow_minus_half", 0.0, lambda V, x: x ** -0.5, ZeroDivisionError),
    ("div_int_zero", 1.0, lambda V, x: x / 0, ZeroDivisionError),
    ("div_float_zero", 1.0, lambda V, x: x / 0.0, ZeroDivisionError),
    ("div_value_zero", 0.0, lambda V, x: V(1.0) / x, ZeroDivisionError),
    ("rdiv_zero", 0.0, lambda V, x: 2 / x, ZeroDivisionError),
    ("pow_value_zero_base", 0.0, lambda V, x: x ** V(-1.0), ZeroDivisionError),
    ("rpow_zero_base", -2.0, lambda V, x: 0 ** x, ZeroDivisionError),
    ("exp_overflow", 1000.0, lambda V, x: x.exp(), OverflowError),
    ("pow_overflow", 10.0, lambda V, x: x ** 400, OverflowError),
    ("pow_overflow_negative_base", -10.0, lambda V, x: x ** 401, OverflowError),
    ("pow_value_overflow", 10.0, lambda V, x: x ** V(400.0), OverflowError),
    ("rpow_overflow", 400.0, lambda V, x: 10 ** x, OverflowError),
    ("reciprocal_overflow", 1e-310, lambda V, x: x ** -1, OverflowError),
    ("div_by_subnormal_overflow", 1.0, lambda V, x: x / 1e-310, OverflowError),
    ("log_negative", -1.0, lambda V, x: x.log(), ValueError),
    ("log_zero", 0.0, lambda V, x: x.log(), ValueError),
    ("log_minus_inf", float("-inf"), lambda V, x: x.log(), ValueError),
    ("negative_base_fractional_pow", -8.0, lambda V, x: x ** 0.5, ValueError),
    ("negative_base_fractional_pow_value", -8.0, lambda V, x: x ** V(1 / 3), ValueError),
    ("rpow_negative_base", 0.5, lambda V, x: (-8) ** x, ValueError),
    # Python's complex pow would overflow here; it is still a negative base to a fractional power
    ("negative_base_fractional_huge_pow", -10.0, lambda V, x: x ** 400.5, ValueError),
    ("rpow_negative_base_fractional_huge", -330.5, lambda V, x: (-0.0625) ** x, ValueError),
]


def _graph(V, data):
    """x and a small graph around it with gradients, as a user would hold them."""
    x = V(data, label="x")
    w = V(0.5, label="w")
    y = (w * 3 + 1).tanh()
    y.backward()
    return x, [x, w, y]


def _snapshot(values):
    return [(v.data, v.grad, v._op, len(v._prev)) for v in values]


@pytest.mark.parametrize("data, op, exc", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_raises_python_exception_and_leaves_graph_unchanged(engine, data, op, exc):
    x, held = _graph(engine.Value, data)
    before = _snapshot(held)
    with pytest.raises(exc):
        op(engine.Value, x)
    assert _snapshot(held) == before


@pytest.mark.parametrize("data, op, exc", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_leaves_live_node_count_unchanged(ag, arenagrad_pkg, data, op, exc):
    x, held = _graph(ag.Value, data)
    gc.collect()
    live = arenagrad_pkg.live_nodes()
    try:
        op(ag.Value, x)
    except exc:
        pass
    gc.collect()
    assert arenagrad_pkg.live_nodes() == live


def test_error_inside_expression_keeps_earlier_operands_usable(engine):
    a = engine.Value(2.0)
    with pytest.raises(ZeroDivisionError):
        (a * 3) / (a - 2)
    b = a * 3
    b.backward()
    assert (b.data, a.grad) == (6.0, 3.0)


@pytest.mark.parametrize("data, op, want", [
    (1000.0, "tanh", 1.0), (-1000.0, "tanh", -1.0), (1e308, "tanh", 1.0),
    (1000.0, "sigmoid", 1.0), (-1000.0, "sigmoid", 0.0), (-1000.0, "exp", 0.0),
    (1000.0, "relu", 1000.0),
])
def test_saturating_ops_do_not_overflow(engine, data, op, want):
    x = engine.Value(data)
    y = getattr(x, op)()
    y.backward()
    assert y.data == want
    assert x.grad == (1.0 if op == "relu" else 0.0)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow"])
def test_mixing_engines_raises_type_error_either_order(ref, ag, op):
    f = getattr(operator, op)
    r, a = ref.Value(2.0), ag.Value(3.0)
    with pytest.raises(TypeError):
        f(r, a)
    with pytest.raises(TypeError):
        f(a, r)


def test_mixing_engines_in_constructor_raises_type_error(ref, ag):
    with pytest.raises(TypeError):
        ag.Value(ref.Value(1.0))
    with pytest.raises(TypeError):
        ref.Value(ag.Value(1.0))


# cpp/python_boundary.hpp [P3]: the operators, arenagrad.sum and a module's input read operands
# through one function, so another engine's Value is the same TypeError wherever it is met, and
# the arena is left as it was.
FOREIGN_VALUE_USES = {
    "operator": lambda ag, arenagrad_pkg, v: ag.Value(1.0) * v,
    "power": lambda ag, arenagrad_pkg, v: ag.Value(2.0) ** v,
    "sum": lambda ag, arenagrad_pkg, v: arenagrad_pkg.sum([ag.Value(1.0), 2.0, v]),
    "sum_of_generator": lambda ag, arenagrad_pkg, v: arenagrad_pkg.sum(x for x in [1.0, v]),
    "module_input": lambda ag, arenagrad_pkg, v: Neuron(2)([1.0, v]),
}


@pytest.mark.parametrize("use", list(FOREIGN_VALUE_USES.values()), ids=list(FOREIGN_VALUE_USES))
def test_foreign_value_is_the_same_type_error_everywhere(ref, ag, arenagrad_pkg, use):
    foreign = ref.Value(2.0)
    gc.collect()
    before = arenagrad_pkg.live_nodes()
    with pytest.raises(TypeError, match="cannot mix an arenagrad Value with a 'Value' from "
                                        "another engine"):
        use(ag, arenagrad_pkg, foreign)
    gc.collect()
    assert arenagrad_pkg.live_nodes() == before

"""Every op and reflected op of the C++ engine against the reference: forward value bit for bit,
graph structure and op strings equal, leaf gradients to 1e-12 relative."""
import math

import numpy as np
import pytest

from conftest import (assert_close, assert_same, assert_same_run, build, compare_engines,
                      describe)

ANY = [(1.5, -0.25), (0.3, 2.0), (-0.7, 0.6), (-2.0, -3.0)]
POSITIVE_A = [(1.5, -0.25), (0.3, 2.0), (2.5, 0.5)]

OPS = {  # name: (expr over leaves a, b, data pairs)
    "add": (lambda a, b: a + b, ANY),
    "add_int": (lambda a, b: a + 2, ANY),
    "radd_int": (lambda a, b: 2 + a, ANY),
    "add_float": (lambda a, b: a + 0.1, ANY),
    "radd_float": (lambda a, b: 0.1 + a, ANY),
    "sub": (lambda a, b: a - b, ANY),
    "sub_int": (lambda a, b: a - 2, ANY),
    "rsub_int": (lambda a, b: 2 - a, ANY),
    "sub_float": (lambda a, b: a - 0.3, ANY),
    "rsub_float": (lambda a, b: 0.3 - a, ANY),
    "mul": (lambda a, b: a * b, ANY),
    "mul_int": (lambda a, b: a * 3, ANY),
    "rmul_int": (lambda a, b: 3 * a, ANY),
    "mul_float": (lambda a, b: a * 0.1, ANY),
    "rmul_float": (lambda a, b: 0.1 * a, ANY),
    "div": (lambda a, b: a / b, ANY),
    "div_int": (lambda a, b: a / 3, ANY),
    "rdiv_int": (lambda a, b: 3 / a, ANY),
    "div_float": (lambda a, b: a / 0.7, ANY),
    "rdiv_float": (lambda a, b: 0.7 / a, ANY),
    "neg": (lambda a, b: -a, ANY),
    "pow_int": (lambda a, b: a ** 2, ANY),
    "pow_int3": (lambda a, b: a ** 3, ANY),
    "pow_neg_int": (lambda a, b: a ** -1, ANY),
    "pow_zero": (lambda a, b: a ** 0, ANY),
    "pow_float_integral": (lambda a, b: a ** 2.0, ANY),
    "pow_float": (lambda a, b: a ** 0.5, POSITIVE_A),
    "pow_neg_float": (lambda a, b: a ** -1.5, POSITIVE_A),
    "pow_value": (lambda a, b: a ** b, POSITIVE_A),
    "pow_value_negative_base": (lambda a, b: a ** (b * 0 + 3), ANY),
    "rpow_int": (lambda a, b: 2 ** a, ANY),
    "rpow_float": (lambda a, b: 0.7 ** a, ANY),
    "relu": (lambda a, b: a.relu(), ANY),
    "tanh": (lambda a, b: a.tanh(), ANY),
    "exp": (lambda a, b: a.exp(), ANY),
    "log": (lambda a, b: a.log(), POSITIVE_A),
    "sigmoid": (lambda a, b: a.sigmoid(), ANY),
    "bool_operands": (lambda a, b: (True + a) * False - b * True, ANY),
    "numpy_operands": (lambda a, b: np.float64(0.3) * a + a / np.int64(3) - np.float32(0.5) ** b,
                       POSITIVE_A),
}
CASES = [pytest.param(OPS[name][0], a, b, id=f"{name}-{a}-{b}") for name in OPS for a, b in OPS[name][1]]


@pytest.mark.parametrize("expr, a, b", CASES)
def test_op_matches_reference(ag, ref, expr, a, b):
    compare_engines(ag, ref, lambda x, y: expr(x, y) * y, a, b)  # * y: a non-trivial out.grad


@pytest.mark.parametrize("expr, a, b", CASES)
def test_op_matches_reference_after_repeated_backward(ag, ref, expr, a, b):
    compare_engines(ag, ref, lambda x, y: expr(x, y).tanh() * (x + y), a, b, backwards=3)


SHARED = {
    "a_plus_a": lambda a, b: a + a,
    "b_times_b": lambda a, b: (a + a) * (a + a),
    "lecture_b_c": lambda a, b: (lambda s: s * s)(a + a),
    "a_times_a": lambda a, b: a * a,
    "a_pow_a": lambda a, b: a ** a,
    "a_minus_a": lambda a, b: a - a,
    "a_div_a": lambda a, b: a / a,
    "diamond": lambda a, b: (lambda m: (m + b) * (m - b) + m.tanh())(a * b),
    "neuron": lambda a, b: (a * b + b * -0.5 + 0.1).tanh(),
}


@pytest.mark.parametrize("name", list(SHARED))
@pytest.mark.parametrize("backwards", [1, 2])
def test_shared_nodes_match_reference(ag, ref, name, backwards):
    compare_engines(ag, ref, SHARED[name], 1.25, -0.5, backwards=backwards)


def test_shared_node_gradient_counts_every_use(engine):
    a = engine.Value(3.0)
    b = a + a
    c = b * b  # c = 4 a^2, dc/da = 8 a
    c.backward()
    assert (c.data, b.grad, a.grad) == (36.0, 12.0, 24.0)


@pytest.mark.parametrize("expr, op", [
    (lambda a, b: a, ""),
    (lambda a, b: a + b, "+"),
    (lambda a, b: a + 1, "+"),
    (lambda a, b: 1 + a, "+"),
    (lambda a, b: a - b, "+"),
    (lambda a, b: 1 - a, "+"),
    (lambda a, b: a * b, "*"),
    (lambda a, b: -a, "*"),
    (lambda a, b: a / b, "*"),
    (lambda a, b: 2 / a, "*"),
    (lambda a, b: a ** 2, "**2"),
    (lambda a, b: a ** -1, "**-1"),
    (lambda a, b: a ** 0.5, "**0.5"),
    (lambda a, b: a ** 2.0, "**2.0"),
    (lambda a, b: a ** b, "**"),
    (lambda a, b: 2 ** a, "**"),
    (lambda a, b: a.relu(), "ReLU"),
    (lambda a, b: a.tanh(), "tanh"),
    (lambda a, b: a.exp(), "exp"),
    (lambda a, b: a.log(), "log"),
    (lambda a, b: a.sigmoid(), "sigmoid"),
], ids=lambda x: (x or "leaf") if isinstance(x, str) else "")
def test_op_string_is_micrograds(engine, expr, op):
    a, b = engine.Value(2.0), engine.Value(3.0)
    assert expr(a, b)._op == op


def _const(v, data):
    """The one element of v._prev that is a constant leaf holding `data`."""
    (c,) = [p for p in v._prev if not p._prev and p.data == data and p.label == ""]
    return c


def test_prev_holds_the_operand_objects(engine):
    a, b = engine.Value(2.0), engine.Value(3.0)
    c = a * b
    d = c + a
    assert type(c._prev) is set
    assert c._prev == {a, b}
    assert a in c._prev and b in c._prev
    assert d._prev == {c, a}
    assert a.tanh()._prev == {a}
    assert a._prev == set()


def test_prev_of_self_operand_is_one_element(engine):
    a = engine.Value(2.0)
    assert (a + a)._prev == {a}
    assert (a * a)._prev == {a}
    assert (a ** a)._prev == {a}


def test_prev_of_number_operand_is_a_new_leaf(engine):
    a = engine.Value(2.5)
    for v, k in ((a + 2, 2.0), (2 + a, 2.0), (a * 3, 3.0), (3 * a, 3.0), (a - 2, -2.0)):
        assert len(v._prev) == 2 and a in v._prev
        assert _const(v, k)._op == ""


def test_sub_is_add_of_mul_by_minus_one(engine):
    a, b = engine.Value(2.0), engine.Value(3.0)
    v = a - b  # micrograd: a + (-b) = a + (b * -1)
    assert v._op == "+" and a in v._prev
    (neg,) = v._prev - {a}
    assert neg._op == "*" and b in neg._prev and len(neg._prev) == 2
    assert _const(neg, -1.0)._op == ""


def test_rsub_is_neg_self_plus_other(engine):
    a = engine.Value(2.0)
    v = 5 - a  # micrograd: other + (-self) = (a * -1) + Value(5)
    assert v._op == "+"
    five = _const(v, 5.0)
    (neg,) = v._prev - {five}
    assert neg._op == "*" and a in neg._prev
    assert_same(v.data, 3.0)


def test_div_is_mul_by_pow_minus_one(engine):
    a, b = engine.Value(2.0), engine.Value(4.0)
    v = a / b  # micrograd: a * b**-1
    assert v._op == "*" and a in v._prev
    (inv,) = v._prev - {a}
    assert inv._op == "**-1" and inv._prev == {b}


def test_rdiv_is_other_times_pow_minus_one(engine):
    a = engine.Value(4.0)
    v = 2 / a  # micrograd: other * self**-1 = a**-1 * Value(2)
    assert v._op == "*"
    two = _const(v, 2.0)
    (inv,) = v._prev - {two}
    assert inv._op == "**-1" and inv._prev == {a}
    assert_same(v.data, 0.5)


def test_rpow_wraps_the_number_as_base(engine):
    b = engine.Value(3.0)
    v = 2 ** b
    assert v._op == "**" and b in v._prev
    assert _const(v, 2.0)._op == ""
    assert_same(v.data, 8.0)


def test_repeated_backward_accumulates_intermediate_grads(engine):
    a, b, c = engine.Value(2.0), engine.Value(-3.0), engine.Value(10.0)
    e = a * b
    d = e + c
    d.backward()
    d.backward()  # micrograd never zeroes: e.grad becomes 2, so a.grad = -3 + 2 * -3, c.grad = 2
    assert (d.grad, e.grad, a.grad, b.grad, c.grad) == (1.0, 2.0, -9.0, 6.0, 2.0)


# ---- the comparison helpers reject wrong numbers

def test_assert_same_rejects_one_ulp_difference():
    with pytest.raises(AssertionError, match="bit-identical"):
        assert_same(math.nextafter(1.0, 2.0), 1.0)


def test_assert_same_rejects_sign_of_zero():
    with pytest.raises(AssertionError):
        assert_same(-0.0, 0.0)


def test_assert_same_rejects_nan_against_number():
    with pytest.raises(AssertionError):
        assert_same(math.nan, 1.0)
    assert_same(math.nan, math.nan)


def test_assert_close_rejects_gradient_off_by_1e_minus_11_relative():
    with pytest.raises(AssertionError, match="grad"):
        assert_close(3.0 * (1 + 1e-11), 3.0)
    assert_close(3.0 * (1 + 1e-13), 3.0)


def test_assert_close_rejects_small_gradient_above_abs_floor():
    with pytest.raises(AssertionError):
        assert_close(1e-11, 0.0)
    assert_close(1e-13, 0.0)


def test_assert_close_rejects_inf_and_nan_mismatch():
    for got, want in ((math.inf, -math.inf), (math.nan, 1.0), (1e308, math.inf)):
        with pytest.raises(AssertionError):
            assert_close(got, want)


def test_assert_same_run_rejects_wrong_leaf_gradient(ref):
    expr = lambda a, b: (a * b).tanh()  # noqa: E731
    good, bad = build(ref.Value, expr, [0.5, 1.5]), build(ref.Value, expr, [0.5, 1.5])
    good[1].backward()
    bad[1].backward()
    bad[0][1].grad *= 1 + 1e-10
    with pytest.raises(AssertionError, match="grad of leaf b"):
        assert_same_run(*bad, *good)


def test_assert_same_run_rejects_other_graph_structure(ref):
    # the same value and gradients, but a - b is not a + (-1 * b) built with a negative constant
    good = build(ref.Value, lambda a, b: a - b, [0.5, 1.5])
    bad = build(ref.Value, lambda a, b: a + b * ref.Value(-1.0, (), "", "k"), [0.5, 1.5])
    good[1].backward()
    bad[1].backward()
    assert describe(good[1]) != describe(bad[1])
    with pytest.raises(AssertionError):
        assert_same_run(*bad, *good)


@pytest.mark.parametrize("x, k, want", [
    (0.0, 0.5, math.inf),           # 0.5 * 0 ** -0.5: Python raises, IEEE gives inf
    (-0.0, 0.5, math.inf),
    (1e-200, -0.6, -math.inf),      # -0.6 * (1e-200) ** -1.6: overflows to inf
    (-1e-200, -1, -math.inf),       # -1 * (-1e-200) ** -2 = -1 * +inf
    (-1e-120, -2, math.inf),        # -2 * (-1e-120) ** -3 = -2 * -inf
], ids=repr)
def test_pow_backward_gives_ieee_results_instead_of_raising(engine, x, k, want):
    a = engine.Value(x)
    (a ** k).backward()
    assert a.grad == want


def test_pow_backward_of_negative_base_set_after_forward_is_nan(engine):
    a = engine.Value(4.0)
    y = a ** 0.5
    a.data = -4.0  # a user edit: now 0.5 * (-4) ** -0.5 has no real value
    y.backward()
    assert math.isnan(a.grad)


def test_pow_value_backward_at_zero_base(engine):
    a, b = engine.Value(0.0), engine.Value(0.5)
    y = a ** b
    y.backward()
    assert y.data == 0.0
    assert a.grad == math.inf
    assert math.isnan(b.grad)  # d/db a**b = a**b log a, NaN for a <= 0 (as torch)


@pytest.mark.parametrize("x, want", [(0.0, math.inf), (-0.0, -math.inf)], ids=repr)
def test_log_backward_at_zero_set_after_forward_is_ieee(engine, x, want):
    a = engine.Value(1.0)
    y = a.log()
    a.data = x  # backward never raises: d log = 1/x is +-inf here, as in C
    y.backward()
    assert a.grad == want

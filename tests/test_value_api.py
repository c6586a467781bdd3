"""The Value API a micrograd user touches: data/grad/label attributes, repr, identity,
accepted number types. One body, two engines."""
import numpy as np
import pytest

from conftest import assert_same


def test_data_and_grad_are_python_floats(engine):
    a = engine.Value(2)
    assert type(a.data) is float and a.data == 2.0
    assert type(a.grad) is float and a.grad == 0.0


def test_sgd_update_writes_data(engine):
    p = engine.Value(1.0)
    (p * 3.0).backward()
    p.data += -0.1 * p.grad
    assert_same(p.data, 1.0 + -0.1 * 3.0)
    assert_same((p * 2).data, (1.0 + -0.1 * 3.0) * 2)  # later ops see the new data


def test_grad_reset_to_int_zero_then_accumulates(engine):
    p = engine.Value(1.5)
    (p * 2.0).backward()
    p.grad = 0
    assert p.grad == 0.0
    (p * 4.0).backward()
    assert p.grad == 4.0


def test_grad_writable_with_float(engine):
    p = engine.Value(1.5)
    p.grad = 2.5
    q = p * 2.0
    q.backward()
    assert p.grad == 4.5  # backward accumulates on top of what was written


def test_label_settable_and_from_constructor(engine):
    a = engine.Value(1.0, label="a")
    assert a.label == "a"
    a.label = "weight"
    assert a.label == "weight"
    assert engine.Value(1.0).label == ""
    assert (a * 2).label == ""


def test_constructor_children_and_op(engine):
    a, b = engine.Value(1.0), engine.Value(2.0)
    c = engine.Value(3.0, (a, b), "+")
    assert c._prev == {a, b} and c._op == "+"


def test_repr_is_micrograds(engine):
    assert repr(engine.Value(2.0)) == "Value(data=2.0, grad=0.0)"
    assert repr(engine.Value(2)) == "Value(data=2.0, grad=0.0)"
    a = engine.Value(-0.5)
    (a * 3).backward()
    assert repr(a) == "Value(data=-0.5, grad=3.0)"
    assert repr(engine.Value(0.1)) == "Value(data=0.1, grad=0.0)"


def test_equality_is_identity(engine):
    a, b = engine.Value(1.0), engine.Value(1.0)
    assert a != b
    assert not (a == b)
    assert a == a
    assert len({a, b}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"


def test_hash_is_stable_after_data_change(engine):
    a = engine.Value(1.0)
    s = {a}
    a.data = 5.0
    a.grad = 3.0
    assert a in s


def test_values_have_no_ordering(engine):
    a, b = engine.Value(1.0), engine.Value(2.0)
    with pytest.raises(TypeError):
        a < b  # noqa: B015


@pytest.mark.parametrize("x, want", [
    (np.float32(1.5), 1.5), (np.float64(0.1), 0.1), (np.int64(3), 3.0), (np.int32(-2), -2.0),
    (True, 1.0), (False, 0.0), (7, 7.0), (-0.0, -0.0), (np.bool_(True), 1.0),
    (np.bool_(False), 0.0),
], ids=repr)
def test_number_types_accepted_as_data(engine, x, want):
    v = engine.Value(x)
    assert type(v.data) is float
    assert_same(v.data, want)


def test_float32_data_is_widened_exactly(engine):
    assert_same(engine.Value(np.float32(0.1)).data, float(np.float32(0.1)))


@pytest.mark.parametrize("expr, want", [
    (lambda a: np.float64(2) * a, 3.0),
    (lambda a: a * np.int64(3), 4.5),
    (lambda a: np.float32(0.5) + a, 2.0),
    (lambda a: np.float64(4.5) - a, 3.0),
    (lambda a: np.int64(3) / a, 2.0),
    (lambda a: a / np.float64(0.5), 3.0),
    (lambda a: a ** np.int64(2), 2.25),
    (lambda a: np.float64(4.0) ** (a - 1), 2.0),
])
def test_numpy_scalar_operands_give_values(engine, expr, want):
    a = engine.Value(1.5)
    out = expr(a)
    assert isinstance(out, engine.Value)
    assert_same(out.data, want)


def test_numpy_operand_becomes_leaf_with_float_data(engine):
    a = engine.Value(1.5)
    out = np.float64(2) * a
    (k,) = out._prev - {a}
    assert type(k.data) is float and k.data == 2.0


def test_bool_operands_accepted(engine):
    a = engine.Value(1.5)
    assert_same((a + True).data, 2.5)
    assert_same((a * False).data, 0.0)
    assert_same((a * np.bool_(True)).data, 1.5)
    assert (a ** np.bool_(True))._op == "**1"


def test_constructor_children_from_a_generator_of_temporaries(engine):
    """The children may be temporaries that only the new Value keeps alive."""
    xs = [engine.Value(float(i)) for i in range(5)]
    v = engine.Value(1.0, (x * x for x in xs), "custom")
    assert sorted(c.data for c in v._prev) == [0.0, 1.0, 4.0, 9.0, 16.0]
    assert v._op == "custom"
    v.backward()  # micrograd's hand-made node has no local derivative
    assert [x.grad for x in xs] == [0.0] * 5


def test_number_types_read_the_same_once_their_type_is_cached(ag):
    """cpp/python_boundary.cpp remembers the first 8 real types beyond float and int (numpy's
    scalars, float subclasses) and reads their objects without the checks: every read, first or
    later, of more such types than it remembers, gives the same number, int-ness and errors."""
    import numbers

    class Half(float):  # a float subclass is read as the float it is, not through __float__
        def __float__(self):
            return 0.0

    class Ratio:  # a registered numbers.Real: read through __float__
        def __init__(self, x):
            self.x = x

        def __float__(self):
            return self.x

    numbers.Real.register(Ratio)
    kinds = [(np.float64(0.1), 0.1, "**0.1"), (np.float32(0.5), 0.5, "**0.5"),
             (np.int64(3), 3.0, "**3"), (np.int32(-2), -2.0, "**-2"), (np.int16(2), 2.0, "**2"),
             (np.uint8(4), 4.0, "**4"), (np.float16(1.5), 1.5, "**1.5"),
             (Half(2.5), 2.5, "**2.5"), (Ratio(0.75), 0.75, "**0.75"),
             (np.longdouble(0.25), 0.25, "**0.25"), (np.uint64(7), 7.0, "**7")]
    a = ag.Value(1.5)
    for _ in range(3):
        for x, want, op in kinds:
            assert_same(ag.Value(x).data, want)
            assert_same((a * x).data, 1.5 * want)
            assert (a ** x)._op == op
    with pytest.raises(TypeError):
        ag.Value(1j)
    with pytest.raises(TypeError):
        ag.Value("0.5")

"""Beyond micrograd: no_grad, MLP.predict, state_dict, pickling, arenagrad.sum, memory_stats."""
import pickle

import numpy as np
import pytest
from hypothesis import given, strategies as st

import arenagrad
from arenagrad import nn as ag_nn
from arenagrad.engine import Value
from arenagrad.reference import nn as ref_nn
from conftest import assert_close, assert_same, seeded_mlp


# ---- no_grad ----

def graph_expr(a, b):
    return ((a * b + a) ** 2 - b / a).tanh() + a.exp()


def test_no_grad_results_are_leaves():
    a, b = Value(0.5), Value(-1.5)
    with arenagrad.no_grad():
        out = graph_expr(a, b)
    assert out._prev == set()
    assert out._op == ""


def test_no_grad_same_value_as_recording():
    a, b = Value(0.5), Value(-1.5)
    with arenagrad.no_grad():
        quiet = graph_expr(a, b).data
    assert_same(quiet, graph_expr(a, b).data)


def test_no_grad_live_nodes_grow_by_results_only():
    a, b = Value(0.5), Value(-1.5)
    baseline = arenagrad.live_nodes()
    with arenagrad.no_grad():
        outs = [((a * b + a) ** 2 * 3 + 1).tanh().exp().relu() for _ in range(10)]
    assert arenagrad.live_nodes() == baseline + len(outs)
    recorded = ((a * b + a) ** 2 * 3 + 1).tanh().exp().relu()
    assert arenagrad.live_nodes() > baseline + len(outs) + 1  # the recording twin keeps its graph
    del outs, recorded
    assert arenagrad.live_nodes() == baseline


# Regression (fixed, cpp/ops.cpp sub/truediv): under no_grad, the intermediate `-b` of `a - b`
# and `b**-1` of `a / b` was allocated with refs == 0 and never acquired nor freed, so every `-`
# or `/` with a Value right operand (and `2 - b`, `2 / b`) leaked one arena slot for good.
SUB_DIV = {"a - b": lambda a, b: a - b, "a / b": lambda a, b: a / b,
           "2 - b": lambda a, b: 2 - b, "2 / b": lambda a, b: 2 / b}


@pytest.mark.parametrize("op", list(SUB_DIV))
def test_no_grad_sub_div_leave_no_nodes(op):
    a, b = Value(0.5), Value(-1.5)
    baseline = arenagrad.live_nodes()
    with arenagrad.no_grad():
        outs = [SUB_DIV[op](a, b) for _ in range(10)]
    assert arenagrad.live_nodes() == baseline + len(outs)
    del outs
    assert arenagrad.live_nodes() == baseline


def test_no_grad_backward_reaches_nothing():
    a, b = Value(0.5), Value(-1.5)
    with arenagrad.no_grad():
        out = a * b
    out.backward()
    assert (out.grad, a.grad, b.grad) == (1.0, 0.0, 0.0)


def test_no_grad_nested_records_after_outer_exit():
    a = Value(2.0)
    with arenagrad.no_grad():
        with arenagrad.no_grad():
            inner = a * a
        between = a * a
    after = a * a
    assert inner._prev == set() and between._prev == set()
    assert after._prev == {a}


def test_no_grad_exception_inside_restores_recording():
    a = Value(2.0)
    with pytest.raises(RuntimeError):
        with arenagrad.no_grad():
            raise RuntimeError("boom")
    assert (a + a)._prev == {a}


def test_no_grad_engine_error_inside_restores_recording():
    a = Value(0.0)
    with pytest.raises(ZeroDivisionError):
        with arenagrad.no_grad():
            a ** -1
    assert (a * 3)._op == "*"


def test_no_grad_mlp_forward_is_leaf():
    model = seeded_mlp(ag_nn, 2, [4, 1], 7)
    with arenagrad.no_grad():
        out = model([0.5, -0.25])
    assert out._prev == set()
    assert_same(out.data, model([0.5, -0.25]).data)


# ---- MLP.predict ----

predict_cases = st.tuples(
    st.integers(1, 4), st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1), st.integers(0, 6), st.integers(0, 2**32 - 1))


@given(predict_cases)
def test_predict_equals_forward_per_sample(case):
    nin, nouts, seed, n, data_seed = case
    model = seeded_mlp(ag_nn, nin, nouts, seed)
    X = np.random.default_rng(data_seed).normal(scale=2.0, size=(n, nin))
    got = model.predict(X)
    assert got.shape == ((n,) if nouts[-1] == 1 else (n, nouts[-1]))
    for i, row in enumerate(X):
        out = model(list(row))
        want = [o.data for o in out] if isinstance(out, list) else out.data
        assert np.array_equal(got[i], want), f"row {i}: {got[i]!r} != {want!r}"


def test_predict_shape_single_output():
    X = np.zeros((5, 3))
    assert seeded_mlp(ag_nn, 3, [4, 1], 0).predict(X).shape == (5,)


def test_predict_shape_multi_output():
    X = np.zeros((5, 3))
    assert seeded_mlp(ag_nn, 3, [4, 2], 0).predict(X).shape == (5, 2)


def test_predict_accepts_nested_lists():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    assert np.array_equal(model.predict([[1, 2], [3, 4]]), model.predict(np.array([[1.0, 2], [3, 4]])))


@pytest.mark.parametrize("shape", [(3,), (4, 3), (4, 1), (2, 2, 2), ()])
def test_predict_bad_shape_raises_value_error(shape):
    with pytest.raises(ValueError):
        seeded_mlp(ag_nn, 2, [3, 1], 0).predict(np.zeros(shape))


def test_predict_builds_no_graph():
    model = seeded_mlp(ag_nn, 2, [8, 1], 0)
    baseline = arenagrad.live_nodes()
    model.predict(np.ones((50, 2)))
    assert arenagrad.live_nodes() == baseline


# ---- state_dict ----

def test_state_dict_keys_and_shapes():
    sd = seeded_mlp(ag_nn, 3, [4, 5, 2], 0).state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "layers.0.weight": (4, 3), "layers.0.bias": (4,),
        "layers.1.weight": (5, 4), "layers.1.bias": (5,),
        "layers.2.weight": (2, 5), "layers.2.bias": (2,),
    }
    assert all(v.dtype == np.float64 for v in sd.values())


def test_state_dict_values_are_parameters():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    sd = model.state_dict()
    neuron = model.layers[0].neurons[1]
    assert list(sd["layers.0.weight"][1]) == [w.data for w in neuron.w]
    assert sd["layers.0.bias"][1] == neuron.b.data


def test_state_dict_round_trip_exact():
    src, dst = seeded_mlp(ag_nn, 2, [16, 16, 1], 1), seeded_mlp(ag_nn, 2, [16, 16, 1], 2)
    for p in src.parameters():
        p.data += 0.125  # nonzero biases too
    dst.load_state_dict(src.state_dict())
    assert [p.data for p in dst.parameters()] == [p.data for p in src.parameters()]
    X = np.random.default_rng(0).normal(size=(20, 2))
    assert np.array_equal(dst.predict(X), src.predict(X))
    assert_same(dst([0.1, 0.2]).data, src([0.1, 0.2]).data)  # the graph forward sees it too


def test_state_dict_is_a_copy():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    before = [p.data for p in model.parameters()]
    model.state_dict()["layers.0.weight"][:] = 99.0
    assert [p.data for p in model.parameters()] == before


def test_load_state_dict_shape_mismatch_raises_value_error():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    before = [p.data for p in model.parameters()]
    sd = model.state_dict()
    sd["layers.1.weight"] = np.zeros((3, 1))
    with pytest.raises(ValueError, match="layers.1.weight"):
        model.load_state_dict(sd)
    assert [p.data for p in model.parameters()] == before  # nothing loaded


def test_load_state_dict_missing_key_raises_key_error():
    sd = seeded_mlp(ag_nn, 2, [3, 1], 0).state_dict()
    del sd["layers.0.bias"]
    with pytest.raises(KeyError, match="layers.0.bias"):
        seeded_mlp(ag_nn, 2, [3, 1], 1).load_state_dict(sd)


def test_load_state_dict_extra_key_raises_key_error():
    sd = seeded_mlp(ag_nn, 2, [3, 1], 0).state_dict()
    sd["layers.2.weight"] = np.zeros((1, 1))
    with pytest.raises(KeyError, match="layers.2.weight"):
        seeded_mlp(ag_nn, 2, [3, 1], 1).load_state_dict(sd)


def test_state_dict_loads_into_torch_same_outputs():
    torch = pytest.importorskip("torch")
    model = seeded_mlp(ag_nn, 2, [16, 16, 1], 1337)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 1)).double()
    sd = model.state_dict()
    # torch's Sequential numbers its modules 0..4: our layers 0, 1, 2 are its Linears 0, 2, 4
    net.load_state_dict({f"{2 * int(k.split('.')[1])}.{k.split('.')[2]}": torch.from_numpy(v)
                         for k, v in sd.items()})
    X = np.random.default_rng(0).normal(size=(30, 2))
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()[:, 0]
    got = model.predict(X)
    for g, w in zip(got, want):
        assert_close(float(g), float(w), rel=1e-12)


# ---- pickling ----

def test_pickle_leaf_round_trip():
    v = Value(-2.5, label="w0")
    v.grad = 0.75
    back = pickle.loads(pickle.dumps(v))
    assert (back.data, back.grad, back.label) == (-2.5, 0.75, "w0")
    assert back._prev == set() and back._op == ""
    assert back is not v


def test_pickle_non_leaf_raises_type_error():
    a = Value(2.0)
    with pytest.raises(TypeError):
        pickle.dumps(a * a)


def test_pickle_mlp_same_predictions_and_repr():
    model = seeded_mlp(ag_nn, 2, [16, 16, 1], 3)
    back = pickle.loads(pickle.dumps(model))
    X = np.random.default_rng(1).normal(size=(25, 2))
    assert np.array_equal(back.predict(X), model.predict(X))
    assert_same(back([0.3, -0.4]).data, model([0.3, -0.4]).data)
    assert repr(back) == repr(model)
    assert [p.data for p in back.parameters()] == [p.data for p in model.parameters()]


def test_pickle_mlp_parameters_are_new_leaves():
    model = seeded_mlp(ag_nn, 2, [4, 1], 3)
    back = pickle.loads(pickle.dumps(model))
    assert all(p._prev == set() and p._op == "" for p in back.parameters())
    assert not any(p is q for p, q in zip(back.parameters(), model.parameters()))
    assert all(p is q for p, q in zip(back.parameters(), back.parameters()))


def test_pickle_mlp_training_continues():
    model = seeded_mlp(ag_nn, 2, [4, 1], 3)
    back = pickle.loads(pickle.dumps(model))
    loss = (back([1.0, -1.0]) - 1.0) ** 2
    back.zero_grad()
    loss.backward()
    assert any(p.grad != 0.0 for p in back.parameters())
    assert all(p.grad == 0.0 for p in model.parameters())  # the original is untouched
    for p in back.parameters():
        p.data += -0.01 * p.grad
    assert ((back([1.0, -1.0]) - 1.0) ** 2).data < loss.data
    assert np.array_equal(back.predict([[1.0, -1.0]]), [back([1.0, -1.0]).data])


def test_pickle_mlp_matches_reference_after_round_trip():
    back = pickle.loads(pickle.dumps(seeded_mlp(ag_nn, 3, [4, 4, 1], 0)))
    ref = seeded_mlp(ref_nn, 3, [4, 4, 1], 0)
    assert_same(back([2.0, 3.0, -1.0]).data, ref([2.0, 3.0, -1.0]).data)


# ---- arenagrad.sum ----

sum_items = st.lists(
    st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: ("value", x)),
              st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: ("number", x)),
              st.integers(-10, 10).map(lambda x: ("number", x)),
              st.integers(0, 9).map(lambda i: ("reuse", i))),
    min_size=1, max_size=30)


def materialize(items):
    """Values and numbers in list order; ("reuse", i) repeats an earlier Value."""
    out, values = [], []
    for kind, x in items:
        if kind == "value":
            values.append(Value(x))
            out.append(values[-1])
        elif kind == "number":
            out.append(x)
        elif values:
            out.append(values[x % len(values)])
    return out, values


@given(sum_items)
def test_sum_equals_python_sum_chain(items):
    terms, values = materialize(items)
    if not any(isinstance(t, Value) for t in terms):
        terms.append(Value(1.0))
        values.append(terms[-1])
    chain = sum(terms)
    chain.backward()
    want_grads = [v.grad for v in values]
    for v in values:
        v.grad = 0.0
    fused = arenagrad.sum(terms)
    assert_same(fused.data, chain.data, "sum")
    fused.backward()
    for v, want in zip(values, want_grads):
        assert_close(v.grad, want)


def test_sum_rounding_order_python():
    terms = [Value(1e16), 1.0, Value(1.0), Value(-1e16)]
    assert arenagrad.sum(terms).data == sum(terms).data == 0.0
    assert arenagrad.sum([Value(0.1), Value(0.2), Value(0.3)]).data == 0.1 + 0.2 + 0.3


@pytest.mark.parametrize("leading", [
    [-48577.0, -999999.7617658869, 1.0],  # found by hypothesis on 3.13: compensated there
    [1e16, 1.0, -1e16, 1.0], [0.1] * 10, [3, 4, 0.1, 0.2, 2**60, 0.3], [2**60, 1, -2**60],
    [np.float32(0.1), np.float32(0.2), 0.3], [-0.0, -0.0], [True, 2, 0.5],
])
def test_sum_of_leading_numbers_is_pythons_bit_for_bit(leading):
    """Python's sum() adds the numbers before the first Value its own way (ints exactly,
    floats with compensation from CPython 3.12): arenagrad.sum gives the same bits, then and
    after recompute(), and the Values' grads are 1."""
    a, b = Value(0.25), Value(-3.5)
    terms = [*leading, a, 1.5, b]
    want = sum(terms).data
    got = arenagrad.sum(terms)
    assert_same(got.data, want)
    got.recompute()
    assert_same(got.data, want)
    got.backward()
    assert (a.grad, b.grad) == (1.0, 1.0)
    assert_same(arenagrad.sum(leading).data, float(sum(leading)))


def test_sum_of_list_of_temporaries():
    xs = [Value(float(i)) for i in range(5)]
    assert arenagrad.sum([x * x for x in xs]).data == 30.0


# Regression (fixed, cpp/python_boundary.hpp [P2] Items): the ids of the items were read
# through borrowed handles. A generator's items are temporaries, freed right after each is read;
# their slots were reused (by the next temporaries, even by the Sum node itself), so the Sum read
# and recorded freed nodes: `arenagrad.sum(x * x for x in [0..4])` gave 66.0 and listed itself in
# its own _prev. micrograd's own demo writes `sum((p*p for p in model.parameters()))`.
def test_sum_of_generator_of_temporaries():
    xs = [Value(float(i)) for i in range(5)]
    s = arenagrad.sum(x * x for x in xs)
    assert s.data == 30.0
    assert s not in s._prev


def test_star_import_keeps_the_builtin_sum():
    # arenagrad.sum stays, but `from arenagrad import *` must not shadow Python's sum.
    namespace = {}
    exec("from arenagrad import *", namespace)
    assert "sum" not in namespace and "sum" not in arenagrad.__all__
    assert arenagrad.sum is arenagrad._core.sum
    assert {"Value", "no_grad", "live_nodes", "memory_stats", "trim"} <= namespace.keys()
    assert eval("sum([1, 2, 3])", namespace) == 6


def test_sum_repeated_value_grad_counts():
    a = Value(3.0)
    s = arenagrad.sum([a, a, a, 2.0])
    s.backward()
    assert (s.data, a.grad) == (11.0, 3.0)


def test_sum_non_numeric_raises_type_error():
    with pytest.raises(TypeError):
        arenagrad.sum([Value(1.0), "x"])


# ---- memory_stats ----

def test_memory_stats_consistent_with_live_nodes():
    stats = arenagrad.memory_stats()
    assert {"live_nodes", "capacity", "bytes"} <= stats.keys()
    assert stats["live_nodes"] == arenagrad.live_nodes()
    assert 0 <= stats["live_nodes"] <= stats["capacity"]
    assert stats["bytes"] >= 16 * stats["capacity"]  # at least data and grad per slot


def test_memory_stats_tracks_new_nodes():
    before = arenagrad.memory_stats()
    values = [Value(float(i)) for i in range(1000)]
    after = arenagrad.memory_stats()
    assert after["live_nodes"] == before["live_nodes"] + 1000 == arenagrad.live_nodes()
    del values
    assert arenagrad.memory_stats()["live_nodes"] == before["live_nodes"]


def test_memory_stats_capacity_grows_past_capacity():
    before = arenagrad.memory_stats()
    values = [Value(0.0) for _ in range(before["capacity"] + 1)]
    after = arenagrad.memory_stats()
    assert after["capacity"] > before["capacity"]
    assert after["live_nodes"] <= after["capacity"]
    assert after["bytes"] > before["bytes"]
    assert after["bytes"] >= 16 * after["capacity"]  # data and grad per slot, new slots included
    del values

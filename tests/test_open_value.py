"""An open Value (README "Adding an operation"): the lecture's custom ops (`Value(data, children, op)` plus
`out._backward = closure`), attached methods, subclasses, weak references, instance attributes,
copies and pickles, each run on both engines where the reference can run it."""
import copy
import gc
import math
import pickle
import subprocess
import sys
import weakref

import pytest
from hypothesis import given, settings, strategies as st

from arenagrad.engine import Value as AgValue
from conftest import assert_close, assert_same

finite = st.floats(-3.0, 3.0, allow_nan=False)


# ---- the lecture's custom ops, written once, attached to either engine's Value ----

def lecture_ops(Value):
    """The lecture's way to add operations: a forward value, then a closure for the local
    derivative, accumulated (+=) into each operand's grad."""

    def sin(self):
        out = Value(math.sin(self.data), (self,), 'sin')

        def _backward():
            self.grad += math.cos(self.data) * out.grad
        out._backward = _backward
        return out

    def hypot(self, other):  # a two-input op: sqrt(a^2 + b^2)
        r = math.hypot(self.data, other.data)
        out = Value(r, (self, other), 'hypot')

        def _backward():
            self.grad += (self.data / r) * out.grad
            other.grad += (other.data / r) * out.grad
        out._backward = _backward
        return out

    return {"sin": sin, "hypot": hypot}


@pytest.fixture
def V(engine, monkeypatch):
    """The engine's Value with the lecture's sin and hypot attached (removed after the test)."""
    for name, fn in lecture_ops(engine.Value).items():
        monkeypatch.setattr(engine.Value, name, fn, raising=False)
    return engine.Value


def _attached(Value):
    """Value with the lecture's sin and hypot attached, removed afterwards."""
    ops = lecture_ops(Value)
    for name, fn in ops.items():
        setattr(Value, name, fn)
    yield Value
    for name in ops:
        delattr(Value, name)


@pytest.fixture(scope="module")
def RV(ref):
    yield from _attached(ref.Value)


@pytest.fixture(scope="module")
def AV(ag):
    yield from _attached(ag.Value)


def mixed_graph(Value, a, b):
    """Custom and built-in ops mixed; `s` feeds two consumers; intermediates are dropped."""
    x, y = Value(a), Value(b)
    s = (x * y).sin()
    L = (s.hypot(x + 1.0) * s).tanh() + s.exp() - x.sin() ** 2
    return L, x, y


def test_custom_sin_gradient_is_cos(V):
    x = V(0.7)
    y = x.sin()
    y.backward()
    assert y._op == 'sin'
    assert_same(y.data, math.sin(0.7))
    assert_close(x.grad, math.cos(0.7))


def test_custom_two_input_op_gradient(V):
    a, b = V(3.0), V(-4.0)
    h = a.hypot(b)
    h.backward()
    assert h._prev == {a, b}
    assert_same(h.data, 5.0)
    assert_close(a.grad, 0.6)
    assert_close(b.grad, -0.8)


@given(finite, finite)
def test_mixed_graph_matches_reference(AV, RV, a, b):
    L, x, y = mixed_graph(AV, a, b)
    Lr, xr, yr = mixed_graph(RV, a, b)
    gc.collect()  # the dropped intermediates' handles go; their closures must not
    L.backward()
    Lr.backward()
    assert_same(L.data, Lr.data)
    assert_close(x.grad, xr.grad, what="x.grad")
    assert_close(y.grad, yr.grad, what="y.grad")


@given(finite)
def test_repeated_backward_accumulates_like_reference(AV, RV, a):
    results = []
    for Value in (AV, RV):
        x = Value(a)
        L = x.sin().exp() * x.sin()
        L.backward()
        L.backward()
        results.append((x.grad, L.grad))
    assert_close(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] == 1.0


def test_mixed_graph_matches_finite_differences(V):
    a, b, h = 0.3, -1.2, 1e-6
    L, x, y = mixed_graph(V, a, b)
    L.backward()
    dx = (mixed_graph(V, a + h, b)[0].data - mixed_graph(V, a - h, b)[0].data) / (2 * h)
    assert abs(x.grad - dx) < 1e-6


def test_closure_runs_once_in_topological_position(V):
    """Called once per backward, after every consumer has added into out.grad."""
    calls = []
    x = V(0.5)
    out = V(2 * x.data, (x,), 'double')

    def _backward():
        calls.append(out.grad)
        x.grad += 2 * out.grad
    out._backward = _backward
    L = out * out + out.exp()  # out feeds two consumers
    L.backward()
    assert calls == [2 * out.data + math.exp(out.data)]
    assert_close(x.grad, 2 * calls[0])
    L.backward()
    assert len(calls) == 2


def test_lecture_manual_backward_calls_each_node(engine):
    """The lecture calls `o._backward()` by hand, node by node, on built-in nodes too."""
    Value = engine.Value
    x1, w1, b = Value(2.0), Value(-3.0), Value(6.8813735870195432)
    x1w1 = x1 * w1
    n = x1w1 + b
    o = n.tanh()
    o.grad = 1.0
    o._backward()
    n._backward()
    x1w1._backward()
    assert_close(n.grad, 1 - o.data ** 2)
    assert_close(x1.grad, w1.data * n.grad)


def test_exception_in_closure_propagates_and_engine_stays_usable(V):
    err = ValueError("boom")
    x = V(1.0)
    out = V(1.0, (x,), 'bad')

    def _backward():
        raise err
    out._backward = _backward
    L = out * 3.0
    with pytest.raises(ValueError) as info:
        L.backward()
    assert info.value is err
    y = V(2.0)
    (y * y).backward()
    assert y.grad == 4.0


def test_recompute_of_custom_node_is_type_error_naming_op(AV):
    x = AV(0.5)
    L = x.sin() * 2.0
    with pytest.raises(TypeError, match="'sin'"):
        L.recompute()
    assert_same(L.data, 2.0 * math.sin(0.5))  # nothing half-done


def test_custom_node_without_closure_passes_nothing_like_lecture(engine):
    x = engine.Value(2.0)
    out = engine.Value(5.0, (x,), 'opaque')
    (out * 2.0).backward()
    assert out.grad == 2.0 and x.grad == 0.0


DEEP_CHAIN = """
import gc, math, arenagrad
from arenagrad.engine import Value

def sin(self):
    out = Value(math.sin(self.data), (self,), 'sin')

    def _backward():
        self.grad += math.cos(self.data) * out.grad
    out._backward = _backward
    return out

Value.sin = sin
gc.collect()
base = arenagrad.live_nodes()
gc.disable()  # a million closures: no need for a collection per 700 of them
x = Value(0.5)
v = x
for _ in range(N):
    v = v.sin()
v.backward()
gc.enable()
print(repr(v.data), repr(x.grad))
del v
gc.collect()
print(arenagrad.live_nodes() - base)
"""


def test_deep_chain_of_custom_nodes():
    """A million lecture-style sin nodes: built, backpropagated (iteratively) and freed. In a
    subprocess: its closures take ~0.5 GB, which the allocator keeps after they are freed."""
    n = 1_000_000
    result = subprocess.run([sys.executable, "-c", DEEP_CHAIN.replace("N)", f"{n})")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    data, grad, left = result.stdout.split()
    want, y = 1.0, 0.5  # d sin^n(x)/dx = prod cos(sin^k(x))
    for _ in range(n):
        want *= math.cos(y)
        y = math.sin(y)
    assert_same(float(data), y)
    assert_close(float(grad), want)
    assert left == "1"  # x


# ---- state that outlives a handle ----

def test_dropped_custom_handle_keeps_closure_op_and_identity(AV):
    x = AV(0.5)
    y = x.sin().exp()  # sin's handle is dropped at once
    gc.collect()
    (s,) = y._prev
    assert s._op == 'sin' and s._prev == {x}
    y.backward()
    assert_close(x.grad, math.cos(0.5) * math.exp(math.sin(0.5)))
    assert y._prev == {s}  # the very object, re-attached


def test_dropped_subclass_handle_comes_back_with_type_and_attributes(ag):
    class Tagged(ag.Value):
        def describe(self):
            return f"{self.tag}={self.data}"

    t = Tagged(2.0)
    t.tag = "w"
    y = t * 3.0
    del t
    gc.collect()
    (t2, c) = sorted(y._prev, key=lambda v: v.data)
    assert type(t2) is Tagged and t2.describe() == "w=2.0"


def test_graph_with_closures_freed_after_drop(AV, arenagrad_pkg):
    gc.collect()
    base = arenagrad_pkg.live_nodes()
    x = AV(0.1)
    L = x.sin().hypot(x).sin() * x.sin()
    L.backward()
    del L
    gc.collect()
    assert arenagrad_pkg.live_nodes() == base + 1


# ---- attaching methods, subclassing, weak references, attributes ----

def test_attach_and_delete_method(ag):
    def double(self):
        return self * 2
    ag.Value.double = double
    try:
        assert ag.Value(3.0).double().data == 6.0
    finally:
        del ag.Value.double
    assert not hasattr(ag.Value(1.0), "double")


def test_subclass_with_own_init_takes_part_in_graphs(engine):
    class Param(engine.Value):
        def __init__(self, data, name):
            super().__init__(data)
            self.name = name

        def scaled(self, k):
            return self * k

    p = Param(3.0, "w")
    out = p.scaled(2.0) + p
    out.backward()
    assert p.name == "w" and isinstance(p, engine.Value)
    assert p in out._prev or any(p in v._prev for v in out._prev)
    assert type(out) is engine.Value  # operators return plain Values
    assert p.grad == 3.0


def test_weakref_follows_handle(engine):
    v = engine.Value(1.0)
    r = weakref.ref(v)
    assert r() is v
    del v
    gc.collect()
    assert r() is None


def test_weakrefs_die_with_recycled_handles(ag):
    """Plain Values are recycled through a free list, and their dealloc clears weak references
    only when the handle's list holds some: each callback runs once, when its own handle dies
    (its Node living on in the graph), and a recycled handle starts with no weak reference."""
    a = ag.Value(1.5)
    died = []
    out = a
    for i in range(300):  # more than the free list holds
        product = out * a
        ref = weakref.ref(product, lambda r, i=i: died.append(i))
        out = product + 1.0
        del product
        assert died == list(range(i + 1)) and ref() is None
        fresh = a * a  # takes the handle just freed, if the free list has room
        assert weakref.getweakrefcount(fresh) == 0
        del fresh
    assert out.data == pytest.approx(_reference_chain(1.5, 300))
    kept = [a * a for _ in range(10)]
    refs = [weakref.ref(v) for v in kept]
    assert [r() is v for r, v in zip(refs, kept)] == [True] * 10
    del kept
    assert [r() for r in refs] == [None] * 10


def test_weakref_callback_that_fills_the_free_list_during_dealloc(ag):
    """A weak reference's callback runs inside the dying Value's dealloc, before its handle is
    kept for reuse: a callback that frees hundreds of plain Values (filling the free list) and
    runs backward() there leaves a free list with room for the dying one, and every graph
    intact."""
    import arenagrad

    a, b = ag.Value(2.0), ag.Value(3.0)
    seen = []

    def callback(ref):
        many = [a * b for _ in range(600)]  # more handles than the free list holds
        loss = arenagrad.sum(many)
        loss.backward()
        seen.append((loss.data, a.grad))
        del many, loss

    for _ in range(5):
        a.grad = 0.0
        v = a * b + a
        ref = weakref.ref(v, callback)
        del v  # the callback runs here
        assert ref() is None
    assert seen == [(3600.0, 1800.0)] * 5
    out = a * b
    assert (out.data, out._op, out._prev) == (6.0, "*", {a, b})


def _reference_chain(a, n):
    out = a
    for _ in range(n):
        out = out * a + 1.0
    return out


def test_instance_attributes(engine):
    v = engine.Value(1.0)
    v.name = "bias"
    assert v.name == "bias" and v.__dict__["name"] == "bias"
    del v.name
    assert not hasattr(v, "name")


def test_backward_assignment_rejected_on_builtin_node(ag):
    a = ag.Value(1.0)
    with pytest.raises(TypeError, match="built-in"):
        (a * 2)._backward = lambda: None
    with pytest.raises(TypeError, match="callable"):
        ag.Value(1.0, (a,), 'f')._backward = 3


def test_walk_inside_closure_is_refused(AV):
    x = AV(1.0)
    out = AV(1.0, (x,), 'f')
    out._backward = lambda: x.backward()
    with pytest.raises(RuntimeError, match="another one in the same thread.*custom _backward"):
        out.backward()


# ---- copies and pickles ----

def test_copy_is_leaf_with_data_and_label(ag):
    a = ag.Value(2.0, label='a')
    b = (a * 3.0)
    b.label = 'b'
    c = copy.copy(b)
    assert c.data == 6.0 and c.label == 'b' and c._prev == set() and c is not b


@given(finite, finite)
def test_deepcopy_copies_graph_independently(ag, ref, a, b):
    L, x, y = mixed_graph(ref.Value, a, b)
    L.backward()
    for Value in (ag.Value,):
        z = (Value(a) * Value(b)).tanh() + Value(a) ** 2
        z2 = copy.deepcopy(z)
        leaves = lambda root: [v for v in root._prev]  # noqa: E731
        assert_same(z2.data, z.data)
        assert not set(leaves(z)) & set(leaves(z2))
        z2.backward()
        assert all(v.grad == 0.0 for v in leaves(z))
        z.backward()
        assert sorted(v.grad for v in leaves(z)) == sorted(v.grad for v in leaves(z2))


def test_deepcopy_deep_chain(ag):
    v = ag.Value(1.0)
    for _ in range(100_000):
        v = v * 1.0 + 0.0
    v2 = copy.deepcopy(v)
    v2.backward()
    assert v2.data == 1.0 and v.grad == 0.0 and v2.grad == 1.0


def test_deepcopy_keeps_closure_of_custom_node(AV):
    x = AV(0.5)
    s = x.sin()
    s2 = copy.deepcopy(s)
    assert s2._backward is s._backward  # as micrograd: the closure refers to the originals
    (x2,) = s2._prev
    assert x2 is not x and x2.data == 0.5


def test_deepcopy_shares_memo(ag):
    a = ag.Value(1.0)
    pair = copy.deepcopy([a * 2.0, a])
    assert pair[1] in pair[0]._prev


def test_deepcopy_model_is_independent(engine):
    import random
    nn = pytest.importorskip(engine.__name__.rsplit(".", 1)[0] + ".nn")
    random.seed(0)
    m = nn.MLP(2, [4, 1])
    m2 = copy.deepcopy(m)
    assert m2([1.0, -2.0]).data == m([1.0, -2.0]).data
    for p in m2.parameters():
        p.data += 1.0
    assert m2([1.0, -2.0]).data != m([1.0, -2.0]).data
    assert not set(map(id, m.parameters())) & set(map(id, m2.parameters()))


def test_pickle_keeps_leaf_op_and_label(ag):
    v = ag.Value(1.5, (), 'input', label='a\x00b')
    w = pickle.loads(pickle.dumps(v))
    assert (w.data, w._op, w.label) == (1.5, 'input', 'a\x00b')


def test_pickle_subclass_keeps_type_and_attributes(ag):
    w = pickle.loads(pickle.dumps(PickledTagged(2.0, "t")))
    assert type(w) is PickledTagged and (w.data, w.tag) == (2.0, "t")


def test_label_keeps_every_character(engine):
    v = engine.Value(1.0, label='a\x00b')
    assert v.label == 'a\x00b'
    v.label = '\x00'
    assert v.label == '\x00'


class PickledTagged(AgValue):  # module level: pickle finds it by name
    def __init__(self, data, tag):
        super().__init__(data)
        self.tag = tag


# ---- integer exponents stay exact (issue 9) ----

big_ints = st.integers(2**53 - 4, 2**70) | st.integers(-2**70, -(2**53 - 4))
bases = st.sampled_from([-1.0, 1.0, -0.5, 0.5, -1.0000000001, 0.9999999999, -2.0, 0.0, -0.0])


def pow_outcome(Value, x, k):
    """(forward, _op, grad) of x ** k, or the exception type."""
    v = Value(x)
    try:
        y = v ** k
    except Exception as e:  # the engines must raise the same type
        return type(e)
    y.backward()
    return y.data, y._op, v.grad


@given(bases, big_ints)
def test_big_int_exponent_matches_reference(ag, ref, x, k):
    got, want = pow_outcome(ag.Value, x, k), pow_outcome(ref.Value, x, k)
    if isinstance(want, type):
        assert got is want
        return
    assert_same(got[0], want[0], "forward")
    assert got[1] == want[1]
    assert_same(got[2], want[2], "grad")


def test_big_odd_exponent_grad_sign_matches_reference(ag, ref):
    got, want = pow_outcome(ag.Value, -1.0, 2**53 + 1), pow_outcome(ref.Value, -1.0, 2**53 + 1)
    assert got[1] == want[1] == '**9007199254740993'
    assert_same(got[2], want[2], "grad")


# ---- random graphs: handles dropped and collected at random points ----

steps = st.lists(st.tuples(st.sampled_from(["sin", "hypot", "mul", "add", "tanh", "tag"]),
                           st.integers(0, 10**6), st.integers(0, 10**6), st.booleans()),
                 min_size=1, max_size=12)


def random_graph(Value, Tagged, leaves, plan):
    """Builds the plan's graph; returns (root, leaves). Intermediates are kept only when the
    plan says so, and the collector runs where it says so."""
    pool = [Value(x) for x in leaves]
    inputs = list(pool)
    kept = []
    for op, i, j, collect in plan:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if op == "tag":  # a subclass instance with an attribute, used as a leaf
            v = Tagged(a.data * 0.5)
            v.note = "t"
            inputs.append(v)
        else:
            v = {"sin": lambda: a.sin(), "mul": lambda: a * b,
                 "hypot": lambda: a.hypot(b) if a.data or b.data else a * b,
                 "add": lambda: a + b, "tanh": lambda: a.tanh()}[op]()
        pool.append(v)
        if collect:
            kept.append(v)
            del pool[0:len(pool) - 3]  # drop most handles
            gc.collect()
    root = pool[-1]
    for v in pool[:-1] + kept:
        root = root + v
    return root, inputs


@settings(max_examples=20)  # each example runs several full collections
@given(st.lists(finite, min_size=1, max_size=4), steps)
def test_random_graph_with_dropped_handles_matches_reference(AV, RV, leaves, plan):
    class AgTagged(AV):
        pass

    class RefTagged(RV):
        pass

    root, inputs = random_graph(AV, AgTagged, leaves, plan)
    ref_root, ref_inputs = random_graph(RV, RefTagged, leaves, plan)
    gc.collect()
    root.backward()
    ref_root.backward()
    assert_same(root.data, ref_root.data)
    for got, want in zip(inputs, ref_inputs):
        assert_close(got.grad, want.grad)


def _sin_node(Value, cls, x):
    out = cls(math.sin(x.data), (x,), 'sin')

    def _backward():
        x.grad += math.cos(x.data) * out.grad
    out._backward = _backward
    return out


def test_subclass_with_del_keeps_closure_while_used_then_frees(ag, arenagrad_pkg):
    class WithDel(ag.Value):
        def __del__(self):
            pass

    gc.collect()
    base = arenagrad_pkg.live_nodes()
    x = ag.Value(0.5)
    y = _sin_node(ag.Value, WithDel, x).exp()
    gc.collect()
    y.backward()
    assert_close(x.grad, math.cos(0.5) * math.exp(math.sin(0.5)))
    del y
    gc.collect()
    gc.collect()
    assert arenagrad_pkg.live_nodes() == base + 1


def test_handle_dropped_twice_keeps_closure(ag, arenagrad_pkg):
    """Detached by the collector, given back by `_prev`, dropped again: still called."""
    gc.collect()
    base = arenagrad_pkg.live_nodes()
    x = ag.Value(0.5)
    y = _sin_node(ag.Value, ag.Value, x).exp()
    for _ in range(2):
        gc.collect()
        (s,) = y._prev
        assert s._op == 'sin'
        del s
    gc.collect()
    y.backward()
    assert_close(x.grad, math.cos(0.5) * math.exp(math.sin(0.5)))
    del y
    gc.collect()
    gc.collect()
    assert arenagrad_pkg.live_nodes() == base + 1


def test_plain_values_stay_untracked_and_state_makes_them_tracked():
    """value_type.hpp [V3]: tp_dealloc frees a plain Value (exact type, no state) without
    untracking it, so no way of making one may leave it tracked by the collector; every kind of
    Python state makes a Value tracked (and takes the full dealloc)."""
    import copy

    import arenagrad

    a = AgValue(1.5)
    b = a * 2 + 1
    b.backward()
    plain = [a, b, *b._prev, copy.copy(b), copy.deepcopy(b), pickle.loads(pickle.dumps(a)),
             arenagrad.grad(b, a), arenagrad.grad(b, a, create_graph=True),
             AgValue(2.0, (a,), 'f'), arenagrad.sum([a, b]), -a, a - b, a / b, a ** 2, 2 ** a,
             a ** b, a.relu(), a.tanh(), a.exp(), a.log(), a.sigmoid()]
    for _ in range(1000):  # objects from the free list
        plain.append(a * a)
        del plain[-1]
    plain.append(a * a)
    weakref.ref(plain[-1])
    assert [gc.is_tracked(v) for v in plain] == [False] * len(plain)

    def with_attribute(v):
        v.note = 1

    def with_label(v):
        v.label = "x"

    def with_dict(v):
        v.__dict__

    def with_backward(v):
        v._backward = lambda: None

    for give_state in (with_attribute, with_label, with_dict, with_backward):
        v = AgValue(3.0, (a,), 'g')  # a custom node: `_backward` may be set on it
        assert not gc.is_tracked(v)
        give_state(v)
        assert gc.is_tracked(v), give_state.__name__
        del v
    gc.collect()

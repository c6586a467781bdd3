"""The backward pass has three routes (cpp/backward.cpp): one id-ordered scan while no live node
breaks the creation order, a checked two-scan route otherwise, and the explicit topological
order when the graph itself breaks the order (reused slots). Each must give the reference's
gradients; these tests steer the arena into each route."""
import arenagrad
from arenagrad.engine import Value
from arenagrad.reference.engine import Value as RefValue


def out_of_order():
    return arenagrad.memory_stats()["out_of_order_nodes"]


def lecture_graph(V, h):
    """L = (a*b + c) * f with an extra non-leaf `h` mixed in; returns (L, leaves)."""
    a, b, c, f = V(2.0), V(-3.0), V(10.0), V(-2.0)
    L = (a * b + c + h) * f
    return L, (a, b, c, f)


def reference_grads(h_value):
    x = RefValue(2.0)
    h = x * x
    assert h.data == h_value
    L, leaves = lecture_graph(RefValue, h)
    L.backward()
    return [v.grad for v in leaves] + [x.grad]


def make_hole_below_nonleaf():
    """A non-leaf `h` (with leaf `x`) allocated above a block of freed slots."""
    holes = [Value(0.0) for _ in range(64)]
    x = Value(2.0)
    h = x * x
    del holes  # the lowest free slots are now below h's
    return x, h


def test_backward_ordered_graph_uses_creation_order():
    before = out_of_order()
    x = Value(2.0)
    h = x * x
    L, leaves = lecture_graph(Value, h)
    assert out_of_order() == before
    L.backward()
    assert [v.grad for v in leaves] + [x.grad] == reference_grads(h.data)


def test_backward_out_of_order_graph_matches_reference():
    before = out_of_order()
    x, h = make_hole_below_nonleaf()
    L, leaves = lecture_graph(Value, h)  # built in the holes: its users sit below h
    assert out_of_order() > before
    L.backward()
    assert [v.grad for v in leaves] + [x.grad] == reference_grads(h.data)
    del L
    assert out_of_order() == before


def test_backward_ordered_graph_beside_out_of_order_node():
    before = out_of_order()
    x, h = make_hole_below_nonleaf()
    spoiler = h + 1.0  # lands in a hole below h: out of order, kept alive
    assert out_of_order() == before + 1
    y = Value(2.0)
    g = y * y  # an ordered graph while `spoiler` lives: the checked two-scan route
    L, leaves = lecture_graph(Value, g)
    L.backward()
    assert [v.grad for v in leaves] + [y.grad] == reference_grads(g.data)
    del spoiler
    assert out_of_order() == before


def test_backward_leaf_operands_never_count_as_out_of_order():
    holes = [Value(0.0) for _ in range(64)]
    late_leaf = Value(3.0)
    del holes
    before = out_of_order()
    y = late_leaf * 2.0  # y lands below its leaf operand
    assert out_of_order() == before
    y.backward()
    assert late_leaf.grad == 2.0

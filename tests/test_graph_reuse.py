"""Graph reuse (README "What is stricter or more"): `root.recompute()` re-evaluates a graph from
its leaves' current data over a cached topological order, `root.zero_grad()` zeroes every grad
in it; a training loop written this way matches the loop that rebuilds its graph every step."""
import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

import arenagrad
from arenagrad.datasets import make_moons
from arenagrad.engine import Value
from arenagrad.nn import MLP
from conftest import assert_same, demo_loss


def expression(a, b, c):
    """Every op, shared nodes, constants on both sides."""
    d = a * b + c
    e = (d.tanh() + d.relu() * 2 - a / 3) ** 2
    return (e + (b ** 2 + 1.0).log() + c.exp().sigmoid() - 2 / (1 + a.relu())) * d


@given(first=st.tuples(*[st.floats(-2, 2)] * 3), second=st.tuples(*[st.floats(-2, 2)] * 3))
def test_recompute_equals_rebuild_for_new_leaf_data(first, second):
    leaves = [Value(x) for x in first]
    root = expression(*leaves)
    for leaf, x in zip(leaves, second):
        leaf.data = x
    root.recompute()
    rebuilt = expression(*[Value(x) for x in second])
    assert_same(root.data, rebuilt.data)


def test_recompute_then_backward_gives_rebuild_gradients():
    leaves = [Value(x) for x in (0.5, -1.5, 0.25)]
    root = expression(*leaves)
    root.backward()
    for leaf, x in zip(leaves, (-0.75, 1.25, 0.5)):
        leaf.data = x
    root.recompute()
    root.zero_grad()
    root.backward()
    fresh = [Value(x) for x in (-0.75, 1.25, 0.5)]
    expression(*fresh).backward()
    assert [v.grad for v in leaves] == [v.grad for v in fresh]


def test_zero_grad_zeroes_every_node_of_the_graph():
    a, b = Value(2.0), Value(-3.0)
    d = a * b
    root = d + a
    root.backward()
    root.zero_grad()
    assert (a.grad, b.grad, d.grad, root.grad) == (0.0, 0.0, 0.0, 0.0)


def test_recompute_allocates_nothing_after_the_first_call():
    leaves = [Value(x) for x in (0.5, -1.5, 0.25)]
    root = expression(*leaves)
    root.recompute()  # builds the cached order
    live, stats = arenagrad.live_nodes(), arenagrad.memory_stats()
    for step in range(50):
        leaves[0].data = step / 50
        root.recompute()
        root.zero_grad()
        root.backward()
    assert arenagrad.live_nodes() == live
    assert arenagrad.memory_stats()["bytes"] == stats["bytes"]


def graph_data(root):
    """data of every node under root, in a fixed walk order (handles kept alive)."""
    seen, order, stack = set(), [], [root]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            order.append(v)
            stack.extend(sorted(v._prev, key=lambda c: (c.data, c._op)))
    return order, [v.data for v in order]


@pytest.mark.parametrize("which, bad, error", [("x", -1.0, ValueError),
                                               ("y", 0.0, ZeroDivisionError)])
def test_recompute_error_leaves_every_value_unchanged(which, bad, error):
    x, y = Value(2.0), Value(3.0)
    root = x.log() * y + y ** -1  # x = -1 fails only in log, y = 0 only in y**-1
    nodes, before = graph_data(root)
    (x if which == "x" else y).data = bad
    with pytest.raises(error):
        root.recompute()
    after = [v.data for v in nodes]
    changed = [i for i, (u, w) in enumerate(zip(before, after)) if u != w]
    assert [nodes[i] for i in changed] == [x if which == "x" else y]  # only the leaf we set


def test_recompute_error_restores_intermediate_values():
    x = Value(2.0)
    h = x * 3.0          # recomputed before the failing log
    root = h.log()
    x.data = -1.0
    with pytest.raises(ValueError):
        root.recompute()
    assert (h.data, root.data) == (6.0, np.log(6.0))


def test_training_loop_with_graph_reuse_matches_rebuilding_loop():
    """30 steps of micrograd's demo on 30 moons points (seed 7): rebuilding every step vs one
    graph recomputed every step. Same losses bit for bit, same weights to 1e-12."""
    X, y = make_moons(30, 0.1, seed=7)
    random.seed(7)
    rebuilt = MLP(2, [8, 8, 1])
    random.seed(7)
    reused = MLP(2, [8, 8, 1])
    graph, _ = demo_loss(reused, X, y, Value)
    for k in range(30):
        lr = 1.0 - 0.9 * k / 30
        loss, _ = demo_loss(rebuilt, X, y, Value)
        rebuilt.zero_grad()
        loss.backward()
        for p in rebuilt.parameters():
            p.data -= lr * p.grad
        graph.recompute()
        graph.zero_grad()
        graph.backward()
        for p in reused.parameters():
            p.data -= lr * p.grad
        assert graph.data == loss.data, f"step {k}"
    for p, q in zip(reused.parameters(), rebuilt.parameters()):
        assert p.data == pytest.approx(q.data, rel=1e-12, abs=1e-15)

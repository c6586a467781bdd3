"""The compiled replay (README "Graph reuse"): after `recompute()` or `zero_grad()` has lowered a
root's graph to a tape, `recompute()`, `zero_grad()` and `backward()` replay it. The tape must give
exactly the numbers of the node-by-node walks and of a graph rebuilt from scratch: every node's
data and grad, bit for bit."""
import random

import pytest
from hypothesis import example, given, settings, strategies as st

import arenagrad
from arenagrad import _core
from arenagrad.datasets import make_moons
from arenagrad.engine import Value
from arenagrad.nn import MLP
from conftest import demo_loss, reachable

finite = st.floats(-2, 2, allow_nan=False)


def bits(nodes):
    return [(v.data.hex(), v.grad.hex()) for v in nodes]


def all_parameters_bits(model):
    return bits(model.parameters())


# ---- micrograd's demo: replayed graph == graph rebuilt every step, 100 steps ----

def replace_parameters(model):
    """What a user does between steps: a new weight Value and a new bias Value."""
    model.layers[1].neurons[3].w[5] = Value(0.25)
    model.layers[0].neurons[0].b = Value(-0.5)


def test_replayed_demo_equals_rebuilding_loop_bit_for_bit_for_100_steps():
    X, y = make_moons(100, 0.1, seed=1337)
    random.seed(1337)
    rebuilt = MLP(2, [16, 16, 1])
    random.seed(1337)
    replayed = MLP(2, [16, 16, 1])
    graph, _ = demo_loss(replayed, X, y, Value)
    parameters = replayed.parameters()
    for k in range(100):
        if k == 50:  # the recorded graph holds the old Values: the user records a new one
            replace_parameters(rebuilt)
            replace_parameters(replayed)
            graph, _ = demo_loss(replayed, X, y, Value)
            parameters = replayed.parameters()
        lr = 1.0 - 0.9 * k / 100
        loss, _ = demo_loss(rebuilt, X, y, Value)
        rebuilt.zero_grad()
        loss.backward()
        graph.recompute()
        graph.zero_grad()
        graph.backward()
        assert _core._last_backward()[0] == "tape"
        assert graph.data.hex() == loss.data.hex(), f"loss at step {k}"
        assert all_parameters_bits(replayed) == all_parameters_bits(rebuilt), f"grads at step {k}"
        for p in rebuilt.parameters():
            p.data -= lr * p.grad
        for p in parameters:
            p.data -= lr * p.grad


# ---- random graphs: the tape against the walks, every node ----

plans = st.lists(
    st.tuples(st.sampled_from(["neuron", "add", "mul", "tanh", "relu", "square", "sum", "custom",
                               "exp"]),
              st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 5)),
    min_size=1, max_size=10)


def build_graph(leaves, plan):
    """The plan's graph over fresh leaves: neuron chains `b + w0*x0 + ...` (what the tape fuses)
    among every other kind of node, with shared operands. Returns (root, every node made)."""
    pool = [Value(x) for x in leaves]
    made = list(pool)
    for op, i, j, n in plan:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if op == "neuron":
            v = sum((pool[(i + k) % len(pool)] * pool[(j + 2 * k) % len(pool)] for k in range(n)), b)
        elif op == "sum":
            v = arenagrad.sum([pool[(i + k) % len(pool)] for k in range(n)])
        elif op == "custom":  # built by hand, no _backward: its data is an input
            v = Value(a.data * 0.5, (a, b), "half")
        else:
            v = {"add": lambda: a + b, "mul": lambda: a * b, "tanh": a.tanh, "relu": a.relu,
                 "square": lambda: a ** 2, "exp": lambda: (a * 0.1).exp()}[op]()
        pool.append(v)
        made.append(v)
    root = pool[-1] * 1.0
    for v in pool[:-1]:  # every node made is in root's graph
        root = root + v
    made.append(root)
    return root, made


@settings(deadline=None)
@example(leaves=[1.0, 0.0], plan=[("mul", 0, 0, 1), ("add", 2, 2, 1)], new_data=[0.0] * 5)  # m + m
@given(st.lists(finite, min_size=2, max_size=5), plans, st.lists(finite, min_size=5, max_size=5))
def test_tape_equals_walks_on_every_node(leaves, plan, new_data):
    walked_root, walked = build_graph(leaves, plan)
    taped_root, taped = build_graph(leaves, plan)
    taped_root.zero_grad()  # lowers the tape
    for _ in range(2):  # the second backward accumulates into the first's grads
        walked_root.backward()
        assert _core._last_backward()[0] != "tape"
        taped_root.backward()
        assert _core._last_backward()[0] == "tape"
        assert bits(taped) == bits(walked)
    # new leaf data: recompute through the tape == a graph rebuilt from that data
    taped_leaves = taped[:len(leaves)]
    for leaf, x in zip(taped_leaves, new_data):
        leaf.data = x
    taped_root.recompute()
    taped_root.zero_grad()
    taped_root.backward()
    rebuilt_root, rebuilt = build_graph([x for x, _ in zip(new_data, leaves)], plan)
    rebuilt_root.backward()
    if not any(v._op == "half" for v in taped):  # a custom node's data is an input, not rebuilt
        assert bits(taped) == bits(rebuilt)


def chain_reading_itself(leaves):
    """Chains whose products read the chain's own running sums, or the neuron's bias twice:
    the tape must not fuse across such a link (its grad would be read stale)."""
    w, x, b = leaves
    acc = b
    for k in range(6):
        acc = acc + (acc * x if k % 2 else w * x)
    other = b + b * w + (b * x) * 0.5
    return acc.tanh() * other, [w, x, b, acc, other]


@pytest.mark.parametrize("data", [(0.5, -1.5, 0.25), (2.0, 0.75, -1.0)])
def test_chain_that_reads_its_own_sums_equals_walks(data):
    walked, walked_nodes = chain_reading_itself([Value(v) for v in data])
    taped, taped_nodes = chain_reading_itself([Value(v) for v in data])
    taped.zero_grad()
    for _ in range(2):
        walked.backward()
        taped.backward()
        assert _core._last_backward()[0] == "tape"
        assert bits(taped_nodes) == bits(walked_nodes)
        assert sorted(bits(reachable([taped]))) == sorted(bits(reachable([walked])))


def test_nodes_inside_a_fused_chain_show_the_replayed_numbers():
    """The chain's intermediate nodes, reached through _prev, hold what a rebuild gives."""
    w = [Value(0.5 * k - 1) for k in range(6)]
    x = [Value(0.25 * k) for k in range(6)]
    b = Value(0.1)
    root = sum((wi * xi for wi, xi in zip(w, x)), b).tanh()
    root.zero_grad()
    for v in w + x:
        v.data += 0.125
    root.recompute()
    root.backward()
    fresh_w = [Value(v.data) for v in w]
    fresh_x = [Value(v.data) for v in x]
    fresh = sum((wi * xi for wi, xi in zip(fresh_w, fresh_x)), Value(0.1)).tanh()
    fresh.backward()

    def inner(v):
        return sorted(bits(reachable([v])))

    assert inner(root) == inner(fresh)


# ---- custom closures, interrupts, errors ----

def test_tape_calls_a_custom_backward_once_in_its_place():
    calls = []
    a, c = Value(0.5), Value(2.0)

    def sin_node(x):
        out = Value(x.data * 3, (x,), "triple")

        def _backward():
            calls.append(out.grad)
            x.grad += 3 * out.grad
        out._backward = _backward
        return out

    root = (sin_node(a * c) + a) * c
    root.zero_grad()
    root.backward()
    assert _core._last_backward()[0] == "tape"
    assert calls == [2.0]
    assert (a.grad, c.grad) == (2.0 * (1 + 3 * 2.0), (3 * 1.0 + 0.5) + 2.0 * 3 * 0.5)


def neuron_graph():
    w = [Value(0.1 * k) for k in range(8)]
    x = [Value(1.0 - 0.2 * k) for k in range(8)]
    root = sum((wi * xi for wi, xi in zip(w, x)), Value(0.5)).tanh() * 2
    return root, w + x


@pytest.mark.parametrize("at", [1, 2, 3])  # polls: once per instruction (the chain, tanh, *2)
def test_interrupted_replay_leaves_a_usable_graph(poll_every_node, at):
    root, leaves = neuron_graph()
    root.zero_grad()
    before = root.data
    for v in leaves:
        v.data += 1.0
    _core._run_in_poll(at, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        root.recompute()
    assert root.data == before  # every value put back
    _core._run_in_poll(at, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        root.backward()
    _core._run_in_poll(0)
    root.recompute()
    root.zero_grad()
    root.backward()
    fresh, fresh_leaves = neuron_graph()
    for v, f in zip(leaves, fresh_leaves):
        f.data = v.data
    fresh.recompute()
    fresh.backward()
    assert bits(leaves) == bits(fresh_leaves)


def test_failing_replay_restores_every_value():
    x = Value(2.0)
    h = sum((x * Value(float(k)) for k in range(4)), Value(1.0))
    root = h.log()
    root.zero_grad()
    x.data = -1.0
    with pytest.raises(ValueError):
        root.recompute()
    assert (h.data, root.data) == (13.0, Value(13.0).log().data)


def test_two_threads_replaying_their_own_graphs_get_the_sequential_numbers():
    import threading
    X, y = make_moons(30, 0.1, seed=3)

    def train(seed, steps, out):
        random.seed(seed)
        model = MLP(2, [8, 8, 1])
        graph, _ = demo_loss(model, X, y, Value)
        for k in range(steps):
            graph.recompute()
            graph.zero_grad()
            graph.backward()
            for p in model.parameters():
                p.data -= 0.1 * p.grad
        out.append((graph.data.hex(), all_parameters_bits(model)))

    sequential = []
    for seed in (1, 2):
        train(seed, 40, sequential)
    threaded = [[], []]
    threads = [threading.Thread(target=train, args=(seed, 40, threaded[i]))
               for i, seed in enumerate((1, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [threaded[0][0], threaded[1][0]] == sequential


def test_a_tape_goes_with_its_root():
    import gc
    arenagrad.trim()
    root, _ = neuron_graph()
    before = arenagrad.memory_stats()["bytes"]
    root.zero_grad()  # lowers and caches the tape
    assert arenagrad.memory_stats()["bytes"] > before
    keep = root._prev  # the graph below lives on without its root
    del root
    gc.collect()
    arenagrad.trim()
    assert arenagrad.memory_stats()["bytes"] <= before and keep


@pytest.mark.parametrize("block", [1, 50])
def test_zero_grad_clears_its_graph_and_nothing_between_its_ids(block):
    """tape.hpp Tape::runs: zero_grad() clears runs of consecutive ids (block=50: runs of 50
    ids, 140,000 nodes, so runs cross the arena's 65,536-node chunks) or, when the ids are
    scattered (block=1: every other id), each id in turn. Either way exactly the graph's nodes:
    the other graph's nodes, in the gaps between its runs, keep their grads."""
    x, y = Value(1.0), Value(2.0)
    a, b = x, y
    for _ in range(140_000 // (2 * block)):
        for _ in range(block):
            a = a + x
        for _ in range(block):
            b = b + y
    a.backward()
    b.backward()
    a.zero_grad()
    nodes_a = [n for n in reachable([a]) if n is not x]
    nodes_b = [n for n in reachable([b]) if n is not y]
    assert {n.grad for n in nodes_a} == {0.0} and x.grad == 0.0
    assert {n.grad for n in nodes_b} == {1.0} and y.grad == 70_001.0

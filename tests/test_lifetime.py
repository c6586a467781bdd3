"""arenagrad's node arena: nodes are reclaimed when nothing refers to them, training loops run
at a flat node count, and a 1,000,000-deep chain builds, backpropagates and frees without
recursion."""
import gc
import subprocess
import sys

import pytest

N_DEEP = 1_000_000


@pytest.fixture
def live(arenagrad_pkg):
    """live() -> the number of live arena nodes after a full collection."""
    def count():
        gc.collect()
        return arenagrad_pkg.live_nodes()
    return count


def test_live_nodes_counts_new_leaves(ag, live):
    base = live()
    a, b = ag.Value(1.0), ag.Value(2.0)
    assert live() == base + 2
    del a, b
    assert live() == base


def test_freed_node_leaves_no_label_or_op_to_its_slot(ag, live):
    """cpp/arena.hpp [A7]: what is kept beside a node (its label, its `_op` text) goes with it;
    the next node in the freed slot (the lowest free one, [A4]) starts with none."""
    for _ in range(3):  # a freed slot comes back at once: the same slot every round
        v = ag.Value(1.0, (), "sin", label="x")
        del v
        w = ag.Value(2.0)
        assert (w.label, w._op) == ("", "")
        w.label = "y"  # a new annotation of the slot: no stale `_op` in it
        assert (w.label, w._op) == ("y", "")
        del w


def test_live_nodes_return_to_baseline_after_graph_dropped(ag, live):
    base = live()
    a, b = ag.Value(2.0), ag.Value(-3.0)
    L = ((a * b + 10.0) * -2.0).tanh() / (a - b)
    L.backward()
    assert live() > base + 2
    del a, b, L
    assert live() == base


def test_intermediate_kept_alive_by_result(ag, live):
    base = live()
    a = ag.Value(2.0)
    y = (a * 3.0).exp()
    del a  # y's graph still needs a and a * 3
    gc.collect()
    y.backward()
    (m,) = y._prev
    (leaf,) = [v for v in m._prev if v.data == 2.0]
    assert leaf.grad == 3.0 * y.data
    del m, leaf
    assert live() == base + 4  # a, 3.0, a*3, exp
    del y
    assert live() == base


def test_prev_handles_keep_operands_alive(ag, live):
    base = live()
    a, b = ag.Value(2.0), ag.Value(3.0)
    c = a * b
    ids = {id(a), id(b)}
    del a, b
    gc.collect()
    prev = c._prev
    assert {id(v) for v in prev} == ids  # the very same Python objects
    assert sorted(v.data for v in prev) == [2.0, 3.0]
    c.backward()
    assert sorted(v.grad for v in prev) == [2.0, 3.0]
    del c
    assert live() == base + 2  # held only through `prev`
    del prev
    assert live() == base


def test_training_loop_runs_at_flat_node_count(ag, live):
    w, b = ag.Value(0.3), ag.Value(-0.1)
    xs, ys = [0.5, -1.0, 2.0], [1.0, -2.0, 4.0]
    counts = []
    for step in range(10_000):
        loss = sum(((w * x + b) - y) ** 2 for x, y in zip(xs, ys))
        w.grad = b.grad = 0.0
        loss.backward()
        w.data += -0.01 * w.grad
        b.data += -0.01 * b.grad
        if step % 1000 == 999:
            counts.append(live())
    assert len(set(counts)) == 1, counts
    assert abs(w.data - 2.0) < 1e-3  # it did train: y = 2x


def test_deep_add_chain_builds_backprops_and_frees(ag, live):
    base = live()
    x0, c = ag.Value(1.0), ag.Value(1.0)
    x = x0
    for _ in range(N_DEEP):
        x = x + c
    assert x.data == 1.0 + N_DEEP
    x.backward()
    assert (x0.grad, c.grad) == (1.0, float(N_DEEP))
    assert live() == base + 2 + N_DEEP
    del x  # frees a 1e6-deep chain: must not recurse
    assert live() == base + 2


def test_deep_mul_chain_with_constants_frees(ag, live):
    base = live()
    x0 = ag.Value(1.0)
    x = x0
    for _ in range(N_DEEP // 2):
        x = x * 1.0 + 0.0
    x.backward()
    assert x.data == 1.0 and x0.grad == 1.0
    del x
    assert live() == base + 1


def test_deep_chain_backward_twice_accumulates(ag, live):
    n = N_DEEP // 4
    x0 = ag.Value(0.5)
    x = x0
    for _ in range(n):
        x = x + 1.0
    x.backward()
    x.backward()
    # micrograd's semantics: intermediates keep their grad (1 after the first pass), so on the
    # second pass the node j steps below the root gets 1 + j; x0 (j = n) ends at 1 + n
    assert x0.grad == 1.0 + n




PYTHON_DURING_FREE = """
import gc
import arenagrad
from arenagrad.engine import Value

made = []

class Spawner:
    def __del__(self):
        made.extend(Value(float(i)) for i in range(100_000))

gc.collect()
base = arenagrad.live_nodes()
x = Value(1.0)
chain = x * 3
for _ in range(20_000):
    chain = chain + x
s = chain * 1.0
s.spawner = Spawner()  # state on the node: kept beside it once its handle goes ([V2])
root = s + x
del s, chain
assert not made
del root  # frees root, then s (running __del__), then the 20,000-node chain below it
assert [v.data for v in made[::9999]] == [float(i) for i in range(0, 100_000, 9999)]
gc.collect()
assert arenagrad.live_nodes() == base + 1 + len(made)
capacity = arenagrad.memory_stats()["capacity"]
for _ in range(3):  # every freed slot comes back: rebuilding the graph grows nothing
    root = x * 3
    for _ in range(20_000):
        root = root + x
    root.backward()
    assert (root.data, x.grad) == (20_003.0, 20_003.0)
    x.grad = 0.0
    del root
    assert arenagrad.memory_stats()["capacity"] == capacity
del made[:]
gc.collect()
assert arenagrad.live_nodes() == base + 1
print("ok")
"""


def test_python_run_while_a_graph_is_freed_allocates_and_the_arena_stays_whole():
    """cpp/arena.hpp [A7]: freeing a node whose Python state outlived its handle runs Python in
    the middle of free_graph (here a __del__ that makes 100,000 Values: the arena grows, its
    tables move). free_graph keeps its bookkeeping in locals; it must hand them back before and
    read them again after, or it writes into moved tables and loses the slots it frees next.
    In a subprocess: that failure is a crash."""
    result = subprocess.run([sys.executable, "-c", PYTHON_DURING_FREE],
                            capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_mlp_forward_fills_a_fragmented_arena_lowest_slots_first(ag, live):
    """The MLP forward takes its slots a bitmap word at a time (cpp/arena.hpp Arena::Burst) and
    freeing writes a word's freed slots at once: the ids must still be allocate()'s, ascending
    in creation order ([A4]: backward then scans, no node out of order), every slot handed out
    counted, and every freed slot reusable, so that the same graph rebuilt lands on the same
    slots (the scan reads the same span) and the arena never grows."""
    import random

    from arenagrad import _core, memory_stats
    from arenagrad.nn import MLP

    random.seed(7)
    model = MLP(5, [9, 7, 1])
    x = [0.25, -1.5, 2.0, 0.75, -0.5]
    holes = [ag.Value(float(i)) for i in range(3000)]
    del holes[::3], holes[1500:1700]  # holes one by one, and whole words of them
    base = live()
    nodes = 9 * (2 * 5 + 1) + 7 * (2 * 9 + 1) + 2 * 7  # Mul and Add per input, ReLU per hidden neuron
    spans, capacity = set(), memory_stats()["capacity"]
    for _ in range(3):
        inputs = [ag.Value(v) for v in x]
        out = model(inputs)
        assert live() == base + len(x) + nodes
        expected = model._forward_python(inputs)  # micrograd's own forward, node by node
        assert out.data == expected.data
        del expected
        out.backward()
        route, slots = _core._last_backward()
        assert route == "scan"
        spans.add(slots)
        del out, inputs
        assert live() == base
    assert len(spans) == 1 and memory_stats()["capacity"] == capacity

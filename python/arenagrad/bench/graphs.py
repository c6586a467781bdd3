"""Build, backward and free on five graph shapes, node for node those of cpp/floor.cpp.

Each shape has a `setup` (untimed: leaves, a model, random choices drawn in advance) and a
`build` that makes the graph from Python exactly as a micrograd user would, returning
`(root, keepalive)`. Figures are ns per node of the finished graph (leaves included).
"""
import random
import sys
from array import array

from .timing import Timer, collect, stats, time_call

MLP_NODES_PER_SAMPLE = 643  # MLP(2, [16, 16, 1]) on 2 float inputs: 642 nodes; +1 for the sum


# --- chain: y = y * c + d, c and d constant leaves, 4 nodes a step; depth size/2 -------------

def chain_setup(engine, size):
    return (engine.Value(0.5), size // 4)


def chain_build(engine, state):
    y, steps = state
    for _ in range(steps):
        y = y * 0.9999999 + 0.001
    return y, None


# --- wide sum, Python's left fold: sum(values) = ((0 + v0) + v1) + ...; depth size/2 --------

def fold_setup(engine, size):
    return [engine.Value(float(i % 7) - 3.0) for i in range(size // 2)]


def fold_build(engine, values):
    return sum(values), None


# --- wide sum, arenagrad.sum(values): one n-ary node -----------------------------------------

def nary_setup(engine, size):
    return [engine.Value(float(i % 7) - 3.0) for i in range(size - 1)]


def nary_build(engine, values):
    return engine.nary_sum(values), None


# --- random DAG with shared nodes --------------------------------------------------------------
# 16 leaves, then a + b or a * b of two uniformly random earlier nodes, 1 in 10 followed by
# tanh; finally a balanced + tree over the nodes nobody uses, so every node is reachable from
# the root. Depth stays logarithmic, so the reference's recursive sort can walk it.

def dag_setup(engine, size, seed=1234):
    rng = random.Random(seed)
    leaves = [engine.Value(rng.uniform(-1, 1)) for _ in range(16)]
    first, second, flags = array("l"), array("l"), array("b")
    used = bytearray(16)
    count, sinks = 16, 16
    while count + sinks - 1 < size:
        i, j = rng.randrange(count), rng.randrange(count)
        tanh = rng.random() < 0.1
        flags.append((rng.random() < 0.5) | (tanh << 1))  # bit 0: multiply, bit 1: then tanh
        first.append(i)
        second.append(j)
        for k in (i, j):
            if not used[k]:
                used[k] = 1
                sinks -= 1
        used.append(0)
        count, sinks = count + 1, sinks + 1
        if tanh:
            used[count - 1] = 1
            used.append(0)
            count += 1
    unused = array("l", (k for k in range(count) if not used[k]))
    return leaves, first, second, flags, unused


def dag_build(engine, state):
    leaves, first, second, flags, unused = state
    nodes = list(leaves)
    append = nodes.append
    for i, j, f in zip(first, second, flags):
        v = nodes[i] * nodes[j] if f & 1 else nodes[i] + nodes[j]
        append(v)
        if f & 2:
            append(v.tanh())
    level = [nodes[k] for k in unused]
    while len(level) > 1:
        paired = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0], nodes


# --- MLP-like: micrograd's MLP(2, [16, 16, 1]) over many samples, summed ------------------------

def mlp_setup(engine, size, seed=1234):
    random.seed(seed)
    model = engine.MLP(2, [16, 16, 1])
    rng = random.Random(seed)
    samples = max(1, size // MLP_NODES_PER_SAMPLE)
    # Inputs as Values, as micrograd's demo makes them (`list(map(Value, xrow))`): both engines
    # then build the same 642 nodes per sample.
    X = [[engine.Value(rng.uniform(-1, 1)), engine.Value(rng.uniform(-1, 1))]
         for _ in range(samples)]
    return model, X


def mlp_build(engine, state):
    model, X = state
    return sum(model(x) for x in X), None


class Shape:
    """A graph shape. `smallest`: the smallest size whose graph is what the shape describes
    (one chain step, one summand, the 16-leaf DAG's final tree, one MLP sample); below it a
    graph is empty, a bare leaf, or larger than asked for."""

    def __init__(self, name, setup, build, depth, note, smallest):
        self.name, self.setup, self.build, self.depth, self.note = name, setup, build, depth, note
        self.smallest = smallest


SHAPES = {
    "chain": Shape("chain", chain_setup, chain_build, lambda n: n // 2, "y = y*c + d", 4),
    "wide_sum_fold": Shape("wide_sum_fold", fold_setup, fold_build, lambda n: n // 2,
                           "Python sum(values)", 2),
    "wide_sum_nary": Shape("wide_sum_nary", nary_setup, nary_build, lambda n: 1,
                           "arenagrad.sum(values)", 2),
    "random_dag": Shape("random_dag", dag_setup, dag_build, lambda n: 0, "+,*,tanh, seed 1234",
                        31),
    "mlp": Shape("mlp", mlp_setup, mlp_build, lambda n: 0, "MLP(2,[16,16,1]) x samples, summed",
                 MLP_NODES_PER_SAMPLE),
}


def _number(once_ns, target_ns, cap):
    """Calls per timed sample: enough for ~target_ns, at least 1, at most cap."""
    return max(1, min(cap, int(target_ns // max(once_ns, 1))))


def reference_limits(shape, size, cap):
    """Why the reference cannot do (part of) this graph, or None: ('all' | 'backward', note)."""
    if shape.build is nary_build:
        return "all", "the reference has no n-ary sum (compare wide_sum_fold)"
    if size > cap:
        return "all", f"reference capped at {cap:.0e} nodes (too slow)"
    if shape.depth(size) > sys.getrecursionlimit() - 100:
        return "backward", (f"reference backward skipped: depth {shape.depth(size)} exceeds its "
                            f"recursive topo sort (limit {sys.getrecursionlimit()})")
    return None


def run(engine, shape, size, repeats, with_backward=True):
    """Build, backward and free figures (ns/node stats) of `shape` at `size` for `engine`."""
    collect()
    live_before = engine.live_nodes()
    state = shape.setup(engine, size)

    # Warm-up, which also sizes the samples and counts the nodes.
    graphs = []
    build_once = time_call(lambda: graphs.append(shape.build(engine, state)))
    root = graphs[0][0]
    nodes = engine.count_nodes(root, live_before)
    backward_once = time_call(root.backward) if with_backward else 0
    root = None
    engine.free(graphs)
    n_build = _number(build_once, 2e6, max(1, int(2e6 // nodes)))
    n_backward = _number(backward_once, 2e6, 1000)

    build, backward, free = [], [], []
    for _ in range(repeats):
        graphs = []
        with Timer() as t:
            for _ in range(n_build):
                graphs.append(shape.build(engine, state))
        build.append(t.ns / n_build / nodes)
        if with_backward:
            root = graphs[0][0]
            with Timer() as t:
                for _ in range(n_backward):
                    root.backward()
            backward.append(t.ns / n_backward / nodes)
            root = None
        with Timer() as t:
            engine.free(graphs)
        free.append(t.ns / n_build / nodes)
    state = None
    collect()
    result = {"nodes": nodes, "build_ns_per_node": stats(build), "free_ns_per_node": stats(free),
              "builds_per_sample": n_build}
    if with_backward:
        result["backward_ns_per_node"] = stats(backward)
        result["backwards_per_sample"] = n_backward
    return result

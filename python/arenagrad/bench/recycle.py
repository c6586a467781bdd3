"""Layout after recycling: backward ns/node of a 1e6-node MLP-like graph in a fresh arena, and
of the same graph built after many rebuild-and-drop cycles of a 1e5-node training graph.

Runs in a subprocess of its own (`python -m arenagrad.bench.recycle`), so that "fresh" means a
new process and a new arena, untouched by the other workloads.
"""
import argparse
import json
import random
import sys

import arenagrad
from arenagrad.engine import Value
from arenagrad.nn import MLP

from ..demo import max_margin_loss
from .engines import ARENAGRAD
from .graphs import MLP_NODES_PER_SAMPLE, SHAPES
from .timing import Timer, collect, stats


def _backward_figures(size, repeats):
    shape = SHAPES["mlp"]
    collect()
    live_before = arenagrad.live_nodes()
    state = shape.setup(ARENAGRAD, size)
    with Timer() as t:
        root, _ = shape.build(ARENAGRAD, state)
    nodes = arenagrad.live_nodes() - live_before
    build = t.ns / nodes
    root.backward()  # warm-up
    samples = []
    for _ in range(repeats):
        with Timer() as t:
            root.backward()
        samples.append(t.ns / nodes)
    root = state = None
    collect()
    return {"nodes": nodes, "build_ns_per_node": build, "backward_ns_per_node": stats(samples)}


def _training_cycles(cycles, train_size, seed=1234):
    """micrograd demo-style steps (inputs, forward, max-margin loss, backward, SGD), each on a
    random batch of up to `train_size` nodes, each graph dropped before the next is built."""
    rng = random.Random(seed)
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    most = max(2, train_size // MLP_NODES_PER_SAMPLE)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(most)]
    y = [1 if a * b > 0 else -1 for a, b in X]
    for _ in range(cycles):
        batch = rng.randrange(most // 2, most + 1)  # varying sizes: freed regions differ
        inputs = [list(map(Value, xrow)) for xrow in X[:batch]]
        scores = list(map(model, inputs))
        loss = max_margin_loss(model, scores, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        inputs = scores = loss = None
    return model  # the parameters stay live, as in a real loop


def run(cycles, size, train_size, repeats):
    fresh = _backward_figures(size, repeats)
    with Timer() as t:
        model = _training_cycles(cycles, train_size)
    recycled = _backward_figures(size, repeats)
    model = None
    return {"cycles": cycles, "graph_nodes": fresh["nodes"], "train_graph_nodes": train_size,
            "cycles_seconds": t.ns / 1e9, "fresh": fresh, "recycled": recycled,
            "capacity_after": arenagrad.memory_stats()["capacity"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--size", type=float, default=1e6)
    parser.add_argument("--train-size", type=float, default=1e5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.cycles, int(args.size), int(args.train_size), args.repeats)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Bytes per node of a live graph, for arenagrad's arena and the reference's Python objects."""
import tracemalloc

import arenagrad

from .graphs import SHAPES
from .timing import collect


def arena_bytes_per_node(engine, shape_name, size):
    """memory_stats()['bytes'] / live nodes with one `shape` graph of `size` built and
    backpropagated (so the backward's scratch is counted)."""
    shape = SHAPES[shape_name]
    collect()
    arenagrad.trim()
    state = shape.setup(engine, size)
    root, keep = shape.build(engine, state)
    root.backward()
    figures = arenagrad.memory_stats()
    live = figures["live_nodes"]
    result = {"nodes": live, "bytes": figures["bytes"], "bytes_per_node": figures["bytes"] / live,
              "capacity": figures["capacity"]}
    root = keep = state = None
    collect()
    arenagrad.trim()
    return result


def python_bytes_per_node(engine, shape_name, size, with_backward):
    """tracemalloc's bytes per node of the reference's graph (Value objects, closures, sets)."""
    shape = SHAPES[shape_name]
    collect()
    state = shape.setup(engine, size)
    tracemalloc.start()
    try:
        root, keep = shape.build(engine, state)
        if with_backward:
            root.backward()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nodes = engine.count_nodes(root, 0)
    root = keep = state = None
    collect()
    return {"nodes": nodes, "bytes": current, "bytes_per_node": current / nodes}

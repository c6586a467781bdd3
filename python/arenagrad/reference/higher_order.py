"""grad(): derivatives as Values, so they can be differentiated again (the reference twin of
arenagrad.grad, cpp/grad_*.cpp). Walks the graph like backward(), but keeps each node's gradient
in a dict instead of its .grad, and builds it with Value operations (each op's _local_grads)."""
from .engine import Value


def grad(output, inputs, create_graph=False):
    """d output / d input for each input (a Value, or an iterable of Values: then a list).
    Reads and writes no .grad. With create_graph the results are Values with graphs of their
    own; without, leaves holding the numbers."""
    if not isinstance(output, Value):
        raise TypeError(f"grad() output must be a Value, not {type(output).__name__!r}")
    single = isinstance(inputs, Value)
    inputs = [inputs] if single else list(inputs)
    for v in inputs:
        if not isinstance(v, Value):
            raise TypeError(f"grad() inputs must be Values, not {type(v).__name__!r}")

    # topological order all of the children in the graph
    topo = []
    visited = set()
    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                build_topo(child)
            topo.append(v)
    build_topo(output)

    # go one variable at a time and apply the chain rule, into a dict of gradient Values
    grads = {output: Value(1.0)}
    for v in reversed(topo):
        if not v._prev:
            continue
        if v._local_grads is None:
            raise TypeError(f"grad() cannot differentiate through the Value with _op {v._op!r}: "
                            "it was built by hand as Value(data, _children, _op)")
        for child, g in v._local_grads(grads[v]):
            grads[child] = grads[child] + g if child in grads else g

    results = [grads.get(v, Value(0.0)) for v in inputs]
    if not create_graph:
        results = [Value(g.data) for g in results]
    return results[0] if single else results

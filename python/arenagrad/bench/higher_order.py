"""arenagrad.grad() beside backward(), in ns per node of the original graph (leaves included).

On graphs.py's shapes and a spread DAG of its own, built once (untimed), with the inputs a user
would ask for (the chain's start, the DAGs' 16 leaves, the MLP's parameters):

* backward + copy: ``root.backward()`` then reading every input's ``.grad`` - the bar that
  ``grad(root, inputs)`` must meet (it writes no ``.grad``, so it needs no zero_grad either);
* grad: ``arenagrad.grad(root, inputs)``, the numbers as leaf Values;
* grad, create_graph: ``arenagrad.grad(root, inputs, create_graph=True)``, building the gradient
  graph and, when the results are dropped, freeing it (both timed).

And the same three per call on small graphs (SMALL_GRAPHS), where the fixed cost of a call is
what is measured.
"""
import random

import arenagrad

from .engines import ARENAGRAD
from .graphs import SHAPES, Shape
from .timing import collect, stats, time_call

SPREAD_ROOT_TERMS = 200


def spread_setup(engine, size, seed=1234):
    """16 leaves and `size` nodes, each a + or * of two nodes drawn from all before it."""
    rng = random.Random(seed)
    leaves = [engine.Value(rng.uniform(-1, 1)) for _ in range(16)]
    picks = [(rng.randrange(16 + k), rng.randrange(16 + k)) for k in range(size)]
    return leaves, picks


def spread_build(engine, state):
    """The root sums the last SPREAD_ROOT_TERMS nodes: its graph is a sparse subset of the ids
    below it (neither sweep can scan it; both take the explicit order)."""
    leaves, picks = state
    nodes = list(leaves)
    append = nodes.append
    for k, (i, j) in enumerate(picks):
        append(nodes[i] * nodes[j] if k & 1 else nodes[i] + nodes[j])
    root = nodes[-1]
    for v in nodes[-SPREAD_ROOT_TERMS:-1]:
        root = root + v
    return root, nodes


def spread_graph_nodes(state):
    """Nodes in the spread DAG's graph (from the picks: the engine's own count would take every
    node built), its root's sum included."""
    leaves, picks = state
    total = len(leaves) + len(picks)
    stack = list(range(max(0, total - SPREAD_ROOT_TERMS), total))
    seen = set(stack)
    while stack:
        k = stack.pop()
        if k >= len(leaves):
            for operand in picks[k - len(leaves)]:
                if operand not in seen:
                    seen.add(operand)
                    stack.append(operand)
    return len(seen) + min(total, SPREAD_ROOT_TERMS) - 1


HIGHER_ORDER_SHAPES = {
    **{name: SHAPES[name] for name in ("chain", "random_dag", "mlp")},
    "spread_dag": Shape("spread_dag", spread_setup, spread_build, lambda n: 0,
                        "+,* of any earlier nodes, root over the last 200", 16),
}
SHAPE_NAMES = tuple(HIGHER_ORDER_SHAPES)


def inputs_of(name, state):
    if name == "chain":
        return [state[0]]
    if name == "mlp":
        return state[0].parameters()
    return list(state[0])  # the DAGs: their leaves


def timed(fn, repeats, nodes, cap=1000):
    """stats() of ns per node per call: one warm-up, calls per sample sized to ~2 ms (at most
    `cap`)."""
    once = time_call(fn)
    number = max(1, min(cap, int(2e6 // max(once, 1))))
    return stats([time_call(fn, number) / number / nodes for _ in range(repeats)])


def run(sizes, repeats):
    """{shape: {size: figures}} for arenagrad (the reference's grad is no fast path to compare)."""
    results = {}
    for name in SHAPE_NAMES:
        for size in sizes:
            collect()
            shape = HIGHER_ORDER_SHAPES[name]
            before = arenagrad.live_nodes()
            state = shape.setup(ARENAGRAD, size)
            root, keep = shape.build(ARENAGRAD, state)
            nodes = (spread_graph_nodes(state) if name == "spread_dag"
                     else arenagrad.live_nodes() - before)
            inputs = inputs_of(name, state)

            def backward_and_copy():
                root.backward()
                return [v.grad for v in inputs]

            results.setdefault(name, {})[str(size)] = {
                "nodes": nodes, "inputs": len(inputs),
                "backward_copy_ns_per_node": timed(backward_and_copy, repeats, nodes),
                "grad_ns_per_node": timed(lambda: arenagrad.grad(root, inputs), repeats, nodes),
                "grad_create_graph_ns_per_node": timed(
                    lambda: arenagrad.grad(root, inputs, create_graph=True), repeats, nodes),
            }
            root = keep = state = inputs = None
    collect()
    return results


# Small graphs, where a call's fixed cost is all there is: README's Newton step, and a
# two-input expression. (name, inputs, f(*inputs))
SMALL_GRAPHS = (
    ("newton", (2.0,), lambda x: x**4 - 3 * x**2 + x),
    ("two_inputs", (1.5, -0.5), lambda x, y: (x * y + x.tanh()) ** 2),
)


def graph_size(root):
    """Values in root's graph, itself and its constants included (by their `_prev`)."""
    seen, stack = {id(root): root}, [root]
    while stack:
        for v in stack.pop()._prev:
            if id(v) not in seen:
                seen[id(v)] = v  # kept: the ids stay those of live objects
                stack.append(v)
    return len(seen)


def run_per_call(repeats):
    """{name: figures} in ns per call, on SMALL_GRAPHS (a single Value input for one input, as
    in README's Newton step; a list for more)."""
    results = {}
    for name, start, f in SMALL_GRAPHS:
        collect()
        xs = [ARENAGRAD.Value(x) for x in start]
        root = f(*xs)
        nodes = graph_size(root)
        inputs = xs[0] if len(xs) == 1 else xs
        first = xs[0]

        def copy_one():
            root.backward()
            return first.grad

        def copy_all():
            root.backward()
            return [v.grad for v in xs]
        backward_and_copy = copy_one if len(xs) == 1 else copy_all

        results[name] = {
            "nodes": nodes, "inputs": len(xs),
            "backward_copy_ns": timed(backward_and_copy, repeats, 1, cap=20000),
            "grad_ns": timed(lambda: arenagrad.grad(root, inputs), repeats, 1, cap=20000),
            "grad_create_graph_ns": timed(
                lambda: arenagrad.grad(root, inputs, create_graph=True), repeats, 1, cap=20000),
        }
    collect()
    return results


def report(results):
    """The report's lines for these figures (empty when they were not run)."""
    if "higher_order" not in results:
        return []
    from .report import ratio, spread  # the report's own formatting (report.py imports us)

    lines = ["6. arenagrad.grad() beside backward() (ns per node of the original graph)",
             f"   {'shape':<11}{'size':>6}{'nodes':>12}{'inputs':>7}  {'backward + copy':<22}"
             f"{'grad':<22}{'grad/bw':>8}  {'grad, create_graph':<22}"]
    for shape, sizes in results["higher_order"].items():
        for size, r in sizes.items():
            bw, g = r["backward_copy_ns_per_node"], r["grad_ns_per_node"]
            lines.append(f"   {shape:<11}{float(size):>6.0e}{r['nodes']:>12,}{r['inputs']:>7}  "
                         f"{spread(bw):<22}{spread(g):<22}{ratio(g['median'], bw['median']):>8}  "
                         f"{spread(r['grad_create_graph_ns_per_node']):<22}")
    per_call = results.get("higher_order_per_call", {})
    if per_call:
        lines += ["", "   small graphs, ns per call (a call's fixed cost)",
                  f"   {'graph':<11}{'nodes':>6}{'inputs':>7}  {'backward + copy':<22}"
                  f"{'grad':<22}{'grad/bw':>8}  {'grad, create_graph':<22}"]
        for name, r in per_call.items():
            bw, g = r["backward_copy_ns"], r["grad_ns"]
            lines.append(f"   {name:<11}{r['nodes']:>6}{r['inputs']:>7}  {spread(bw):<22}"
                         f"{spread(g):<22}{ratio(g['median'], bw['median']):>8}  "
                         f"{spread(r['grad_create_graph_ns']):<22}")
    lines.append("")
    return lines

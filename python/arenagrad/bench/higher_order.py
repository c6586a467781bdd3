"""arenagrad.grad() beside backward(), in ns per node of the original graph (leaves included).

On graphs.py's shapes, built once (untimed), with the inputs a user would ask for (the chain's
start, the random DAG's 16 leaves, the MLP's parameters):

* backward + copy: ``root.backward()`` then reading every input's ``.grad`` - the bar that
  ``grad(root, inputs)`` must meet (it writes no ``.grad``, so it needs no zero_grad either);
* grad: ``arenagrad.grad(root, inputs)``, the numbers as leaf Values;
* grad, create_graph: ``arenagrad.grad(root, inputs, create_graph=True)``, building the gradient
  graph and, when the results are dropped, freeing it (both timed).
"""
import arenagrad

from .engines import ARENAGRAD
from .graphs import SHAPES
from .timing import collect, stats, time_call

SHAPE_NAMES = ("chain", "random_dag", "mlp")


def inputs_of(name, state):
    if name == "chain":
        return [state[0]]
    if name == "mlp":
        return state[0].parameters()
    return list(state[0])  # random_dag: its leaves


def timed(fn, repeats, nodes):
    """stats() of ns per node per call: one warm-up, calls per sample sized to ~2 ms."""
    once = time_call(fn)
    number = max(1, min(1000, int(2e6 // max(once, 1))))
    return stats([time_call(fn, number) / number / nodes for _ in range(repeats)])


def run(sizes, repeats):
    """{shape: {size: figures}} for arenagrad (the reference's grad is no fast path to compare)."""
    results = {}
    for name in SHAPE_NAMES:
        for size in sizes:
            collect()
            shape = SHAPES[name]
            before = arenagrad.live_nodes()
            state = shape.setup(ARENAGRAD, size)
            root, keep = shape.build(ARENAGRAD, state)
            nodes = arenagrad.live_nodes() - before
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
    lines.append("")
    return lines

"""Graph drawing, as in micrograd's trace_graph notebook.

``to_dot(root)`` returns Graphviz DOT text and needs nothing; ``draw_dot(root)`` returns a
``graphviz.Digraph`` (extra ``viz``: ``pip install "arenagrad[viz]"``), which renders inline in
Jupyter. Each Value is a record node ``label | data | grad``; each op is a small node of its
own, with edges child -> op -> result.
"""

__all__ = ["to_dot", "draw_dot"]

DEFAULT_MAX_NODES = 1000
RANKDIRS = ("LR", "TB", "RL", "BT")


def trace(root, max_nodes=DEFAULT_MAX_NODES):
    """Every Value reachable from ``root`` (root first) and the edges ``(child, node)``.

    Iterative, so a graph of any depth can be traced. The returned list holds the Values: the
    ``_prev`` objects are then the same Python objects for the whole drawing, so their ids
    name nodes consistently. Raises ValueError when there are more than ``max_nodes`` Values
    (``None``: no limit).
    """
    # Recursive twin (micrograd's trace):
    #   def build(v):
    #       if v not in nodes:
    #           nodes.add(v)
    #           for child in v._prev:
    #               edges.add((child, v)); build(child)
    nodes = {id(root): root}
    edges = []
    stack = [root]
    while stack:
        v = stack.pop()
        for child in v._prev:
            edges.append((child, v))
            if id(child) not in nodes:
                nodes[id(child)] = child
                stack.append(child)
                if max_nodes is not None and len(nodes) > max_nodes:  # stop early: 1e7 graphs
                    raise ValueError(
                        f"the graph has more than max_nodes={max_nodes} Value nodes; pass a "
                        f"larger max_nodes (or max_nodes=None) to draw it anyway (large "
                        f"drawings render slowly)")
    return list(nodes.values()), edges


def _escape(text):
    """Text inside a quoted record label: record syntax characters and quotes escaped."""
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def _elements(root, rankdir, max_nodes):
    """The drawing as plain data: ``(nodes, edges)`` with nodes ``(name, label, shape)``."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    values, value_edges = trace(root, max_nodes)
    name = {id(v): f"v{i}" for i, v in enumerate(values)}
    nodes, edges = [], []
    for v in values:
        label = "{ %s | data %.4f | grad %.4f }" % (_escape(v.label), v.data, v.grad)
        nodes.append((name[id(v)], label, "record"))
        if v._op:
            nodes.append((name[id(v)] + "_op", _escape(v._op), "ellipse"))
            edges.append((name[id(v)] + "_op", name[id(v)]))
    for child, v in value_edges:
        edges.append((name[id(child)], name[id(v)] + "_op"))
    return nodes, edges


def to_dot(root, rankdir="LR", max_nodes=DEFAULT_MAX_NODES):
    """The graph below ``root`` as Graphviz DOT text (render with ``dot -Tsvg``)."""
    nodes, edges = _elements(root, rankdir, max_nodes)
    lines = ["digraph {", f"  rankdir={rankdir};"]
    lines += [f'  {n} [label="{label}", shape={shape}];' for n, label, shape in nodes]
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_dot(root, rankdir="LR", format="svg", max_nodes=DEFAULT_MAX_NODES):
    """The graph below ``root`` as a ``graphviz.Digraph``, as micrograd's ``draw_dot``.

    ``dot.render()`` / Jupyter display need Graphviz's ``dot`` program installed.
    """
    try:
        from graphviz import Digraph
    except ImportError:
        raise ImportError('draw_dot needs the graphviz package: pip install "arenagrad[viz]" '
                          '(or use to_dot, which needs nothing)') from None
    nodes, edges = _elements(root, rankdir, max_nodes)
    dot = Digraph(format=format, graph_attr={"rankdir": rankdir})
    for n, label, shape in nodes:
        dot.node(n, label=label, shape=shape)
    for a, b in edges:
        dot.edge(a, b)
    return dot

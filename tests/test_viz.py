"""arenagrad.viz: DOT text of a graph (parsed back and counted), the size guard, deep graphs."""
import re

import pytest

from arenagrad.engine import Value
from arenagrad.viz import draw_dot, to_dot

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", shape=(\w+)\];$', re.M)
EDGE = re.compile(r"^\s*(\w+) -> (\w+);$", re.M)


def parse(dot):
    """DOT text back to ({name: (label, shape)}, [(tail, head)])."""
    nodes = {name: (label, shape) for name, label, shape in NODE.findall(dot)}
    return nodes, EDGE.findall(dot)


def lecture_graph():
    """L = (a*b + c) * f with the lecture's labels, after backward()."""
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c, f = Value(10.0, label="c"), Value(-2.0, label="f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    L.backward()
    return L


def test_to_dot_lecture_graph_counts():
    nodes, edges = parse(to_dot(lecture_graph()))
    records = [n for n, (_, shape) in nodes.items() if shape == "record"]
    ops = [n for n, (_, shape) in nodes.items() if shape != "record"]
    assert (len(records), len(ops), len(edges)) == (7, 3, 9)
    assert len(set(edges)) == 9


def test_to_dot_lecture_graph_labels_data_grad():
    nodes, _ = parse(to_dot(lecture_graph()))
    labels = {label for label, shape in nodes.values() if shape == "record"}
    assert labels == {
        "{ a | data 2.0000 | grad 6.0000 }", "{ b | data -3.0000 | grad -4.0000 }",
        "{ c | data 10.0000 | grad -2.0000 }", "{ e | data -6.0000 | grad -2.0000 }",
        "{ d | data 4.0000 | grad -2.0000 }", "{ f | data -2.0000 | grad 4.0000 }",
        "{ L | data -8.0000 | grad 1.0000 }",
    }
    assert sorted(label for label, shape in nodes.values() if shape != "record") == ["*", "*", "+"]


def test_to_dot_lecture_graph_edges_child_op_node():
    nodes, edges = parse(to_dot(lecture_graph()))
    name = {label.split(" | ")[0][2:]: n for n, (label, shape) in nodes.items()
            if shape == "record"}
    op_of = {head: tail for tail, head in edges if nodes[tail][1] != "record"}  # op -> value
    children = {}
    for tail, head in edges:
        if nodes[tail][1] == "record":
            children.setdefault(head, set()).add(tail)
    assert {v: children[op_of[name[v]]] for v in "edL"} == {
        "e": {name["a"], name["b"]}, "d": {name["e"], name["c"]}, "L": {name["d"], name["f"]}}
    assert all(name[v] not in op_of for v in "abcf")  # leaves have no op node


def test_to_dot_shared_operand_one_edge():
    a = Value(3.0, label="a")
    nodes, edges = parse(to_dot(a + a))  # _prev is a set: {a}
    assert (len(nodes), len(edges)) == (3, 2)


def test_to_dot_diamond_visits_each_node_once():
    a = Value(1.0, label="a")
    b = a * 2
    top = b + b * a
    nodes, edges = parse(to_dot(top))
    records = [n for n, (_, shape) in nodes.items() if shape == "record"]
    # a, 2, b, b*a, top; op nodes for b, b*a, top
    assert (len(records), len(nodes) - len(records)) == (5, 3)
    assert len(edges) == len(set(edges)) == 3 + 2 + 2 + 2


def test_to_dot_escapes_record_characters():
    v = Value(1.0, label='x|{y}<z>"q"\\')
    nodes, _ = parse(to_dot(v))
    (label, shape), = nodes.values()
    assert label == '{ x\\|\\{y\\}\\<z\\>\\"q\\"\\\\ | data 1.0000 | grad 0.0000 }'


def test_to_dot_rankdir():
    assert "rankdir=TB;" in to_dot(Value(1.0), rankdir="TB")
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(Value(1.0), rankdir="sideways")


def chain(n):
    x = Value(1.0, label="x")
    v = x
    for _ in range(n):
        v = v + 1
    return x, v


def test_to_dot_size_guard_raises():
    _, v = chain(600)  # 1201 Values: 600 sums and 600 constants, plus x
    with pytest.raises(ValueError, match=r"more than max_nodes=1000 Value nodes.*larger max_nodes"):
        to_dot(v)


def test_to_dot_size_guard_limit_raised():
    _, v = chain(600)
    nodes, edges = parse(to_dot(v, max_nodes=1201))
    assert (len(nodes), len(edges)) == (1201 + 600, 600 * 3)
    assert len(parse(to_dot(v, max_nodes=None))[0]) == 1201 + 600


def test_to_dot_deep_chain_no_recursion_error():
    x = Value(0.5, label="x")
    v = x
    for _ in range(100_000):
        v = v.relu()
    dot = to_dot(v, max_nodes=100_001)
    nodes, edges = parse(dot)
    assert (len(nodes), len(edges)) == (200_001, 200_000)
    assert '"{ x | data 0.5000 | grad 0.0000 }"' in dot


def test_draw_dot_returns_digraph():
    graphviz = pytest.importorskip("graphviz")
    dot = draw_dot(lecture_graph(), format="png")
    assert isinstance(dot, graphviz.Digraph)
    assert dot.format == "png"
    source = dot.source
    assert source.count("shape=record") == 7
    assert len(re.findall(r"^\s*\w+ -> \w+$", source, re.M)) == 9
    assert "{ L | data -8.0000 | grad 1.0000 }" in source


def test_draw_dot_size_guard_raises():
    pytest.importorskip("graphviz")
    _, v = chain(600)
    with pytest.raises(ValueError, match="max_nodes"):
        draw_dot(v)

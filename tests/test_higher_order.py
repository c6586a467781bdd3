"""arenagrad.grad(output, inputs, create_graph): derivatives as Values, differentiable again.

Chain of oracles, as everywhere: central differences of the reference's first derivatives check
the engine's second and third derivatives (and the reference's own grad()); the reference's
grad() checks the engine's on random graphs; torch.autograd.grad checks both when installed.
"""
import gc
import math
import pathlib
import random
import signal
import sys
import threading

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import arenagrad
from arenagrad import _core, reference
from arenagrad.engine import Value
from arenagrad.nn import MLP
from conftest import GRAD_REL, assert_close, assert_same, ctrl_c_during, run_in_subprocess

ENGINES = {"arenagrad": (Value, arenagrad.grad, arenagrad.sum),
           "reference": (reference.Value, reference.grad, sum)}
FD_REL = 1e-6  # central differences: truncation O(h^2) and rounding O(eps/h), relative


@pytest.fixture(scope="module", params=list(ENGINES), ids=list(ENGINES))
def eng(request):
    """(Value, grad, sum) of one engine: one body, two engines."""
    return ENGINES[request.param]


def live():
    gc.collect()
    return arenagrad.live_nodes()


# ---- every op: the 2nd and 3rd derivatives against central differences -----------------------

# f(x) over one Value, and the domain of x where f and its derivatives are smooth.
OPS = {
    "add": (lambda x, S: x + 1.5 + x, (-3, 3)),
    "radd_sub": (lambda x, S: 2.0 - x - (x - 0.5), (-3, 3)),
    "mul": (lambda x, S: x * x * 1.5, (-3, 3)),
    "div": (lambda x, S: x / 3.0 + 2.0 / x + x / (x * x + 1), (0.3, 3)),
    "neg": (lambda x, S: -(x * x) * -x, (-3, 3)),
    "pow_int": (lambda x, S: x ** 3 + x ** -2, (0.3, 3)),
    "pow_float": (lambda x, S: x ** 2.5 + x ** -0.5, (0.3, 3)),
    "pow_value": (lambda x, S: x ** x, (0.3, 3)),
    "rpow": (lambda x, S: 2 ** x + (x * x) ** (x + 1), (0.3, 2)),
    "exp": (lambda x, S: (x * 0.7).exp(), (-3, 3)),
    "tanh": (lambda x, S: (x * 1.3).tanh(), (-2, 2)),
    "relu": (lambda x, S: (x * x * x).relu() + (x * -1).relu() * x, (-3, 3)),
    "log": (lambda x, S: (x * 2).log(), (0.3, 3)),
    "sigmoid": (lambda x, S: (x * 1.7).sigmoid(), (-3, 3)),
    "sum": (lambda x, S: S([x, x * x, x * x * x, 1.0]), (-3, 3)),
}


def ref_first(f, x):
    """The reference's d f / dx at x, by its backward()."""
    v = reference.Value(x)
    f(v, sum).backward()
    return v.grad


def derivatives(f, x, order, create_graph=True):
    """[f, f', f'', ...] up to `order` at x, by repeated engine grad()."""
    v = Value(x)
    out = [f(v, arenagrad.sum)]
    for k in range(order):
        out.append(arenagrad.grad(out[-1], v, create_graph=k < order - 1 or create_graph))
    return [d.data for d in out]


@pytest.mark.parametrize("name", list(OPS))
@given(u=st.floats(0.02, 0.98))
def test_second_and_third_derivative_match_central_differences(name, u):
    f, (lo, hi) = OPS[name]
    x = lo + (hi - lo) * u
    assume(abs(x) > 0.05)  # away from relu's kink at 0
    h = 1e-4 * max(1.0, abs(x))
    d1 = [ref_first(f, x + k * h) for k in (-1, 0, 1)]
    second_fd = (d1[2] - d1[0]) / (2 * h)
    third_fd = (d1[2] - 2 * d1[1] + d1[0]) / (h * h)
    _, first, second, third = derivatives(f, x, 3)
    assert_close(first, d1[1], what="f'")
    assert_close(second, second_fd, rel=FD_REL, abs_floor=FD_REL, what="f''")
    assert_close(third, third_fd, rel=1e-3, abs_floor=1e-3 * (1 + abs(second)), what="f'''")


@pytest.mark.parametrize("name", list(OPS))
def test_reference_grad_matches_engine_grad_every_op(name):
    f, (lo, hi) = OPS[name]
    x = lo + (hi - lo) * 0.37
    got = derivatives(f, x, 3)
    v = reference.Value(x)
    want = [f(v, sum)]
    for _ in range(3):
        want.append(reference.grad(want[-1], v, create_graph=True))
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w.data, what=f"derivative {k}")


def test_relu_second_derivative_is_zero():
    x = Value(1.5)
    y = x.relu() * 3.0
    (g,) = arenagrad.grad(y, [x], create_graph=True)
    (h,) = arenagrad.grad(g, [x])
    assert (g.data, h.data) == (3.0, 0.0)


# ---- full Hessians --------------------------------------------------------------------------

EXPRESSIONS = [
    lambda a, b, c: (a * b + c.exp()).tanh() * (a ** 2 - b / c),
    lambda a, b, c: (a * a + 1).log() * b.sigmoid() + c ** 3 * a - (b * c).exp(),
    lambda a, b, c: (a + 2) ** (b * 0.5) + 2 ** c * a / (b * b + 1),
]


def hessian(eng, expr, point):
    V, grad, _ = eng
    leaves = [V(x) for x in point]
    grads = grad(expr(*leaves), leaves, create_graph=True)
    return [[h.data for h in grad(g, leaves)] for g in grads]


@pytest.mark.parametrize("k", range(len(EXPRESSIONS)))
@given(point=st.tuples(*[st.floats(0.3, 1.5)] * 3))
def test_hessian_matches_central_differences_and_is_symmetric(eng, k, point):
    expr = EXPRESSIONS[k]
    H = hessian(eng, expr, point)

    def ref_gradient(p):
        leaves = [reference.Value(x) for x in p]
        expr(*leaves).backward()
        return [v.grad for v in leaves]
    for j in range(3):
        h = 1e-5
        up = ref_gradient([x + h * (i == j) for i, x in enumerate(point)])
        down = ref_gradient([x - h * (i == j) for i, x in enumerate(point)])
        for i in range(3):
            assert_close(H[i][j], (up[i] - down[i]) / (2 * h), rel=FD_REL, abs_floor=FD_REL,
                         what=f"H[{i}][{j}]")
            assert_close(H[i][j], H[j][i], what=f"symmetry H[{i}][{j}]")


def test_hessian_engine_matches_reference():
    for expr in EXPRESSIONS:
        got = hessian(ENGINES["arenagrad"], expr, (0.7, 1.1, 0.9))
        want = hessian(ENGINES["reference"], expr, (0.7, 1.1, 0.9))
        for i in range(3):
            for j in range(3):
                assert_close(got[i][j], want[i][j])


# ---- Hessian-vector product of an MLP loss ---------------------------------------------------

def mlp_loss(model, X, y):
    scores = [model(x) for x in X]
    return sum((s - t) ** 2 for s, t in zip(scores, y)) * (1.0 / len(X)) + (
        1e-3 * sum(p * p for p in model.parameters()))


def test_mlp_loss_hessian_vector_product_matches_finite_differences():
    """H v from grad(grad . v) against (g(p + eps v) - g(p - eps v)) / 2 eps, g the reference
    MLP's gradient (same seed, same weights)."""
    random.seed(7)
    model = MLP(3, [5, 4, 1])
    random.seed(7)
    ref_model = reference.MLP(3, [5, 4, 1])
    rng = random.Random(8)
    X = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(6)]
    y = [rng.uniform(-1, 1) for _ in range(6)]
    params, ref_params = model.parameters(), ref_model.parameters()
    v = [rng.uniform(-1, 1) for _ in params]
    g = arenagrad.grad(mlp_loss(model, X, y), params, create_graph=True)
    hvp = arenagrad.grad(arenagrad.sum(gi * vi for gi, vi in zip(g, v)), params)

    def ref_gradient_at(step):
        for p, vi in zip(ref_params, v):
            p.data += step * vi
        ref_model.zero_grad()
        mlp_loss(ref_model, X, y).backward()
        for p, vi in zip(ref_params, v):
            p.data -= step * vi
        return [p.grad for p in ref_params]
    eps = 1e-5
    up, down = ref_gradient_at(eps), ref_gradient_at(-eps)
    assert any(abs(h.data) > 1e-3 for h in hvp)
    for i, h in enumerate(hvp):
        assert_close(h.data, (up[i] - down[i]) / (2 * eps), rel=1e-5, abs_floor=1e-6,
                     what=f"(Hv)[{i}]")


# ---- against torch, when installed ------------------------------------------------------------

def random_program(rng, n_leaves=3, n_ops=12):
    """A random expression DAG as a list of (op, i, j) over earlier nodes; always defined. (A
    Value exponent never 0: there torch's pow derivative is a masked constant 0, whose own
    derivative is then 0, not d/db (b a^(b-1)) = a^(b-1).)"""
    prog = []
    for k in range(n_ops):
        n = n_leaves + k
        op = rng.choice(["add", "mul", "sub", "tanh", "sigmoid", "square", "logish", "powv",
                         "div", "relu", "exp"])
        prog.append((op, rng.randrange(n), rng.randrange(n)))
    return prog


def run_program(prog, leaves, exp, log):
    """Evaluates `prog` on leaves with this engine's ops (`exp`, `log`: functions of a node);
    the root sums every node so all are used."""
    nodes = list(leaves)
    for op, i, j in prog:
        a, b = nodes[i], nodes[j]
        nodes.append({"add": lambda: a + b, "mul": lambda: a * b, "sub": lambda: a - b,
                      "tanh": lambda: a.tanh(), "sigmoid": lambda: a.sigmoid(),
                      "square": lambda: a ** 2, "logish": lambda: log(a * a + 1),
                      "powv": lambda: (a.sigmoid() + 0.5) ** (b.tanh() + 1.5),
                      "div": lambda: a / (b * b + 1), "relu": lambda: a.relu() * b,
                      "exp": lambda: exp(a.tanh())}[op]())
    root = nodes[-1]
    for v in nodes[:-1]:
        root = root + v * 0.1
    return root


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@given(seed=st.integers(0, 10**6), point=st.tuples(*[st.floats(-1.5, 1.5)] * 3))
def test_second_order_matches_torch_on_random_graphs(torch, seed, point):
    prog = random_program(random.Random(seed))
    assume(all(abs(x) > 1e-3 for x in point))  # relu kinks
    leaves = [Value(x) for x in point]
    out = run_program(prog, leaves, lambda v: v.exp(), lambda v: v.log())
    g = arenagrad.grad(out, leaves, create_graph=True)
    H = [[h.data for h in arenagrad.grad(gi, leaves)] for gi in g]

    t = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    tout = run_program(prog, t, torch.exp, torch.log)
    tg = torch.autograd.grad(tout, t, create_graph=True)
    assert out.data == pytest.approx(tout.item(), rel=1e-12)
    for i in range(3):
        assert_close(g[i].data, tg[i].item(), rel=1e-10, abs_floor=1e-12)
        row = (torch.autograd.grad(tg[i], t, allow_unused=True, retain_graph=True)
               if tg[i].requires_grad else [None] * 3)
        for j in range(3):
            want = 0.0 if row[j] is None else row[j].item()
            assert_close(H[i][j], want, rel=1e-10, abs_floor=1e-12, what=f"H[{i}][{j}]")


# ---- engine against reference on random graphs -----------------------------------------------

@given(seed=st.integers(0, 10**6), point=st.tuples(*[st.floats(-1.5, 1.5)] * 3),
       create_graph=st.booleans())
def test_grad_matches_reference_on_random_graphs(seed, point, create_graph):
    prog = random_program(random.Random(seed), n_ops=20)
    results = []
    for V, grad, _ in ENGINES.values():
        leaves = [V(x) for x in point]
        out = run_program(prog, leaves, lambda v: v.exp(), lambda v: v.log())
        inner = out.tanh()  # an interior node as an input too
        out = inner * 2 + leaves[0]
        g = grad(out, leaves + [inner], create_graph=create_graph)
        second = [grad(gi, leaves) for gi in g[:3]] if create_graph else []
        results.append(([x.data for x in g], [[h.data for h in row] for row in second]))
    (g_ag, h_ag), (g_ref, h_ref) = results
    for got, want in zip(g_ag, g_ref):
        assert_close(got, want)
    for row_ag, row_ref in zip(h_ag, h_ref):
        for got, want in zip(row_ag, row_ref):
            assert_close(got, want)


@given(seed=st.integers(0, 10**6), point=st.tuples(*[st.floats(-1.5, 1.5)] * 3))
def test_grad_numbers_are_backward_numbers(seed, point):
    """Without create_graph, grad() gives exactly what a zeroed graph's backward() leaves in
    .grad; with it, the same numbers to rounding (its sums may run in another order)."""
    leaves = [Value(x) for x in point]
    out = run_program(random_program(random.Random(seed), n_ops=25), leaves,
                      lambda v: v.exp(), lambda v: v.log())
    plain = [g.data for g in arenagrad.grad(out, leaves)]
    graph = [g.data for g in arenagrad.grad(out, leaves, create_graph=True)]
    out.backward()
    if arenagrad.memory_stats()["out_of_order_nodes"] == 0:  # the same sweep: bit for bit
        assert plain == [v.grad for v in leaves]
    for got, want in zip(plain, [v.grad for v in leaves]):
        assert_close(got, want)
    for got, want in zip(graph, plain):
        assert_close(got, want)


@given(seed=st.integers(0, 10**6),
       point=st.tuples(*[st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, -0.5])] * 3))
def test_grad_numbers_are_backward_numbers_to_the_sign_of_zero(seed, point):
    """Where sums are signed zeros (zero leaves, products with -0.0, relu's flat side), grad()
    still gives a zeroed graph's backward() numbers bit for bit, sign of zero included, for
    leaves and interior nodes as inputs."""
    rng = random.Random(seed)
    leaves = [Value(x) for x in point]
    nodes = list(leaves)
    for _ in range(30):
        a, b = rng.choice(nodes), rng.choice(nodes)
        nodes.append(rng.choice([lambda: a * b, lambda: a + b, lambda: a - b, lambda: -a,
                                 lambda: a * -0.0, lambda: a.relu(), lambda: a.tanh()])())
    root = nodes[-1]
    for v in nodes[:-1]:
        root = root + v * rng.choice([0.0, -0.0, 1.0])
    assume(arenagrad.memory_stats()["out_of_order_nodes"] == 0)  # else: its own order
    inputs = leaves + nodes[len(leaves)::2]
    got = [g.data for g in arenagrad.grad(root, inputs)]
    for v in nodes:
        v.grad = 0.0
    root.backward()
    for i, (g, v) in enumerate(zip(got, inputs)):
        assert_same(g, v.grad, f"d root / d inputs[{i}]")


def spread_layout(layout, point):
    """Leaves and a graph over them laid out in the arena as `layout` says, with nothing out of
    order (arena.hpp [A4]); returns (leaves, interior nodes, root, what must stay alive)."""
    keep = []
    if layout == "far leaves":  # the graph sits 300,000 live slots above its leaves
        leaves = [Value(x) for x in point]
        keep = [Value(0.0) for _ in range(300_000)]
    elif layout == "leaf above its user":  # freed low slots go to users of a high leaf
        holes = [Value(0.0) for _ in range(64)]
        leaves = [Value(x) for x in point]
        del holes
    elif layout == "sparse":  # every graph node between 40 unrelated live ones
        leaves = [Value(x) for x in point]
    else:
        leaves = [Value(x) for x in point]
    nodes = list(leaves)
    for k in range(60):
        a, b = nodes[(7 * k) % len(nodes)], nodes[(3 * k + 1) % len(nodes)]
        nodes.append((a * b).tanh() + a if k % 2 else a * 0.5 + b.sigmoid())
        if layout == "sparse":
            keep.append([Value(0.0) for _ in range(40)])
    root = nodes[-1]
    for v in nodes[-20:-1]:
        root = root + v * v
    return leaves, nodes[len(leaves):], root, keep


@pytest.mark.parametrize("layout", ["compact", "far leaves", "leaf above its user", "sparse"])
def test_grad_numbers_are_backward_numbers_in_every_layout(layout):
    """Wherever the arena put the graph, grad() gives a zeroed graph's backward() numbers, bit
    for bit, for leaves, interior nodes and the root as inputs."""
    leaves, inner, root, keep = spread_layout(layout, (0.3, -0.7, 1.1))
    assert arenagrad.memory_stats()["out_of_order_nodes"] == 0
    inputs = leaves + inner[::7] + [root, Value(2.0)]
    got = [g.data for g in arenagrad.grad(root, inputs)]
    for v in [*leaves, *inner, root]:
        v.grad = 0.0
    root.backward()
    assert got == [v.grad for v in inputs[:-2]] + [1.0, 0.0]
    assert any(g != 0 for g in got[:len(leaves)])
    del keep


# ---- the route grad() takes (how its cost follows the graph) ---------------------------------

def test_grad_scans_a_graph_whose_first_node_reaches_far_below():
    """The root's operand `a` lies 100,000 ids below it, with the graph dense in between: the
    id scan's table grows to it at once (8 bytes an id, against the arena's 40) rather than
    giving the graph up to the explicit order; the numbers are backward()'s, bit for bit."""
    x = Value(0.75)
    a = x * 1.5
    c = x * 2.0
    for _ in range(100_000):
        c = c * 1.0000001
    root = c + a
    got = [g.data for g in arenagrad.grad(root, [x, a, c])]
    assert _core._last_grad_route() == "scan"
    x.grad = a.grad = c.grad = 0.0
    root.backward()
    assert got == [x.grad, a.grad, c.grad]


def uniform_random_graph(n, seed=1):
    """n nodes whose operands are drawn from all before them; the root sums the last 200, so
    its graph is a sparse subset of the ids below it."""
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(-1, 1)) for _ in range(16)]
    nodes = list(leaves)
    for k in range(n):
        a, b = rng.choice(nodes), rng.choice(nodes)
        nodes.append(a * b if k % 2 else a + b)
    root = nodes[-1]
    for v in nodes[-200:-1]:
        root = root + v
    return leaves, nodes, root


def test_grad_finishes_a_spread_graph_in_the_explicit_order_as_backward_does():
    """A graph spread over its id range: the scan gives up on it, as backward()'s does, and the
    explicit order finishes the sweep from where the scan left it. The numbers are backward()'s,
    bit for bit (the same two sweeps, in the same order)."""
    leaves, nodes, root = uniform_random_graph(100_000)
    inputs = leaves + nodes[16::97]
    got = [g.data for g in arenagrad.grad(root, inputs)]
    assert _core._last_grad_route() == "scan, then topological order"
    for v in nodes:
        v.grad = 0.0
    root.backward()
    assert _core._last_backward()[0] == "topological order"
    assert got == [v.grad for v in inputs]
    assert any(g != 0 for g in got)


def test_grad_keeps_the_scans_sums_across_the_wrap_of_walk_epochs():
    """Finishing in the explicit order takes a second epoch while the scan's marks must still
    tell what it reached. Over 70,000 calls, with a one-epoch walk between every other one, the
    scan's epoch takes every value, the last before the marks are cleared (Arena::begin_walk)
    included: every call gives the first call's numbers."""
    leaves, inner, root, keep = spread_layout("sparse", (0.3, -0.7, 1.1))
    inputs = leaves + inner[::5]
    want = [g.data for g in arenagrad.grad(root, inputs)]
    assert _core._last_grad_route() == "scan, then topological order"
    one = Value(1.0) * 2.0
    for k in range(70_000):
        if k % 2:
            one.zero_grad()  # a walk of one epoch
        got = [g.data for g in arenagrad.grad(root, inputs)]
        assert got == want, k
    del keep


def test_grad_on_a_sparse_graph_below_its_own_leaf():
    """The whole graph in freed slots below one of its leaves ([A4] lets a leaf sit above its
    users), 40 unrelated live nodes between its nodes: the scan gives up, and its sums, keyed
    by depth below the root, have no entry for that leaf, so grad() starts again in the
    explicit order. The numbers are backward()'s to rounding (its sums run in another order)."""
    holes = [Value(0.0) for _ in range(5000)]
    high = Value(0.9)
    del holes
    x = Value(0.4)
    nodes, keep = [x], []
    for k in range(60):
        nodes.append((nodes[-1] * high).tanh() + x if k % 2 else nodes[-1] + high * 0.5)
        keep.append([Value(0.0) for _ in range(40)])
    root = nodes[-1]
    got = [g.data for g in arenagrad.grad(root, [x, high])]
    assert _core._last_grad_route() == "topological order"
    x.grad = high.grad = 0.0
    root.backward()
    assert_close(got[0], x.grad, what="d root / d x")
    assert_close(got[1], high.grad, what="d root / d high")
    del keep


def test_grad_keys_the_sums_of_an_out_of_order_graph_by_id():
    """Nodes out of order (an operand above its user): the explicit order alone, its sums in a
    table keyed by id (no map), and backward()'s numbers to rounding."""
    leaves, nodes, root = uniform_random_graph(2_000)
    holes = [Value(0.0) for _ in range(64)]
    top = nodes[-1] * 2.0
    del holes
    late = top + leaves[0] * 3.0  # its operand leaves[0] * 3.0 lands in a freed lower slot
    assert arenagrad.memory_stats()["out_of_order_nodes"] > 0
    inputs = leaves + nodes[16::7] + [top]
    got = [g.data for g in arenagrad.grad(late, inputs)]
    assert _core._last_grad_route() == "topological order"
    for v in nodes + [top]:
        v.grad = 0.0
    late.backward()
    for g, v in zip(got, inputs):
        assert_close(g, v.grad, what="d late / d input")


def graph_on_route(route):
    """(root, inputs, keep) of a graph on which grad() takes `route` (_core._last_grad_route)."""
    if route == "scan":
        leaves, nodes, root = uniform_random_graph(300)
        return root, leaves + nodes[16::9], nodes
    if route == "scan, then topological order":
        leaves, inner, root, keep = spread_layout("sparse", (0.3, -0.7, 1.1))
        return root, leaves + inner[::5], (inner, keep)
    if route == "topological order":  # an operand above its user
        leaves, nodes, root = uniform_random_graph(300)
        holes = [Value(0.0) for _ in range(64)]
        top = nodes[-1] * 2.0
        del holes
        return top + leaves[0] * 3.0, leaves + nodes[16::9] + [top], nodes
    x = Value(3.0)  # "topological order, hashed": an out-of-order graph lost in its id range
    y = x * 2.0
    junk = Value(1.0)
    for _ in range(20_000):
        junk = junk * 1.0
    holes = [Value(0.0) for _ in range(8)]
    top = y + 1.0
    del holes
    return top * 2.0, [x, y, top], junk  # the root lands in a freed slot below `top`


ROUTES = ["scan", "scan, then topological order", "topological order",
          "topological order, hashed"]


def test_grad_takes_the_map_only_for_an_out_of_order_graph_lost_in_its_id_range():
    """A few nodes out of order, spread over 20,000 live unrelated ones: keying the sums by id
    would take a table as large as the gap, so grad() keys them by position, through a map."""
    root, inputs, junk = graph_on_route("topological order, hashed")
    assert arenagrad.memory_stats()["out_of_order_nodes"] > 0
    assert [g.data for g in arenagrad.grad(root, inputs)] == [4.0, 2.0, 2.0]
    assert _core._last_grad_route() == "topological order, hashed"
    del junk


@given(seed=st.integers(0, 10**6), point=st.tuples(*[st.floats(-1.5, 1.5)] * 3))
def test_grad_on_out_of_order_graph_matches_reference(seed, point):
    """Slots freed below a half-built graph are reused by its later nodes, whose operands then
    have higher ids (arena.hpp [A4]): grad() must take its explicit topological order."""
    prog = random_program(random.Random(seed), n_ops=20)
    holes = [Value(0.0) for _ in range(64)]
    leaves = [Value(x) for x in point]
    first = run_program(prog[:10], leaves, lambda v: v.exp(), lambda v: v.log())
    del holes
    out = run_program(prog, [first.tanh(), *leaves[1:]], lambda v: v.exp(), lambda v: v.log())
    assert arenagrad.memory_stats()["out_of_order_nodes"] > 0
    got = [g.data for g in arenagrad.grad(out, leaves + [first])]
    graph = arenagrad.grad(out, leaves + [first], create_graph=True)
    second = [h.data for h in arenagrad.grad(graph[0], leaves)]

    ref = [reference.Value(x) for x in point]
    ref_first = run_program(prog[:10], ref, lambda v: v.exp(), lambda v: v.log())
    ref_out = run_program(prog, [ref_first.tanh(), *ref[1:]], lambda v: v.exp(),
                          lambda v: v.log())
    want = [g.data for g in reference.grad(ref_out, ref + [ref_first])]
    ref_graph = reference.grad(ref_out, ref + [ref_first], create_graph=True)
    want_second = [h.data for h in reference.grad(ref_graph[0], ref)]
    for g, h, w in zip(got, graph, want):
        assert_close(g, w)
        assert_close(h.data, w)
    for g, w in zip(second, want_second):
        assert_close(g, w)


# ---- deep chains: iterative at any depth, exact analytic derivatives -------------------------

def test_deep_chain_second_derivative_is_analytic():
    """y = x**N by N multiplications at x = 1: y' = N, y'' = N (N - 1), every sum exact."""
    n = 100_000
    base = live()
    x = Value(1.0)
    y = x
    for _ in range(n - 1):
        y = y * x
    (d1,) = arenagrad.grad(y, [x], create_graph=True)
    (d2,) = arenagrad.grad(d1, [x])
    assert (d1.data, d2.data) == (n, n * (n - 1))
    del x, y, d1, d2
    assert live() == base


def test_deep_add_chain_third_derivative():
    """y = x + N x**2 / 2 as a 1e5-deep chain: y'' = N, y''' = 0."""
    n = 100_000
    x = Value(0.5)
    y = x
    for _ in range(n):
        y = y + x * x * 0.5
    d1 = arenagrad.grad(y, x, create_graph=True)
    d2 = arenagrad.grad(d1, x, create_graph=True)
    d3 = arenagrad.grad(d2, x)
    assert (d1.data, d2.data, d3.data) == (1 + n * 0.5, n, 0.0)


# ---- what grad() promises beyond the numbers -------------------------------------------------

def test_grad_touches_no_grad_field(eng):
    V, grad, _ = eng
    a, b = V(0.8), V(-1.3)
    mid = (a * b).tanh()
    out = mid * a + b.exp()
    nodes = [a, b, mid, out]
    for k, v in enumerate(nodes):
        v.grad = 10.0 + k
    g = grad(out, [a, b, mid], create_graph=True)
    grad(g[0], [a, b])
    grad(out, [a, b])
    assert [v.grad for v in nodes] == [10.0, 11.0, 12.0, 13.0]
    assert all(r.grad == 0.0 for r in g)


def test_single_value_in_single_value_out_and_list_order(eng):
    V, grad, _ = eng
    x, z = V(1.5), V(4.0)
    y = x ** 3
    g = grad(y, x)
    assert isinstance(g, V) and g.data == 6.75
    assert [r.data for r in grad(y, (z, x, y, x))] == [0.0, 6.75, 1.0, 6.75]
    assert grad(y, []) == []
    assert [r.data for r in grad(y, (v for v in [x]))] == [6.75]


def test_issue_example_three_orders(eng):
    V, grad, _ = eng
    x = V(1.5)
    y = x ** 3
    (g,) = grad(y, [x], create_graph=True)
    (h,) = grad(g, [x], create_graph=True)
    (t,) = grad(h, [x])
    assert (g.data, h.data, t.data) == (6.75, 9.0, 6.0)
    assert g._prev and not t._prev  # a graph with create_graph, a leaf without


def test_result_trains_with_backward():
    """A loss containing d f / d x: backward() goes through the gradient graph."""
    w, x = Value(0.7), Value(1.2)
    f = (w * x).tanh()
    (dfdx,) = arenagrad.grad(f, [x], create_graph=True)
    (dfdx ** 2).backward()
    rw, rx = reference.Value(0.7), reference.Value(1.2)
    (r,) = reference.grad((rw * rx).tanh(), [rx], create_graph=True)
    (r ** 2).backward()
    assert_close(w.grad, rw.grad)
    assert_close(x.grad, rx.grad)


def test_unreached_input_gets_zero_and_no_grad_mode_gives_leaves():
    x, unused = Value(2.0), Value(3.0)
    y = x.exp()
    with arenagrad.no_grad():
        g, z = arenagrad.grad(y, [x, unused], create_graph=True)
    assert (g.data, z.data) == (math.exp(2.0), 0.0)
    assert not g._prev and not z._prev
    assert (Value(1.0) * 2.0)._prev  # recording again after the block


def test_live_nodes_back_to_baseline():
    V, grad, S = ENGINES["arenagrad"]
    base = live()
    x = V(0.9)
    y = S([(x * x).tanh(), x.log(), 2 ** x])
    g = grad(y, [x], create_graph=True)
    h = grad(g[0], [x], create_graph=True)
    grad(h[0], [x])
    del x, y, g, h
    assert live() == base


# ---- domain: where Python's ** raises, the derivative is what backward() gives ---------------

def test_pow_value_exponent_derivative_is_nan_for_nonpositive_base(eng):
    V, grad, _ = eng
    a, b = V(-2.0), V(3.0)
    y = a ** b
    da, db = grad(y, [a, b], create_graph=True)
    assert da.data == 12.0 and math.isnan(db.data)
    (dda,) = grad(da, [a])
    assert dda.data == -12.0
    assert all(math.isnan(v.data) for v in grad(db, [a, b]))
    y.backward()
    assert a.grad == 12.0 and math.isnan(b.grad)


def test_derivative_past_python_pow_is_inf_like_backward(eng):
    V, grad, _ = eng
    x = V(0.0)
    y = x ** 0.5 + x.relu()
    for create_graph in (False, True):
        (g,) = grad(y, [x], create_graph=create_graph)
        assert g.data == math.inf
    (g,) = grad(y, [x], create_graph=True)
    (h,) = grad(g, [x])
    assert h.data == -math.inf
    y.backward()
    assert x.grad == math.inf


# ---- bad arguments: TypeError, every graph intact -------------------------------------------

@pytest.mark.parametrize("create_graph", [False, True])
def test_custom_node_raises_type_error_naming_its_op(eng, create_graph):
    V, grad, _ = eng
    base = live()
    a = V(2.0)
    hand = V(a.data * 3, (a,), "triple")
    y = (hand * a).tanh()
    a.grad = 5.0
    with pytest.raises(TypeError, match="'triple'"):
        grad(y, [a], create_graph=create_graph)
    assert a.grad == 5.0
    del a, hand, y
    assert live() == base


@pytest.mark.parametrize("output, inputs", [
    (1.0, "x"), (None, "x"), ("ref", "x"),
    ("y", 1.0), ("y", [1.0]), ("y", ["x", None]), ("y", ["ref"]), ("y", None),
])
def test_bad_arguments_raise_type_error(eng, output, inputs):
    V, grad, _ = eng
    other = reference.Value if V is Value else Value
    x = V(1.5)
    y = x * x
    pick = {"x": x, "y": y, "ref": other(1.0)}
    output = pick.get(output, output) if isinstance(output, str) else output
    inputs = ([pick.get(i, i) if isinstance(i, str) else i for i in inputs]
              if isinstance(inputs, list) else pick.get(inputs, inputs)
              if isinstance(inputs, str) else inputs)
    n = live()
    with pytest.raises(TypeError):
        grad(output, inputs)
    assert live() == n
    assert (x.grad, y.data) == (0.0, 2.25)


def test_create_graph_must_be_a_bool():
    x = Value(1.0)
    for not_a_bool in ("yes", 1, None, 1.0):
        with pytest.raises(TypeError, match="create_graph must be a bool"):
            arenagrad.grad(x * x, [x], create_graph=not_a_bool)


def test_grad_takes_its_arguments_as_a_python_function_would():
    import inspect

    import numpy as np
    x = Value(1.5)
    y = x * x
    assert list(inspect.signature(arenagrad.grad).parameters) == ["output", "inputs",
                                                                    "create_graph"]
    assert arenagrad.grad(output=y, inputs=x).data == 3.0
    assert arenagrad.grad(y, inputs=(x,))[0].data == 3.0
    assert arenagrad.grad(y, x, False).data == 3.0
    (g,) = arenagrad.grad(y, [x], create_graph=np.bool_(True))  # numpy's bool, as before
    assert g._op and g.data == 3.0
    n = live()
    for args, kwargs, message in [
        ((y, x), {"inputs": x}, "multiple values for argument 'inputs'"),
        ((y,), {"output": y, "inputs": x}, "multiple values for argument 'output'"),
        ((y, x), {"create_grap": True}, "unexpected keyword argument 'create_grap'"),
        ((y,), {}, "missing required argument 'inputs'"),
        ((), {"inputs": x}, "missing required argument 'output'"),
        ((y, x, False, 1), {}, "from 2 to 3 positional arguments but 4 were given"),
    ]:
        with pytest.raises(TypeError, match=message):
            arenagrad.grad(*args, **kwargs)
    assert live() == n and (x.grad, y.grad) == (0.0, 0.0)


def test_grad_reads_any_iterable_of_inputs_once():
    x, w = Value(1.5), Value(-2.0)
    y = x * w
    expected = [-2.0, 1.5]
    assert [g.data for g in arenagrad.grad(y, (v for v in (x, w)))] == expected
    assert [g.data for g in arenagrad.grad(y, iter([x, w]))] == expected
    assert [g.data for g in arenagrad.grad(y, {"a": x, "b": w}.values())] == expected
    assert arenagrad.grad(y, []) == []
    many = [x, w] * 20  # past the call's inline room for ids and numbers
    assert [g.data for g in arenagrad.grad(y, many)] == expected * 20


# ---- Ctrl-C: a long grad() stops, and leaves nothing behind ----------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="Python handles signals in the main thread only")
def test_ctrl_c_interrupts_long_grad_and_leaves_no_nodes():
    """A Timer sends SIGINT 0.3 s into a loop of grad() calls on a 2.2e6-node chain (the walks
    poll every 2^20 nodes); whatever grad() had built is freed."""
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        base = live()
        x = Value(0.5)
        root = x
        for _ in range(1_100_000):
            root = root * 1.0000001
        built = live()
        calls = 0

        def step():
            nonlocal calls
            arenagrad.grad(root, [x], create_graph=calls % 2 == 1)
            calls += 1
        assert ctrl_c_during(step, 0.3), "no KeyboardInterrupt within 60 s"
        assert live() == built and (x.grad, root.grad) == (0.0, 0.0)
        (g,) = arenagrad.grad(root, [x])  # the engine is usable
        assert g.data == pytest.approx(1.0000001 ** 1_100_000, rel=1e-9)
        del x, root, g
        assert live() == base
    finally:
        signal.signal(signal.SIGINT, old_handler)


# ---- each route of grad() under attack: interrupts, handlers, mutation, signals, threads --------

@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("at", [1, 3, 40, 250, 2500])
def test_ctrl_c_at_any_poll_of_any_route_changes_nothing(poll_every_node, route, at):
    """KeyboardInterrupt from the `at`-th signal check inside grad(): it propagates, no data or
    grad changed, no node left behind, and the next call gives the uninterrupted numbers."""
    root, inputs, keep = graph_on_route(route)
    want = [g.data for g in arenagrad.grad(root, inputs)]
    assert _core._last_grad_route() == route
    before = [(v.data, v.grad) for v in inputs] + [(root.data, root.grad)]
    nodes = live()
    _core._run_in_poll(at, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        got = [g.data for g in arenagrad.grad(root, inputs)]
        assert got == want  # fewer than `at` checks: no interrupt came
    except KeyboardInterrupt:
        pass
    _core._run_in_poll(0)
    assert [(v.data, v.grad) for v in inputs] + [(root.data, root.grad)] == before
    assert live() == nodes
    assert [g.data for g in arenagrad.grad(root, inputs)] == want
    del keep


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("at", [1, 40])
def test_handler_mutating_everything_it_can_inside_grad(poll_every_node, route, at):
    """A handler run by a signal check inside grad() empties the inputs list, drops its handles
    on the graph, assigns .grad and .data of unrelated Values, builds and frees nodes, and tries a
    nested grad() (refused: RuntimeError). grad() still answers for the inputs it was given,
    with the undisturbed numbers, and leaves every .grad of the graph as it was."""
    root, inputs, keep = graph_on_route(route)
    want = [g.data for g in arenagrad.grad(root, inputs)]
    grads = [v.grad for v in inputs]
    given = list(inputs)
    other = Value(2.0) * 3.0
    ran, refused = [], []

    def handler():
        nonlocal keep
        ran.append(True)
        given.clear()
        keep = None
        other.grad, other.data = 5.0, -1.0
        junk = [Value(float(i)) * 2.0 for i in range(300)]
        del junk
        try:
            arenagrad.grad(other, other)
        except RuntimeError:
            refused.append(True)

    _core._run_in_poll(at, handler)
    got = [g.data for g in arenagrad.grad(root, given)]
    _core._run_in_poll(0)
    assert got == want
    assert [v.grad for v in inputs] == grads
    assert refused == ran and (ran or at > 1)  # it ran (surely at the first check), refused


def test_real_signals_and_a_thread_during_grads_on_every_route():
    """In a fresh interpreter, with the walks checking for signals every 64 nodes: a 1 ms timer
    whose handler reads the inputs' .grad, builds nodes and tries grad() on a small graph, and a
    thread running backward() and grad() on graphs of its own, while the main thread calls grad()
    on a graph of each route until the handler has run 200 times. Every call gives the first
    call's numbers, no handler ever sees a .grad change, and the run ends normally."""
    out = run_in_subprocess(f"""
        import signal, sys, threading, time
        sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})
        import arenagrad
        from arenagrad import _core
        from arenagrad.engine import Value
        from test_higher_order import graph_on_route, ROUTES
        _core._set_poll_interval(64)
        seen = {{"changed": 0, "refused": 0, "ran": 0}}
        small = Value(2.0) * 3.0
        graphs = [graph_on_route(r) for r in ROUTES]
        grads = [[v.grad for v in inputs] for _, inputs, _ in graphs]
        def handler(signum, frame):
            seen["ran"] += 1
            for (_, inputs, _), g in zip(graphs, grads):
                seen["changed"] += [v.grad for v in inputs] != g
            junk = [Value(1.0) * 2.0 for _ in range(50)]
            try:
                arenagrad.grad(small, small)
            except RuntimeError:
                seen["refused"] += 1
        stop = threading.Event()
        def other_thread():
            a = Value(0.5); y = a
            for _ in range(5000):
                y = (y * 1.0001).tanh() + a
            while not stop.is_set():
                y.backward(); arenagrad.grad(y, a)
        want = [[g.data for g in arenagrad.grad(root, inputs)] for root, inputs, _ in graphs]
        t = threading.Thread(target=other_thread); t.start()
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        bad, deadline = 0, time.monotonic() + 60
        while seen["ran"] < 200 and time.monotonic() < deadline:
            for (root, inputs, _), w in zip(graphs, want):
                bad += [g.data for g in arenagrad.grad(root, inputs)] != w
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        stop.set(); t.join()
        print("bad", bad, "changed", seen["changed"], "ran", seen["ran"] >= 200)
    """)
    assert out.split() == ["bad", "0", "changed", "0", "ran", "True"]


# ---- the README's examples, run as written ---------------------------------------------------

def test_readme_higher_order_examples_run_and_print_what_they_say(capsys):
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Higher-order gradients\n")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace = {}
    for block in blocks:
        exec(block, namespace)
    newton, penalty = capsys.readouterr().out.split("\n")[:2]
    x = float(newton)
    assert newton.startswith("1.1309") and abs(4 * x**3 - 6 * x + 1) < 1e-12
    first, last = (float(v) for v in penalty.split())
    assert round(first, 1) == 22.0 and round(last, 2) == 0.56


def test_grad_storage_kept_between_calls_is_counted_and_trimmed():
    """grad() keeps its depth table's storage for the next call: memory_stats() counts it and
    trim() gives it back."""
    a = Value(0.5)
    y = a
    for _ in range(200_000):
        y = y * 1.0
    arenagrad.trim()
    before = arenagrad.memory_stats()["bytes"]
    (g,) = arenagrad.grad(y, [a])
    assert g.data == 1.0
    kept = arenagrad.memory_stats()["bytes"] - before
    assert kept >= 200_000 * 8 - 64  # at least one double per depth
    arenagrad.trim()
    assert arenagrad.memory_stats()["bytes"] <= before

"""Walks (backward, zero_grad, recompute, trim, grad) under interrupts, exceptions and signal handlers
(README "Threads, signals and memory"; cpp/walk.hpp [W1], [W2]).

* Grad mode belongs to a thread: no_grad() in one thread never changes recording in another.
* Caches are all or nothing: an exception half-way through the first zero_grad()/recompute() of
  a root caches nothing, and the next call gives the right numbers.
* Python code run inside a walk (a signal handler) that starts another walk gets RuntimeError;
  the outer walk then completes or raises, and the engine stays usable.
* Backward costs O(reachable nodes), whatever unrelated graphs are alive.

`arenagrad._core._run_in_poll(n, fn)` runs fn where the n-th signal check of the walks runs
Python's signal handlers: a deterministic stand-in for a signal arriving at that moment.
Timer-driven runs with real signals are in subprocesses.
"""
import gc
import sys
import threading

import pytest

import arenagrad
from arenagrad import _core
from arenagrad.engine import Value
from arenagrad.reference.engine import Value as RefValue
from conftest import run_in_subprocess


def chain(V, n, x=0.5):
    a = V(x)
    y = a
    for _ in range(n):
        y = y * 1.0 + a * 0.001
    return a, y


def assert_grad_is_the_reference(a, n):
    """a.grad is what one backward() through the reference's chain(n) gives its leaf."""
    ra, ry = chain(RefValue, n)
    ry.backward()
    assert a.grad == pytest.approx(ra.grad, rel=1e-12)


def assert_backward_again_is_the_reference(a, y):
    """The engine is usable and right afterwards: y = chain(Value, 50)'s graph, zeroed and
    backpropagated again, gives `a` the reference's gradient."""
    y.zero_grad()
    y.backward()
    assert_grad_is_the_reference(a, 50)


# ---- grad mode per thread ----

def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    entered, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with arenagrad.no_grad():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold_no_grad)
    t.start()
    try:
        assert entered.wait(10)
        w, x = Value(3.0), Value(5.0)
        loss = w * 2.0 + w * x  # a number operand, and two Values (the operator's fast path)
        assert loss._prev and all(v._prev for v in loss._prev)  # recorded while the other
        loss.backward()                                          # thread is inside no_grad()
        assert (w.grad, x.grad) == (7.0, 3.0)
    finally:
        release.set()
        t.join()


def test_no_grad_applies_in_its_own_thread_while_another_records():
    results = []

    def worker():
        with arenagrad.no_grad():
            a, b = Value(1.0), Value(2.0)
            results.extend(bool(v._prev) for v in (a * 2.0, a * b, a + b))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert results == [False, False, False]
    a, b = Value(1.0), Value(2.0)
    assert (a * 2.0)._prev and (a * b)._prev and (a + b)._prev


def test_no_grad_per_thread_under_fine_switching():
    """Two threads toggling no_grad() and checking their own mode, switching every µs."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors = []

    def worker(inside):
        for _ in range(2000):
            a, b = Value(1.0), Value(2.0)
            if inside:
                with arenagrad.no_grad():
                    if (a + 1.0)._prev or (a * b)._prev or (a + b)._prev:
                        errors.append("recorded inside no_grad")
            elif not ((a + 1.0)._prev and (a * b)._prev and (a + b)._prev):
                errors.append("not recorded outside no_grad")

    threads = [threading.Thread(target=worker, args=(k,)) for k in (True, False)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


# ---- caches: all or nothing ----

@pytest.mark.parametrize("first", ["zero_grad", "recompute"])
@pytest.mark.parametrize("at", [1, 7, 50])
def test_interrupted_first_walk_caches_nothing(poll_every_node, first, at):
    a, y = chain(Value, 40)
    ra, ry = chain(RefValue, 40)
    y.backward()
    _core._run_in_poll(at, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        getattr(y, first)()
    # the next calls build the whole order and give the numbers of a rebuilt graph
    a.data = 2.0
    y.recompute()
    y.grad = a.grad = 5.0
    y.zero_grad()
    assert y.grad == 0.0 and a.grad == 0.0
    ra, ry = chain(RefValue, 40, 2.0)
    assert y.data == ry.data
    y.backward()
    ry.backward()
    assert a.grad == pytest.approx(ra.grad, rel=1e-12)


def test_interrupted_zero_grad_then_zero_grad_zeroes_the_root(poll_every_node):
    """A reported repro: the root's grad stayed 5.0 after a partial cached order."""
    a, y = chain(Value, 30)
    y.grad = 5.0
    _core._run_in_poll(3, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        y.zero_grad()
    y.grad = 5.0
    y.zero_grad()
    assert y.grad == 0.0


def test_interrupted_recompute_restores_and_then_recomputes_fully(poll_every_node):
    x = Value(1.0)
    y = (x * 2.0 + 1.0).tanh() * 3.0
    before = y.data
    x.data = 0.5
    _core._run_in_poll(2, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        y.recompute()
    assert y.data == before  # nothing half-done
    y.recompute()
    r = RefValue(0.5)
    assert y.data == ((r * 2.0 + 1.0).tanh() * 3.0).data


# ---- nested walks from a handler ----

def walk(name, root, leaf):
    """Runs the walk `name` from `root` (grad(): d root / d leaf); returns grad()'s number."""
    if name == "trim":
        return arenagrad.trim()
    if name == "grad":
        return arenagrad.grad(root, leaf).data
    return getattr(root, name)()


@pytest.mark.parametrize("outer", ["backward", "zero_grad", "recompute", "grad"])
@pytest.mark.parametrize("nested", ["backward", "zero_grad", "recompute", "trim", "grad"])
def test_walk_inside_a_walk_raises_runtime_error(poll_every_node, outer, nested):
    a, y = chain(Value, 50)
    b, other = chain(Value, 5)
    seen = []

    def handler():
        try:
            walk(nested, other, b)
        except RuntimeError as e:
            seen.append(str(e))

    _core._run_in_poll(10, handler)
    got = walk(outer, y, a)  # the handler swallowed its error: the outer walk completes
    assert len(seen) == 1 and "another" in seen[0]
    if outer == "grad":
        ra, ry = chain(RefValue, 50)
        ry.backward()
        assert got == pytest.approx(ra.grad, rel=1e-12)
    for v in (a, b, y, other):
        v.grad = 0.0
    assert_backward_again_is_the_reference(a, y)


def test_handler_error_stops_the_outer_walk_which_raises_it(poll_every_node):
    a, y = chain(Value, 50)
    _core._run_in_poll(5, lambda: y.backward())  # nested: RuntimeError, not swallowed
    with pytest.raises(RuntimeError, match="another"):
        y.backward()
    a.grad = 0.0
    assert_backward_again_is_the_reference(a, y)


def test_handler_building_and_freeing_nodes_during_a_walk(poll_every_node):
    """A handler may build and drop graphs (no walk): the outer walk is unaffected."""
    a, y = chain(Value, 50)
    junk = []

    def handler():
        junk.append([Value(float(i)) * 2.0 for i in range(500)])
        del junk[:-1]

    for k in (3, 20, 60):
        _core._run_in_poll(k, handler)
    y.backward()
    assert_grad_is_the_reference(a, 50)


def test_signal_handler_walks_during_a_long_backward_never_crash():
    """A reported repro with real signals: a 3e6-node chain, a 5 ms timer whose handler calls
    backward(), zero_grad() or trim(). Every run ends normally (exit 0)."""
    out = run_in_subprocess("""
        import signal
        import arenagrad
        from arenagrad.engine import Value
        a = Value(0.5); y = a
        for _ in range(1_000_000):
            y = y * 1.0
        small = Value(2.0) * 3.0
        calls = {"ok": 0, "refused": 0}
        def handler(signum, frame):
            for f in (small.backward, small.zero_grad, arenagrad.trim):
                try:
                    f(); calls["ok"] += 1
                except RuntimeError:
                    calls["refused"] += 1
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
        for _ in range(3):
            y.backward(); y.zero_grad()
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        a.grad = 0.0; y.zero_grad(); y.backward()
        assert a.grad == 1.0, a.grad
        print("refused", calls["refused"], "ok", calls["ok"])
    """)
    assert out.startswith("refused")


def test_other_thread_walk_waits_for_the_running_one(poll_every_node):
    """A walk from another thread while one is running (here: while its handler runs Python)
    waits for it instead of clobbering its marks, and both give the right grads."""
    a, y = chain(Value, 200)
    b, z = chain(Value, 200, 0.25)
    done = threading.Event()

    def other_thread():
        z.backward()
        done.set()

    t = threading.Thread(target=other_thread)

    def handler():
        t.start()
        done.wait(0.2)  # releases the GIL: the other thread runs, and must wait for us

    _core._run_in_poll(50, handler)
    y.backward()
    t.join(10)
    assert done.is_set()
    for leaf, start in ((a, 0.5), (b, 0.25)):
        ra, ry = chain(RefValue, 200, start)
        ry.backward()
        assert leaf.grad == pytest.approx(ra.grad, rel=1e-12)


# ---- backward costs what the graph costs ----

def test_small_backward_reads_few_slots_beside_a_huge_graph():
    """A reported repro: a 3-node graph's backward read every slot of an unrelated 5e6-node
    graph allocated between its nodes. Now it reads O(its own nodes)."""
    gc.collect()
    a = Value(2.0)
    h = a * 1.0                      # a non-leaf below the big graph
    big = [Value(float(i)) for i in range(300_000)]
    big_sum = arenagrad.sum(big)     # noqa: F841 - alive in between
    y = h * 2.0
    y.backward()
    route, slots = _core._last_backward()
    assert a.grad == 2.0
    assert slots < 2_000, (route, slots)


def test_small_backward_beside_a_huge_graph_with_out_of_order_nodes():
    holes = [Value(0.0) for _ in range(64)]
    x = Value(2.0)
    h = x * x
    del holes
    z = h * 1.0   # lower slot than h: out of order
    assert arenagrad.memory_stats()["out_of_order_nodes"] > 0
    a = Value(3.0)
    k = a * 1.0
    big = [Value(float(i)) for i in range(300_000)]
    y = k * 2.0
    y.backward()
    route, slots = _core._last_backward()
    assert a.grad == 2.0
    assert slots < 2_000, (route, slots)
    del big, z


def test_dense_graphs_keep_the_scan_route():
    """The bound never triggers on the bench's dense shapes: a chain and an MLP graph."""
    a, y = chain(Value, 10_000)
    y.backward()
    assert _core._last_backward()[0] in ("scan", "checked scan")


def test_sparse_graph_falls_back_and_matches_reference():
    """Nodes spread out among unrelated ones: the scan gives up, the rest is swept in
    topological order, and the grads are the reference's."""
    a, ra = Value(0.7), RefValue(0.7)
    y, ry = a, ra
    spacers = []
    for i in range(200):
        y, ry = (y * 1.01 + a).tanh(), (ry * 1.01 + ra).tanh()
        spacers.append([Value(0.0) for _ in range(200)])
    y.backward()
    ry.backward()
    assert _core._last_backward()[0] == "topological order"
    assert a.grad == pytest.approx(ra.grad, rel=1e-12)

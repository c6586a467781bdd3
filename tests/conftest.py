"""Shared fixtures and comparison helpers.

Chain of oracles: finite differences check arenagrad.reference, the reference checks the C++
engine. Forward values are compared bit for bit (both engines evaluate the same IEEE
expression), gradients to 1e-12 relative (accumulation order may differ between engines).
"""
import gc
import importlib
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from arenagrad.demo import max_margin_loss

settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
settings.register_profile("stress", deadline=None, max_examples=5000)  # --hypothesis-profile=stress
# The quick pass .ci/run makes on its other interpreters: ARENAGRAD_HYPOTHESIS=fast.
settings.register_profile("fast", deadline=None, max_examples=10, derandomize=True)
settings.load_profile(os.environ.get("ARENAGRAD_HYPOTHESIS")
                      or ("ci" if os.environ.get("CI") else "dev"))

# hypothesis imports libcst to report a failing example; with this environment's libcst that
# import warns (DeprecationWarning), which pytest's "error" filter turns into an INTERNALERROR
# that hides the failure. Import it once here, warnings silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

def pytest_collection_finish(session):
    """Moves everything alive after collection (modules, strategies, test functions) out of the
    collector's reach: the many tests that gc.collect() to count live nodes exactly then walk
    only the objects made since, not the whole test session (gc.freeze)."""
    gc.collect()
    gc.freeze()


ENGINES = {"reference": "arenagrad.reference.engine", "arenagrad": "arenagrad.engine"}

GRAD_REL = 1e-12    # README's claim for gradients ("Testing")
GRAD_ABS = 1e-12    # floor for gradients that are ~0 (relative error is meaningless there)


@pytest.fixture(params=list(ENGINES), ids=list(ENGINES))
def engine(request):
    """One test body, two engines: the engine module (its `.Value` is the class under test)."""
    return importlib.import_module(ENGINES[request.param])


@pytest.fixture(scope="session")
def ref():
    return importlib.import_module("arenagrad.reference.engine")


@pytest.fixture(scope="session")
def ag():
    return importlib.import_module("arenagrad.engine")


@pytest.fixture(scope="session")
def arenagrad_pkg():
    return importlib.import_module("arenagrad")


def nn_of(engine):
    """The nn module that goes with an engine module (reference.engine -> reference.nn)."""
    return importlib.import_module(engine.__name__.rsplit(".", 1)[0] + ".nn")


# ---- comparison helpers, the only ones (each one has a test in test_ops_against_reference.py
# ---- proving it rejects a wrong number)

def same_float(x, y):
    """Bit-level equality for forward values: equal with the same sign of zero, or both NaN."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def assert_same(got, want, what="value"):
    assert same_float(got, want), f"{what}: got {got!r}, want {want!r} (must be bit-identical)"


def close_float(got, want, rel=GRAD_REL, abs_floor=GRAD_ABS):
    if math.isnan(got) or math.isnan(want) or math.isinf(got) or math.isinf(want):
        return same_float(got, want) or got == want
    return abs(got - want) <= max(rel * max(abs(got), abs(want)), abs_floor)


def assert_close(got, want, rel=GRAD_REL, abs_floor=GRAD_ABS, what="grad"):
    assert close_float(got, want, rel, abs_floor), (
        f"{what}: got {got!r}, want {want!r} (rel {rel}, abs floor {abs_floor})")


# ---- models and the notebook's training loss, one definition each

def seeded_mlp(nn, nin, nouts, seed):
    """`nn.MLP(nin, nouts)` with the weights `random.seed(seed)` draws (both engines' nn draw
    the same weights from the same seed)."""
    random.seed(seed)
    return nn.MLP(nin, nouts)


def demo_loss(model, X, y, Value):
    """The notebook's full-batch forward: (max-margin loss, the scores), inputs as `Value`s."""
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    return max_margin_loss(model, scores, y), scores


def micrograd_demo(nn, X, y, steps, stop=None, seed=1337):
    """micrograd's demo notebook on the engine of `nn` ("arenagrad.nn" or its reference):
    the per-step (loss, accuracy), for steps 0..stop-1 of a `steps`-step learning-rate decay."""
    Value = importlib.import_module(nn.rsplit(".", 1)[0] + ".engine").Value
    model = seeded_mlp(importlib.import_module(nn), 2, [16, 16, 1], seed)  # 2-layer network
    history = []
    for k in range(steps if stop is None else stop):
        total_loss, scores = demo_loss(model, X, y, Value)
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9*k/steps
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, sum(accuracy) / len(accuracy)))
    return history


def describe(v):
    """The graph below v as text: leaves by label (constants by value), nodes as op(children)."""
    if not v._prev:
        return v.label or repr(v.data)
    return f"{v._op}({', '.join(sorted(describe(c) for c in v._prev))})"


def build(Value, expr, data):
    """Leaves labelled a, b, c, ... holding `data`, and the root `expr(*leaves)`."""
    leaves = [Value(x, label=name) for name, x in zip("abcdefgh", data)]
    return leaves, expr(*leaves)


def assert_same_run(got_leaves, got_root, want_leaves, want_root):
    """Root value bit for bit, graph structure and op strings equal, every leaf grad close."""
    assert_same(got_root.data, want_root.data, "root data")
    assert describe(got_root) == describe(want_root)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert_same(g.data, w.data, f"data of leaf {w.label}")
        assert_close(g.grad, w.grad, what=f"grad of leaf {w.label}")


def compare_engines(ag, ref, expr, *data, backwards=1):
    """Build expr over the same leaves in both engines, run backward() `backwards` times in
    each, and check arenagrad against the reference."""
    runs = []
    for engine in (ag, ref):
        leaves, root = build(engine.Value, expr, data)
        for _ in range(backwards):
            root.backward()
        runs.append((leaves, root))
    assert_same_run(*runs[0], *runs[1])
    return runs


def reachable(roots):
    """Every node reachable from `roots` (iterative walk over `_prev`)."""
    seen, stack = set(), list(roots)
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(v._prev)
    return seen


def ctrl_c_during(step, delay):
    """Calls step() again and again while a Timer sends SIGINT `delay` s in (as Ctrl-C would):
    True once KeyboardInterrupt is raised, False if none came within 60 s. The caller installs
    signal.default_int_handler (main thread, POSIX)."""
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    deadline = time.monotonic() + 60
    timer.start()
    try:
        while time.monotonic() < deadline:
            step()
    except KeyboardInterrupt:
        return True
    finally:
        timer.cancel()
        timer.join()
    return False


def run_in_subprocess(code):
    """Runs `code` (dedented) in a fresh interpreter; its stdout. It must exit 0."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_lockstep(machine, max_examples, steps):
    """Runs a state machine that keeps the two engines in lockstep: the same examples every run
    (derandomized), no deadline (a step may build a large graph)."""
    run_state_machine_as_test(machine, settings=settings(
        max_examples=max_examples, stateful_step_count=steps, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.fixture
def poll_every_node():
    """The walks check for signals at every node (and run what _run_in_poll() set there)."""
    from arenagrad import _core
    _core._set_poll_interval(1)
    yield
    _core._set_poll_interval(2**20)
    _core._run_in_poll(0)

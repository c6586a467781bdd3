"""Threads and Ctrl-C: the engine's contract with the interpreter.

Every engine entry point runs with the GIL held (the C++ engine never releases it) over one
process-wide arena, so two threads building and backpropagating separate graphs interleave op by
op and get exactly the numbers of a single-threaded run. A long backward() polls for signals
(every 2^20 nodes): Ctrl-C raises KeyboardInterrupt from inside it, leaving that graph's grads
partly accumulated, and the engine stays usable.
"""
import random
import signal
import sys
import threading

import pytest

import arenagrad
from arenagrad.datasets import make_moons
from arenagrad.engine import Value
from arenagrad.nn import MLP
from arenagrad.reference.engine import Value as RefValue
from conftest import ctrl_c_during, demo_loss, max_margin_loss

THREAD_SEEDS = (1337, 2024)  # one training run per thread
THREAD_STEPS = 300
N_POINTS = 30


def make_run(seed):
    """Data and model for one training run; built up front, since random.seed is global."""
    X, y = make_moons(n_samples=N_POINTS, noise=0.1, seed=seed)
    random.seed(seed)
    return X.tolist(), [float(t) for t in y], MLP(2, [16, 16, 1])


def train(run, steps, log=None, name=None):
    """micrograd's demo loop (max-margin loss + L2, SGD); returns the loss of every step."""
    X, y, model = run
    params = model.parameters()
    losses = []
    for k in range(steps):
        total_loss, _ = demo_loss(model, X, y, Value)
        model.zero_grad()
        total_loss.backward()
        for p in params:
            p.data -= (1.0 - 0.9*k/steps) * p.grad
        losses.append(total_loss.data)
        if log is not None:
            log.append(name)
    return losses, [p.data for p in params]


@pytest.fixture
def fast_switching():
    """Make the GIL switch threads every microsecond, so two threads interleave finely."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def close(got, want, rel=1e-12):
    return all(abs(g - w) <= rel * max(abs(g), abs(w), 1.0) for g, w in zip(got, want))


def test_two_threads_training_match_single_threaded_runs(fast_switching):
    """Seeds 1337 and 2024, 300 steps each, in two threads at once vs one after the other:
    the first loss bit for bit, every loss and final weight to 1e-12 relative. (Not all bits:
    backward's summation order follows arena slots, which the other thread's frees reshuffle;
    see test_interleaved_graphs_backward_bitwise_equal_to_sequential.)"""
    want = [train(make_run(seed), THREAD_STEPS) for seed in THREAD_SEEDS]

    runs = [make_run(seed) for seed in THREAD_SEEDS]
    results, errors, log = {}, [], []

    def work(i):
        try:
            results[i] = train(runs[i], THREAD_STEPS, log, i)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    switches = sum(a != b for a, b in zip(log, log[1:]))
    assert switches >= 10, f"the threads did not interleave (only {switches} switches)"
    for i, seed in enumerate(THREAD_SEEDS):
        got_losses, got_params = results[i]
        want_losses, want_params = want[i]
        assert got_losses[0] == want_losses[0], f"seed {seed}: first forward pass differs"
        assert len(got_losses) == THREAD_STEPS
        assert close(got_losses, want_losses), f"seed {seed}: losses differ beyond 1e-12"
        assert close(got_params, want_params), f"seed {seed}: weights differ beyond 1e-12"


def train_steps_interleaved(run, steps, losses):
    """train() as a generator that yields after every sample's forward and after backward, so
    that two runs can be interleaved in one thread, deterministically."""
    X, y, model = run
    params = model.parameters()
    for k in range(steps):
        scores = []
        for x in X:
            scores.append(model(list(map(Value, x))))
            yield
        total_loss = max_margin_loss(model, scores, y)
        model.zero_grad()
        total_loss.backward()
        yield
        for p in params:
            p.data -= (1.0 - 0.9*k/steps) * p.grad
        losses.append(total_loss.data)


@pytest.mark.xfail(strict=True, reason="engine: once a graph's slot ids stop following its "
                   "creation order (another graph freed lower slots meanwhile), backward sums "
                   "into shared operands in another order; grads differ in the last bits, "
                   "within README \"Testing\"'s 1e-12")
def test_interleaved_graphs_backward_bitwise_equal_to_sequential():
    """Single-threaded, deterministic version of the two-thread run: seeds 1337 and 2024
    interleaved sample by sample, 100 steps, against each run alone."""
    want = [train(make_run(seed), 100)[0] for seed in THREAD_SEEDS]
    got = [[] for _ in THREAD_SEEDS]
    live = [train_steps_interleaved(make_run(seed), 100, out)
            for seed, out in zip(THREAD_SEEDS, got)]
    while live:
        for g in list(live):
            if next(g, StopIteration) is StopIteration:
                live.remove(g)
    assert got == want


def test_two_threads_leave_live_nodes_at_baseline(fast_switching):
    base = arenagrad.live_nodes()
    runs = [make_run(seed) for seed in THREAD_SEEDS]
    threads = [threading.Thread(target=train, args=(run, 50)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n_params = sum(len(run[2].parameters()) for run in runs)
    assert arenagrad.live_nodes() == base + n_params
    del runs, threads
    assert arenagrad.live_nodes() == base


CHAIN_LINKS = 1_500_000  # y = y + 1.0: a constant leaf and a '+' node per link, 3e6 nodes


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="Python handles signals in the main thread only")
def test_ctrl_c_interrupts_long_backward_and_engine_recovers():
    """A Timer sends SIGINT 0.2 s into a loop of backward() calls on a 3e6-node chain."""
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        base = arenagrad.live_nodes()
        x = Value(0.5)
        root = x
        for _ in range(CHAIN_LINKS):
            root = root + 1.0
        assert arenagrad.live_nodes() - base == 2 * CHAIN_LINKS + 1

        # x is the deepest node, reached last in every pass: its grad after each complete pass is
        # recorded; interrupted inside backward(), x keeps the previous pass's grad.
        leaf_grads = [0.0]

        def step():
            root.backward()
            leaf_grads.append(x.grad)
        assert ctrl_c_during(step, 0.2), "no KeyboardInterrupt within 60 s"
        assert root.grad == 1.0
        assert x.grad == leaf_grads[-1], (
            "KeyboardInterrupt was not raised from inside backward(): the pass completed")

        # the engine is usable: a new graph builds and backpropagates as the reference does
        results = []
        for V in (Value, RefValue):
            a, b = V(2.0), V(-3.0)
            out = (a * b + a.tanh()).exp() + (a ** 2) / b
            out.backward()
            results.append((out.data, a.grad, b.grad))
        (got, *got_grads), (want, *want_grads) = results
        assert got == want  # forward: bit for bit; grads: 1e-12 relative (summation order)
        assert all(abs(g - w) <= 1e-12 * abs(w) for g, w in zip(got_grads, want_grads))
        del a, b, out

        del x, root
        assert arenagrad.live_nodes() == base
    finally:
        signal.signal(signal.SIGINT, old_handler)

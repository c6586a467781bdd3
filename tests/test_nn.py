"""arenagrad.nn against the reference nn: same weights, same forward bits, same gradients, same
training trajectories; and micrograd's attributes, reprs and return shapes."""
import importlib
import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from arenagrad import engine as ag_engine
from arenagrad import nn as ag_nn
from arenagrad.datasets import make_moons
from arenagrad.reference import engine as ref_engine
from arenagrad.reference import nn as ref_nn
from conftest import assert_close, assert_same, micrograd_demo, seeded_mlp

SHAPES = [(1, [1]), (2, [16, 16, 1]), (3, [4, 4, 1]), (5, [3]), (4, [7, 2]), (2, [1, 1, 1])]
SEEDS = [0, 1337, 2024]


def outputs(out):
    """A Layer/MLP result as a list (a one-neuron layer returns a bare Value)."""
    return out if isinstance(out, list) else [out]


# ---- same seed, same model ----

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nin,nouts", SHAPES)
def test_weights_equal_reference_same_seed(nin, nouts, seed):
    got = [p.data for p in seeded_mlp(ag_nn, nin, nouts, seed).parameters()]
    got_next = random.random()
    want = [p.data for p in seeded_mlp(ref_nn, nin, nouts, seed).parameters()]
    want_next = random.random()
    assert got == want
    assert got_next == want_next  # both drew exactly the same numbers from `random`


def test_weights_differ_different_seed():
    a = [p.data for p in seeded_mlp(ag_nn, 2, [4, 1], 1).parameters()]
    b = [p.data for p in seeded_mlp(ag_nn, 2, [4, 1], 2).parameters()]
    assert a != b


# ---- forward bit for bit, gradients to 1e-12 (hypothesis) ----

def make_input(engine, kind, xs):
    if kind == "float":
        return list(xs)
    if kind == "tuple":
        return tuple(xs)
    if kind == "numpy":
        return np.array(xs, dtype=np.float64)
    return [engine.Value(x) for x in xs]  # "value": gradients flow into these too


def forward_backward(nn, engine, nin, nouts, seed, kind, xs):
    model = seeded_mlp(nn, nin, nouts, seed)
    x = make_input(engine, kind, xs)
    outs = outputs(model(x))
    root = outs[0] if len(outs) == 1 else sum(o * (i + 1) for i, o in enumerate(outs))
    root.backward()
    return model, x, outs


mlp_cases = st.integers(1, 5).flatmap(lambda nin: st.tuples(
    st.just(nin),
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["float", "tuple", "numpy", "value"]),
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=nin, max_size=nin),
))


@given(mlp_cases)
def test_forward_and_grads_equal_reference_random_mlp(case):
    nin, nouts, seed, kind, xs = case
    got_model, got_x, got = forward_backward(ag_nn, ag_engine, nin, nouts, seed, kind, xs)
    want_model, want_x, want = forward_backward(ref_nn, ref_engine, nin, nouts, seed, kind, xs)
    assert len(got) == len(want) == nouts[-1]
    for g, w in zip(got, want):
        assert_same(g.data, w.data, "output")
    for g, w in zip(got_model.parameters(), want_model.parameters()):
        assert_close(g.grad, w.grad, what="parameter grad")
    if kind == "value":
        for g, w in zip(got_x, want_x):
            assert_close(g.grad, w.grad, what="input grad")


def test_input_values_receive_grads_value_inputs():
    random.seed(3)
    model = ag_nn.MLP(2, [1])  # linear: d out / d x_i = w_i
    x = [ag_engine.Value(0.5), ag_engine.Value(-2.0)]
    model(x).backward()
    assert [xi.grad for xi in x] == [w.data for w in model.layers[0].neurons[0].w]


def test_input_values_are_operands_value_inputs():
    random.seed(3)
    x = [ag_engine.Value(0.5), ag_engine.Value(-2.0)]
    out = ag_nn.Neuron(2, nonlin=False)(x)
    reachable, stack = {}, [out]  # id -> Value: holding them keeps the ids unique
    while stack:
        v = stack.pop()
        for c in v._prev:
            if id(c) not in reachable:
                reachable[id(c)] = c
                stack.append(c)
    assert reachable.get(id(x[0])) is x[0] and reachable.get(id(x[1])) is x[1]


# ---- training trajectories ----

# The lecture's training loop, verbatim (README "Testing": the lecture's loop); only the import
# changes. The one added line (marked) records the loss of every step.
LECTURE_LOOP = """\
from {nn} import MLP

xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]

n = MLP(3, [4, 4, 1])           # 3 inputs, 2 hidden layers, 1 output

for k in range(20):

    # 1) FORWARD PASS <- compute predictions and loss
    ypred = [n(x) for x in xs]
    loss = sum((yout - ygt)**2 for ygt, yout in zip(ys, ypred))

    # 2) ZERO GRADIENTS <- reset gradients from previous step
    for p in n.parameters():
        p.grad = 0.0

    # 3) BACKWARD PASS <- topologically sorted chain rule
    loss.backward()

    # 4) GRADIENT DESCENT <- parameter update using gradients
    for p in n.parameters():
        p.data += -0.1 * p.grad

    losses.append(loss.data)  # added: record the trajectory

print(k, loss.data)
"""


def run_lecture_loop(nn, seed):
    random.seed(seed)
    scope = {"losses": []}
    exec(LECTURE_LOOP.format(nn=nn), scope)
    return scope["losses"], scope["n"]


@pytest.mark.parametrize("seed", [0, 42])
def test_lecture_loop_equals_reference_trajectory(seed, capsys):
    got, got_model = run_lecture_loop("arenagrad.nn", seed)
    want, want_model = run_lecture_loop("arenagrad.reference.nn", seed)
    assert len(got) == len(want) == 20
    assert_same(got[0], want[0], "loss at step 0")  # same weights: same forward bits
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, rel=1e-9, what=f"loss at step {k}")
    for g, w in zip(got_model.parameters(), want_model.parameters()):
        assert_close(g.data, w.data, rel=1e-9, what="trained weight")
    assert got[-1] < got[0]  # it trains (seed 0 ends with dead ReLUs, as micrograd's would)
    printed = capsys.readouterr().out.split("\n")
    assert printed[0].startswith("19 ") and printed[1].startswith("19 ")


def assert_same_trajectory(got, want):
    assert len(got) == len(want)
    assert_same(got[0][0], want[0][0], "loss at step 0")
    for k, ((gl, ga), (wl, wa)) in enumerate(zip(got, want)):
        assert_close(gl, wl, rel=1e-9, what=f"loss at step {k}")
        assert ga == wa, f"accuracy at step {k}: got {ga}, want {wa}"


def test_demo_first_steps_equal_reference_100_points():
    # The reference takes ~1 s per step at 100 points: 5 of the 100 steps.
    X, y = make_moons(n_samples=100, noise=0.1, seed=1337)
    got = micrograd_demo("arenagrad.nn", X, y, steps=100, stop=5)
    want = micrograd_demo("arenagrad.reference.nn", X, y, steps=100, stop=5)
    assert_same_trajectory(got, want)


def test_demo_100_steps_equal_reference_10_points():
    X, y = make_moons(n_samples=10, noise=0.1, seed=1337)
    got = micrograd_demo("arenagrad.nn", X, y, steps=100)
    want = micrograd_demo("arenagrad.reference.nn", X, y, steps=100)
    assert_same_trajectory(got, want)
    assert got[-1][1] == 1.0


def test_trajectory_comparison_rejects_changed_loss():
    good = [(0.5, 0.9), (0.25, 1.0)]
    with pytest.raises(AssertionError):
        assert_same_trajectory([(0.5, 0.9), (0.25 * (1 + 1e-8), 1.0)], good)
    with pytest.raises(AssertionError):
        assert_same_trajectory([(0.5, 0.9), (0.25, 0.9)], good)


# ---- micrograd's API surface ----

def test_repr_mlp_micrograd_format():
    model = seeded_mlp(ag_nn, 2, [2, 1], 0)
    assert repr(model) == ("MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2)], "
                           "Layer of [LinearNeuron(2)]]")
    assert repr(model) == repr(seeded_mlp(ref_nn, 2, [2, 1], 0))


def test_attributes_mlp_micrograd_names():
    model = seeded_mlp(ag_nn, 3, [4, 2], 0)
    assert len(model.layers) == 2
    assert [len(layer.neurons) for layer in model.layers] == [4, 2]
    neuron = model.layers[1].neurons[0]
    assert len(neuron.w) == 4 and isinstance(neuron.b, ag_engine.Value)
    assert neuron.b.data == 0.0
    assert [n.nonlin for n in model.layers[0].neurons] == [True] * 4
    assert [n.nonlin for n in model.layers[1].neurons] == [False] * 2
    assert model.parameters() == [p for layer in model.layers for n in layer.neurons
                                  for p in n.w + [n.b]]


def test_return_shape_one_neuron_layer_is_value():
    random.seed(0)
    assert isinstance(ag_nn.Layer(2, 1)([1.0, 2.0]), ag_engine.Value)
    assert isinstance(ag_nn.MLP(2, [3, 1])([1.0, 2.0]), ag_engine.Value)


def test_return_shape_wide_layer_is_list():
    random.seed(0)
    out = ag_nn.Layer(2, 3)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    assert all(isinstance(o, ag_engine.Value) for o in out)
    assert len(ag_nn.MLP(2, [3, 2])([1.0, 2.0])) == 2


def test_return_shape_neuron_is_value():
    random.seed(0)
    assert isinstance(ag_nn.Neuron(2)([1.0, 2.0]), ag_engine.Value)


def test_parameters_same_objects_across_calls():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    first, second = model.parameters(), model.parameters()
    assert len(first) == 3 * 3 + 4
    assert all(a is b for a, b in zip(first, second))


def test_data_update_seen_by_next_forward():
    random.seed(0)
    neuron = ag_nn.Neuron(2, nonlin=False)
    before = neuron([1.0, 1.0]).data
    for p in neuron.parameters():
        p.data += 1.0
    assert neuron([1.0, 1.0]).data == before + 3.0
    neuron.b.data = 10.0
    assert neuron([0.0, 0.0]).data == 10.0


def test_data_update_seen_by_next_forward_mlp():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    ref = seeded_mlp(ref_nn, 2, [3, 1], 0)
    for p, q in zip(model.parameters(), ref.parameters()):
        p.data *= -0.5
        q.data *= -0.5
    assert_same(model([0.3, -0.7]).data, ref([0.3, -0.7]).data)


def test_zero_grad_resets_all_parameters():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    model([1.0, -1.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


@pytest.mark.parametrize("x", [[1.0], [1.0, 2.0, 3.0], (), np.zeros(3)])
def test_wrong_input_length_raises_value_error(x):
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    with pytest.raises(ValueError):
        model(x)


def test_wrong_input_length_raises_value_error_neuron():
    random.seed(0)
    with pytest.raises(ValueError):
        ag_nn.Neuron(3)([1.0, 2.0])


@pytest.mark.parametrize("bad", ["a", None, [1.0], 1j])
def test_non_numeric_element_raises_type_error(bad):
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    with pytest.raises(TypeError):
        model([1.0, bad])


def test_ref_value_element_raises_type_error():
    model = seeded_mlp(ag_nn, 2, [3, 1], 0)
    with pytest.raises(TypeError):
        model([1.0, ref_engine.Value(2.0)])

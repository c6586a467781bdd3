"""Modules hold no snapshot (README "Modules are plain objects"): a call of a Neuron, Layer or
MLP, `predict` and `parameters()` use the Values, lists, widths and `nonlin` flags the module
holds at the time of the call, exactly as micrograd's plain objects do. The C++ network behind
a call is a cache, checked before every use and rebuilt when stale (cpp/bindings.cpp [M1]).

Each test mutates an arenagrad model and a reference model the same way and compares them.
"""
import copy
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest

import arenagrad
from arenagrad import nn as ag_nn
from arenagrad.engine import Value
from arenagrad.reference import nn as ref_nn
from arenagrad.reference.engine import Value as RefValue
from conftest import assert_close, assert_same

X = [1.0, -2.0]


def twins(nin=2, nouts=(3, 1), seed=0):
    random.seed(seed)
    ag = ag_nn.MLP(nin, list(nouts))
    random.seed(seed)
    ref = ref_nn.MLP(nin, list(nouts))
    return ag, ref


def as_list(out):
    return out if isinstance(out, list) else [out]


def assert_same_call(ag, ref, x):
    """Same forward bits, same parameters (data), same grads after backward of the outputs."""
    got, want = as_list(ag(list(x))), as_list(ref(list(x)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_same(g.data, w.data, "output")
    assert [p.data for p in ag.parameters()] == [p.data for p in ref.parameters()]
    for root in (sum(got[1:], got[0]), sum(want[1:], want[0])):
        root.backward()
    for g, w in zip(ag.parameters(), ref.parameters()):
        assert_close(g.grad, w.grad)


# ---- reported repros ----

def test_replaced_weight_is_used_and_listed():
    ag, ref = twins()
    ag.layers[0].neurons[0].w[0] = Value(5.0)
    ref.layers[0].neurons[0].w[0] = RefValue(5.0)
    assert_same_call(ag, ref, X)
    assert ag.layers[0].neurons[0].w[0] in ag.parameters()


def test_replaced_bias_is_used():
    ag, ref = twins()
    before = ag(X).data
    ag.layers[1].neurons[0].b = Value(10.0)
    ref.layers[1].neurons[0].b = RefValue(10.0)
    assert ag(X).data == ref(X).data != before


def test_nonlin_flip_changes_the_activation():
    n = ag_nn.Neuron(2)
    for w in n.w:
        w.data = 1.0  # pre-activation 1 - 5 = -4
    x = [1.0, -5.0]
    assert n(x).data == 0.0
    n.nonlin = False
    assert repr(n) == "LinearNeuron(2)"
    assert n(x).data == -4.0
    n.nonlin = True
    assert n(x).data == 0.0


def test_replaced_layer_too_wide_raises_value_error_naming_it():
    ag, _ = twins()
    ag([1.0, 2.0])
    ag.layers[1] = ag_nn.Layer(100_000, 1)
    with pytest.raises(ValueError, match="layer 1"):
        ag([1.0, 2.0])
    with pytest.raises(ValueError, match="layer 1"):
        ag.predict([[1.0, 2.0]])


def test_replaced_layer_too_wide_never_crashes_in_a_subprocess():
    code = ("import arenagrad.nn as nn\n"
            "m = nn.MLP(2, [3, 1]); m([1.0, 2.0])\n"
            "m.layers[1] = nn.Layer(100_000, 1)\n"
            "for f in (lambda: m([1.0, 2.0]), lambda: m.predict([[1.0, 2.0]])):\n"
            "    try: f()\n"
            "    except ValueError: pass\n"
            "    else: raise SystemExit('no error')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- every kind of change, against the reference ----

def mutate(ag, ref, change, seed=7):
    """Applies `change(model, nn, Value)` to both models with the same random draws."""
    random.seed(seed)
    change(ag, ag_nn, Value)
    random.seed(seed)
    change(ref, ref_nn, RefValue)


CHANGES = {
    "weight": lambda m, nn, V: m.layers[0].neurons[1].w.__setitem__(1, V(0.25)),
    "bias": lambda m, nn, V: setattr(m.layers[0].neurons[2], "b", V(-3.0)),
    "new w list": lambda m, nn, V: setattr(m.layers[0].neurons[0], "w", [V(2.0), V(-1.0)]),
    "nonlin off": lambda m, nn, V: setattr(m.layers[0].neurons[1], "nonlin", False),
    "nonlin on": lambda m, nn, V: setattr(m.layers[1].neurons[0], "nonlin", True),
    "replace layer": lambda m, nn, V: m.layers.__setitem__(1, nn.Layer(3, 2)),
    "append layer": lambda m, nn, V: m.layers.append(nn.Layer(1, 4, nonlin=False)),
    "remove layer": lambda m, nn, V: (m.layers.pop(), m.layers[0].neurons.pop()),
    "new layers list": lambda m, nn, V: setattr(m, "layers", [nn.Layer(2, 1)]),
    "append neuron": lambda m, nn, V: (m.layers[0].neurons.append(nn.Neuron(2)),
                                       m.layers[1].neurons[0].w.append(V(0.5))),
    "remove neuron": lambda m, nn, V: (m.layers[0].neurons.pop(0),
                                       m.layers[1].neurons[0].w.pop(0)),
    "replace neuron": lambda m, nn, V: m.layers[1].neurons.__setitem__(0, nn.Neuron(3, False)),
    "shared weight": lambda m, nn, V: m.layers[0].neurons[0].w.__setitem__(
        0, m.layers[0].neurons[1].w[1]),
    "sorted w": lambda m, nn, V: m.layers[0].neurons[0].w.reverse(),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_change_takes_effect_on_next_call(change):
    ag, ref = twins()
    ag(X)  # build the cached network first: the change must make it stale
    mutate(ag, ref, CHANGES[change])
    assert_same_call(ag, ref, X)
    want = [v.data for v in as_list(ref(X))]
    np.testing.assert_array_equal(ag.predict(np.array([X, X])), np.array([want, want]).squeeze(-1)
                                  if len(want) == 1 else np.array([want, want]))


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_change_kept_by_pickle_and_deepcopy(change):
    ag, ref = twins()
    ag(X)
    mutate(ag, ref, CHANGES[change])
    for copied in (pickle.loads(pickle.dumps(ag)), copy.deepcopy(ag)):
        assert repr(copied) == repr(ag)
        assert [v.data for v in as_list(copied(X))] == [v.data for v in as_list(ref(X))]
        assert not set(map(id, copied.parameters())) & set(map(id, ag.parameters()))


def test_tuple_of_weights_is_used():
    ag, ref = twins()
    ag(X)
    ag.layers[0].neurons[0].w = (Value(2.0), Value(-1.0))
    ref.layers[0].neurons[0].w = [RefValue(2.0), RefValue(-1.0)]
    assert ag(X).data == ref(X).data
    assert [p.data for p in ag.parameters()] == [p.data for p in ref.parameters()]


def test_plain_float_weight_runs_micrograd_forward():
    """A weight that is a float (micrograd allows it: w*x is then float * float)."""
    ag, ref = twins()
    ag(X)
    ag.layers[0].neurons[0].w[0] = ref.layers[0].neurons[0].w[0] = 0.5
    assert ag(X).data == ref(X).data
    ag.layers[0].neurons[0].w[0] = Value(0.5)
    ref.layers[0].neurons[0].w[0] = RefValue(0.5)
    assert ag(X).data == ref(X).data
    assert ag._net.fresh()  # back on the C++ network


def test_parameters_reflect_changes_in_micrograd_order():
    ag, ref = twins()
    for change in ("append neuron", "new w list", "append layer"):
        mutate(ag, ref, CHANGES[change])
        assert [p.data for p in ag.parameters()] == [p.data for p in ref.parameters()]


def test_layer_and_neuron_called_directly_see_changes():
    random.seed(1)
    layer = ag_nn.Layer(2, 2)
    layer(X)
    layer.neurons[1].w[0] = Value(4.0)
    layer.neurons[0] = ag_nn.Neuron(2, nonlin=False)
    want = [n.b.data + sum(w.data * x for w, x in zip(n.w, X)) for n in layer.neurons]
    got = [v.data for v in layer(X)]
    assert got[0] == want[0]
    assert got[1] == max(0.0, want[1])


def test_neurons_of_different_widths_in_a_layer_raise_value_error():
    layer = ag_nn.Layer(2, 2)
    layer.neurons[1].w.append(Value(1.0))
    with pytest.raises(ValueError, match="neuron 1 takes 3 inputs"):
        layer(X)


def test_first_layer_width_is_the_input_length():
    ag, _ = twins()
    with pytest.raises(ValueError, match="expected 2 inputs"):
        ag([1.0, 2.0, 3.0])


def test_widths_fixed_again_work_again():
    ag, ref = twins()
    ag.layers[1].neurons[0].w.append(Value(1.0))
    with pytest.raises(ValueError):
        ag(X)
    ag.layers[1].neurons[0].w.pop()
    assert ag(X).data == ref(X).data


def test_input_length_is_checked_against_the_current_structure():
    """Found by the module fuzzer: a network built for 2 inputs, then its first layer removed
    in place; the next call must check the length against the new first layer."""
    random.seed(0)
    ag = ag_nn.MLP(1, [2, 1, 1])
    ag.layers.pop(0)
    with pytest.raises(ValueError, match="expected 2 inputs"):
        ag([0.5])
    ag.layers.pop(0)
    assert isinstance(ag([0.5]), Value)


def test_empty_mlp_and_empty_layer_raise_value_error():
    ag, _ = twins()
    ag.layers[0].neurons.clear()
    with pytest.raises(ValueError, match="layer 0 has no neurons"):
        ag(X)
    ag.layers.clear()
    with pytest.raises(ValueError, match="no layers"):
        ag(X)


def test_subclassed_module_runs_its_structure():
    """A module type the C++ network does not know runs micrograd's own forward."""
    class Scaled(ag_nn.Layer):
        pass

    ag, ref = twins()
    random.seed(5)
    scaled = Scaled(3, 1, nonlin=False)
    ag.layers[1] = scaled
    random.seed(5)
    ref.layers[1] = ref_nn.Layer(3, 1, nonlin=False)
    assert_same_call(ag, ref, X)


def test_unchanged_model_keeps_its_network():
    ag, _ = twins()
    ag(X)
    net = ag._net
    ag.layers[0].neurons[0].w[0].data = 3.0  # data, not structure
    ag(X)
    ag.other = 1                              # not a structural attribute
    ag(X)
    assert ag._net is net


def test_structure_check_rejects_a_stale_network():
    """The check can fail: a network built before a change reports itself stale."""
    ag, _ = twins()
    ag(X)
    net = ag._net
    assert net.fresh()
    ag.layers[0].neurons[0].w[1] = Value(0.0)
    assert not net.fresh()
    with pytest.raises(arenagrad._core.StaleNetwork):
        net(X)


def test_models_do_not_leak_nodes_after_changes():
    import gc
    gc.collect()
    before = arenagrad.live_nodes()
    ag, ref = twins()
    for change in sorted(CHANGES):
        try:
            mutate(ag, ref, CHANGES[change])
            ag(X)
        except (IndexError, ValueError):  # changes that no longer fit the model
            pass
    del ag, ref
    gc.collect()
    assert arenagrad.live_nodes() == before


# ---- complex input ----

@pytest.mark.parametrize("call", ["call", "predict", "load_state_dict"])
def test_complex_input_raises_type_error(call):
    ag, _ = twins()
    with pytest.raises(TypeError, match="complex"):
        if call == "call":
            ag(np.array([1 + 1j, 2.0]))
        elif call == "predict":
            ag.predict(np.array([[1 + 1j, 2.0]]))
        else:
            state = ag.state_dict()
            state["layers.0.bias"] = state["layers.0.bias"] + 1j
            ag.load_state_dict(state)

"""Stateful fuzzing of modules: an arenagrad MLP and a reference MLP, built from the same seed,
changed by the same random steps, compared after every step (cpp/bindings.cpp [M1]).

Steps replace weights and biases, assign new weight lists (other widths included), flip
`nonlin`, replace, append and remove layers and neurons, update parameters as training does,
copy the model (pickle, deepcopy), and make a forward pass fail with MemoryError part way.
After every step a forward pass gives the same output bits in both (or ValueError in both,
when widths don't fit), `predict` agrees with it, `parameters()` lists the same numbers in the
same order, and backward gives the same gradients. `bench/fuzz.py --modules` runs it longer.
"""
import copy
import gc
import pickle
import random

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import arenagrad
from arenagrad import _core
from arenagrad import nn as ag_nn
from arenagrad.engine import Value as AgValue
from arenagrad.reference import nn as ref_nn
from arenagrad.reference.engine import Value as RefValue
from conftest import close_float, run_lockstep, same_float

index = st.integers(0, 10**6)  # taken modulo the size of what it indexes
weights = st.floats(-2, 2, allow_nan=False)
seeds = st.integers(0, 2**32 - 1)
ENGINES = ((ag_nn, AgValue), (ref_nn, RefValue))


class ModulesInLockstep(RuleBasedStateMachine):

    steps_run = 0
    sequences_run = 0

    @initialize(nin=st.integers(1, 3), nouts=st.lists(st.integers(1, 4), min_size=1, max_size=3),
                seed=seeds)
    def build(self, nin, nouts, seed):
        type(self).sequences_run += 1
        gc.collect()
        self.baseline = arenagrad.live_nodes()
        self.nin = nin
        self.consistent = True
        self.models = []
        for nn, _ in ENGINES:
            random.seed(seed)
            self.models.append(nn.MLP(nin, list(nouts)))

    def both(self, change, seed=0):
        """change(model, nn, Value) on each model, with the same random draws."""
        type(self).steps_run += 1
        self.consistent = False
        for model, (nn, V) in zip(self.models, ENGINES):
            random.seed(seed)
            change(model, nn, V)

    # ---- structure ----

    @rule(k=index, j=index, i=index, x=weights)
    def replace_weight(self, k, j, i, x):
        def change(m, nn, V):
            n = pick(pick(m.layers, k).neurons, j)
            if n.w:
                n.w[i % len(n.w)] = V(x)
        self.both(change)

    @rule(k=index, j=index, x=weights)
    def replace_bias(self, k, j, x):
        self.both(lambda m, nn, V: setattr(pick(pick(m.layers, k).neurons, j), "b", V(x)))

    @rule(k=index, j=index, xs=st.lists(weights, min_size=0, max_size=5))
    def new_weight_list(self, k, j, xs):
        self.both(lambda m, nn, V: setattr(pick(pick(m.layers, k).neurons, j), "w",
                                           [V(x) for x in xs]))

    @rule(k=index, j=index)
    def flip_nonlin(self, k, j):
        def change(m, nn, V):
            n = pick(pick(m.layers, k).neurons, j)
            n.nonlin = not n.nonlin
        self.both(change)

    @rule(k=index, nin=st.integers(1, 4), nout=st.integers(1, 4), seed=seeds)
    def replace_layer(self, k, nin, nout, seed):
        self.both(lambda m, nn, V: m.layers.__setitem__(k % len(m.layers), nn.Layer(nin, nout)),
                  seed)

    @precondition(lambda self: len(self.models[1].layers) < 5)
    @rule(nin=st.integers(1, 4), nout=st.integers(1, 4), seed=seeds, nonlin=st.booleans())
    def append_layer(self, nin, nout, seed, nonlin):
        self.both(lambda m, nn, V: m.layers.append(nn.Layer(nin, nout, nonlin=nonlin)), seed)

    @precondition(lambda self: len(self.models[1].layers) > 1)
    @rule(k=index)
    def remove_layer(self, k):
        self.both(lambda m, nn, V: m.layers.pop(k % len(m.layers)))

    @rule(k=index, nin=st.integers(1, 4), seed=seeds)
    def append_neuron(self, k, nin, seed):
        self.both(lambda m, nn, V: pick(m.layers, k).neurons.append(nn.Neuron(nin)), seed)

    @rule(k=index, j=index)
    def remove_neuron(self, k, j):
        def change(m, nn, V):
            neurons = pick(m.layers, k).neurons
            if len(neurons) > 1:
                neurons.pop(j % len(neurons))
        self.both(change)

    # ---- state ----

    @rule(lr=st.floats(-1, 1))
    def sgd_step(self, lr):
        """Training's update, from arenagrad's grads (equal to the reference's to 1e-12, not
        always to the bit) into both models, so that their data stays identical."""
        type(self).steps_run += 1
        ag, ref = self.models
        for p, q in zip(ag.parameters(), ref.parameters()):
            p.data += -lr * p.grad
            q.data = p.data

    @rule(how=st.sampled_from(["pickle", "deepcopy"]))
    def copy_models(self, how):
        type(self).steps_run += 1
        self.consistent = False
        ag, ref = self.models
        ag = pickle.loads(pickle.dumps(ag)) if how == "pickle" else copy.deepcopy(ag)
        self.models = [ag, copy.deepcopy(ref)]  # reference Values hold closures: no pickle

    @rule(x=st.lists(weights, min_size=1, max_size=4), fail_at=st.integers(1, 60))
    def forward_out_of_memory(self, x, fail_at):
        """The fail_at-th node allocation of a forward pass fails: MemoryError and the arena
        holds what it held (or the pass needed fewer and ran)."""
        type(self).steps_run += 1
        before = arenagrad.live_nodes()
        _core._fail_allocation_after(fail_at)
        try:
            self.models[0](x)
        except (MemoryError, ValueError):
            pass
        finally:
            _core._fail_allocation_after(0)
        assert arenagrad.live_nodes() == before  # the partial graph is freed in C++, not by gc

    # ---- the comparison ----

    @invariant()
    def forward_and_backward_agree(self):
        ag, ref = self.models
        assert repr(ag) == repr(ref)
        x = [0.5 - 0.25 * i for i in range(self.nin)]
        (got, err_ag), (want, err_ref) = [call(m, x) for m in self.models]
        assert type(err_ag) is type(err_ref), f"arenagrad: {err_ag!r}, reference: {err_ref!r}"
        assert [p.data for p in ag.parameters()] == [p.data for p in ref.parameters()]
        if err_ag is not None:
            return
        got, want = as_list(got), as_list(want)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert same_float(g.data, w.data), f"output {g.data!r} != {w.data!r}"
        rows = ag.predict(np.array([x]))
        assert [float(v) for v in np.ravel(rows)] == [w.data for w in want]
        for m, outs in ((ag, got), (ref, want)):
            m.zero_grad()
            sum(outs[1:], outs[0]).backward()
        for g, w in zip(ag.parameters(), ref.parameters()):
            assert close_float(g.grad, w.grad), f"grad {g.grad!r} != {w.grad!r}"
        self.consistent = True

    def teardown(self):
        if not hasattr(self, "models") or not self.consistent:
            return  # a failed step's traceback still holds Values
        del self.models
        gc.collect()
        assert arenagrad.live_nodes() == self.baseline


def pick(seq, i):
    return seq[i % len(seq)]


def as_list(out):
    return out if isinstance(out, list) else [out]


def call(model, x):
    try:
        return model(x), None
    except ValueError as e:
        return None, e.with_traceback(None)


def test_modules_agree_under_random_changes():
    run_lockstep(ModulesInLockstep, max_examples=60, steps=25)


def test_module_machine_rejects_a_stale_forward():
    """The machine can fail: a model whose change was applied to one twin only is caught."""
    machine = ModulesInLockstep()
    machine.build(nin=2, nouts=[3, 1], seed=0)
    machine.models[0].layers[0].neurons[0].w[0] = AgValue(9.0)
    try:
        machine.forward_and_backward_agree()
    except AssertionError:
        return
    raise AssertionError("a one-sided change went unnoticed")

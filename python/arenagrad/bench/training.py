"""Training loops from Python: op-by-op graph building, micrograd's demo step, the lecture's loop.

The demo and the lecture's loop are written as micrograd's notebook and the lecture write them;
the engine's `Value` and `MLP` come in as arguments, which is the one import line a user changes.
"""
import random

import numpy as np

from ..datasets import make_moons
from ..demo import max_margin_loss
from .timing import collect, measure, scale


# --- op-by-op: acc = acc + w*x over 1,000 terms (2 ops a term) --------------------------------

def op_by_op(engine, repeats, terms=1000, number=None):
    """ns per op of `acc = acc + w*x` built from Python (`number` builds a sample)."""
    rng = random.Random(1234)
    w = [engine.Value(rng.uniform(-1, 1)) for _ in range(terms)]
    x = [engine.Value(rng.uniform(-1, 1)) for _ in range(terms)]
    Value = engine.Value

    def build():
        acc = Value(0.0)
        for wi, xi in zip(w, x):
            acc = acc + wi * xi
        return acc

    if number is None:
        number = 20 if engine.name == "arenagrad" else 2
    result = measure(build, repeats, number=number)
    collect()
    return {"ns_per_op": scale(result, 1 / (2 * terms)), "terms": terms}


# --- micrograd's demo notebook (demo.ipynb), one optimization step -------------------------------

def demo_setup(Value, MLP):
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1, seed=1337)
    model = MLP(2, [16, 16, 1])  # 2-layer neural network

    # loss function
    def loss(batch_size=None):

        # inline DataLoader :)
        if batch_size is None:
            Xb, yb = X, y
        else:
            ri = np.random.permutation(X.shape[0])[:batch_size]
            Xb, yb = X[ri], y[ri]
        inputs = [list(map(Value, xrow)) for xrow in Xb]

        # forward the model to get scores
        scores = list(map(model, inputs))

        # svm "max-margin" loss
        losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(yb, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum((p*p for p in model.parameters()))
        total_loss = data_loss + reg_loss

        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    def step(k):
        # forward
        total_loss, acc = loss()

        # backward
        model.zero_grad()
        total_loss.backward()

        # update (sgd)
        learning_rate = 1.0 - 0.9*k/100
        for p in model.parameters():
            p.data -= learning_rate * p.grad

        return total_loss.data, acc

    return step


def demo_step(engine, repeats, steps):
    """ms per step of micrograd's demo: `steps` steps a sample, after one warm-up step."""
    step = demo_setup(engine.Value, engine.MLP)
    k = [0]

    def one():
        step(k[0] % 100)
        k[0] += 1

    result = measure(one, repeats, number=steps)
    collect()
    return {"ms_per_step": scale(result, 1e-6), "steps_per_sample": steps}


def demo_reuse_step(engine, repeats, steps):
    """ms per step of the same training with graph reuse (arenagrad only): the full-batch loss
    graph is built once; each step is recompute(), zero_grad(), backward() and the update."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1, seed=1337)
    model = engine.MLP(2, [16, 16, 1])
    inputs = [list(map(engine.Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    total_loss = max_margin_loss(model, scores, y)
    parameters = model.parameters()
    k = [0]

    def one():
        total_loss.recompute()
        total_loss.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9*(k[0] % 100)/100
        for p in parameters:
            p.data -= learning_rate * p.grad
        k[0] += 1

    result = measure(one, repeats, number=steps)
    collect()
    return {"ms_per_step": scale(result, 1e-6), "steps_per_sample": steps}


# --- the lecture's training loop: MLP(3, [4, 4, 1]), 4 samples, squared error -------------------

def lecture_setup(Value, MLP):
    random.seed(1337)
    n = MLP(3, [4, 4, 1])
    xs = [
        [2.0, 3.0, -1.0],
        [3.0, -1.0, 0.5],
        [0.5, 1.0, 1.0],
        [1.0, 1.0, -1.0],
    ]
    ys = [1.0, -1.0, -1.0, 1.0]  # desired targets

    def step():
        # forward pass
        ypred = [n(x) for x in xs]
        loss = sum((yout - ygt)**2 for ygt, yout in zip(ys, ypred))

        # backward pass
        for p in n.parameters():
            p.grad = 0.0
        loss.backward()

        # update
        for p in n.parameters():
            p.data += -0.1 * p.grad

        return loss.data

    return step


def lecture_step(engine, repeats):
    """ms per step of the lecture's loop."""
    step = lecture_setup(engine.Value, engine.MLP)
    result = measure(step, repeats, number=200 if engine.name == "arenagrad" else 20)
    collect()
    return {"ms_per_step": scale(result, 1e-6)}

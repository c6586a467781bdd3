"""micrograd's demo step against the step a PyTorch user writes instead, in one run.

* torch: the same model as three float64 ``torch.nn.Linear`` layers over the batch tensor (ReLU
  between them, as micrograd's MLP), the same max-margin loss + 1e-4 L2, SGD; one thread.
* arenagrad, graph reuse: the loss graph built once, each step ``recompute()``, ``zero_grad()``,
  ``backward()`` and the update (training.demo_reuse_step).
* arenagrad, the notebook's code, graph rebuilt every step (training.demo_step).
* ``acc = acc + w*x`` from Python on Values, beside the same loop on plain floats.

The goals (README "Against PyTorch on micrograd's demo"), as ratios of medians measured here:
reuse <= 0.5x torch, notebook <= 1.5x torch, the Value loop <= 1.6x the float loop.
"""
from types import SimpleNamespace

import numpy as np

from ..datasets import make_moons
from . import training
from .engines import ARENAGRAD
from .timing import collect, measure, scale

GOALS = {"reuse": 0.5, "rebuild": 1.5, "acc": 1.6}


def torch_step(repeats, steps):
    """ms per step of the batched PyTorch step, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1, seed=1337)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 1)).double()
    parameters = list(model.parameters())
    k = [0]

    def one():
        scores = model(Xt).squeeze(1)
        data_loss = torch.relu(1 - yt * scores).mean()
        reg_loss = 1e-4 * sum((p * p).sum() for p in parameters)
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * (k[0] % 100) / 100
        with torch.no_grad():
            for p in parameters:
                p -= learning_rate * p.grad
        k[0] += 1

    result = measure(one, repeats, number=steps)
    collect()
    return {"ms_per_step": scale(result, 1e-6), "torch": torch.__version__}


def float_loop(repeats):
    """ns per op of the same `acc = acc + w*x` loop on plain Python floats."""
    return training.op_by_op(SimpleNamespace(name="floats", Value=float), repeats, number=200)


def run(repeats):
    np.random.seed(1337)
    return {
        "torch": torch_step(repeats, 20),
        "reuse": training.demo_reuse_step(ARENAGRAD, repeats, 20),
        "rebuild": training.demo_step(ARENAGRAD, repeats, 10),
        "acc_values": training.op_by_op(ARENAGRAD, repeats),
        "acc_floats": float_loop(repeats),
    }


def ratio(a, b):
    return f"{a / b:.2f}x"


def report(results, spread):
    """The table's lines: each step's ms and its ratio to torch, and the acc loop's ratio;
    `spread` formats a figure (report.py)."""
    results = results["versus_torch"]
    torch = results["torch"]
    lines = ["7. micrograd's demo step against PyTorch's batched step (ms/step, one run)"]
    if torch is None:
        lines.append("   torch is not installed: pip install torch, to compare")
    base = torch["ms_per_step"]["median"] if torch else None
    rows = [("torch, batched tensors (float64, 1 thread)", torch, None),
            ("arenagrad, graph reuse (recompute/zero_grad/backward)", results["reuse"], "reuse"),
            ("arenagrad, the notebook's code (graph rebuilt)", results["rebuild"], "rebuild")]
    for title, r, goal in rows:
        if r is None:
            continue
        versus = ratio(r["ms_per_step"]["median"], base) if base else "n/a"
        target = f"   goal <= {GOALS[goal]}x" if goal else ""
        lines.append(f"   {title:<54} {spread(r['ms_per_step']):<24} / torch {versus:>7}{target}")
    values, floats = results["acc_values"]["ns_per_op"], results["acc_floats"]["ns_per_op"]
    lines.append(f"   {'acc = acc + w*x, ns/op: Values':<54} {spread(values):<24} "
                 f"/ floats {ratio(values['median'], floats['median']):>6}   goal <= "
                 f"{GOALS['acc']}x (floats {spread(floats)})")
    return lines

"""``python -m arenagrad``: the ``demo`` and ``bench`` subcommands.

``demo`` is micrograd's demo notebook (the moons classifier) written with the public API, as a
user would write it. Heavy imports (tqdm, matplotlib, the benchmarks) happen inside the
subcommand that needs them, so ``--help`` and the demo start fast.
"""
import argparse
import random
import sys
import time
from typing import NamedTuple

DEFAULT_SEED = 1337  # micrograd's seed; reaches 99% accuracy within 100 steps


class Run(NamedTuple):
    """What ``train`` returns: the trained model, its data, and one entry per step."""
    model: object
    X: object
    y: object
    losses: list
    accuracies: list


def train(steps=100, seed=DEFAULT_SEED, progress=False):
    """Trains micrograd's moons classifier for ``steps`` SGD steps, as its demo notebook does.

    The loss and accuracy of step k are those of the model before step k's update (micrograd's
    notebook prints the same numbers).
    """
    from .datasets import make_moons
    from .engine import Value
    from .nn import MLP

    X, y = make_moons(n_samples=100, noise=0.1, seed=seed)  # labels already -1/+1
    random.seed(seed)
    model = MLP(2, [16, 16, 1])  # 2-layer neural network

    def loss():
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        # svm "max-margin" loss
        losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum((p*p for p in model.parameters()))
        total_loss = data_loss + reg_loss
        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    steps_range = range(steps)
    if progress:
        from tqdm import tqdm
        steps_range = tqdm(steps_range, desc="training", unit="step")
    losses, accuracies = [], []
    for k in steps_range:
        # forward
        total_loss, acc = loss()
        # backward
        model.zero_grad()
        total_loss.backward()
        # update (sgd)
        learning_rate = 1.0 - 0.9*k/steps
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total_loss.data)
        accuracies.append(float(acc))
        if progress:
            steps_range.set_postfix(loss=f"{total_loss.data:.4f}", acc=f"{acc*100:.0f}%")
    return Run(model, X, y, losses, accuracies)


def plot_decision_boundary(run, path, h=0.02):
    """Writes the data and the model's decision boundary (micrograd's last notebook cell) to
    ``path``. The grid is evaluated with ``MLP.predict``: in C++, without building a graph."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SystemExit('--plot needs matplotlib: pip install "arenagrad[viz]"') from None
    import numpy as np

    X, y = run.X, run.y
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    Z = (run.model.predict(np.c_[xx.ravel(), yy.ravel()]) > 0).reshape(xx.shape)

    fig = Figure(figsize=(6, 5))  # no pyplot: no global state, no GUI backend
    ax = fig.subplots()
    ax.contourf(xx, yy, Z, cmap="Spectral", alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap="Spectral", edgecolors="k", linewidths=0.5)
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_title(f"MLP(2, [16, 16, 1]) after {len(run.losses)} steps, "
                 f"accuracy {run.accuracies[-1]*100:.0f}%")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def demo(args):
    t0 = time.perf_counter()
    run = train(args.steps, args.seed, progress=True)
    wall = time.perf_counter() - t0
    print(f"final loss {run.losses[-1]:.6f}, accuracy {run.accuracies[-1]*100:.1f}% "
          f"({args.steps} steps, seed {args.seed}, {wall:.2f} s)")
    if args.plot:
        plot_decision_boundary(run, args.plot)
        print(f"decision boundary written to {args.plot}")
    return 0


def bench(argv):
    try:
        from .bench import runner
    except ModuleNotFoundError as e:
        if e.name is None or not e.name.startswith("arenagrad.bench"):
            raise
        raise SystemExit("arenagrad.bench is not available in this installation") from None
    return runner.main(argv)


def _positive_int(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {n}")
    return n


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m arenagrad",
        description="arenagrad: micrograd's scalar autograd with a C++ core.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")

    p = sub.add_parser("demo", help="train micrograd's moons classifier",
                       description="Train micrograd's moons classifier (MLP(2, [16, 16, 1]), "
                                   "max-margin loss + L2, SGD), as micrograd's demo notebook.")
    p.add_argument("--steps", type=_positive_int, default=100, help="SGD steps (default 100)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the data and the weights (default {DEFAULT_SEED})")
    p.add_argument("--plot", metavar="FILE.png",
                   help="write the decision boundary to FILE.png (needs matplotlib)")

    # Its options belong to arenagrad.bench.runner: everything after "bench" is passed on.
    sub.add_parser("bench", add_help=False,
                   help="benchmarks against the pure-Python reference (see bench --help)")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return demo(args)

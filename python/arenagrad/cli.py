"""``python -m arenagrad``: the ``demo`` and ``bench`` subcommands.

``demo`` is micrograd's demo notebook (the moons classifier) written with the public API, as a
user would write it. Heavy imports (tqdm, matplotlib, the benchmarks) happen inside the
subcommand that needs them, so ``--help`` and the demo start fast.
"""
import argparse
import os
import random
import sys
import tempfile
import time
from typing import NamedTuple

from . import __version__
from .demo import max_margin_loss

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
        total_loss = max_margin_loss(model, scores, y)  # svm "max-margin" loss + L2
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
    # Ctrl-C loses nothing worth saving (the demo reruns in about a second), so it ends with one
    # line; so does a failure to write the plot.
    try:
        t0 = time.perf_counter()
        run = train(args.steps, args.seed, progress=True)
        wall = time.perf_counter() - t0
        print(f"final loss {run.losses[-1]:.6f}, accuracy {run.accuracies[-1]*100:.1f}% "
              f"({args.steps} steps, seed {args.seed}, {wall:.2f} s)")
        if args.plot:
            try:
                plot_decision_boundary(run, args.plot)
            except OSError as error:
                return fail("demo", f"writing {args.plot} failed ({error.strerror or error}); "
                                    "the decision boundary was not saved", 1)
            print(f"decision boundary written to {args.plot}")
    except KeyboardInterrupt:
        return fail("demo", "interrupted (Ctrl-C)", 130)
    return 0


def fail(command, message, status):
    """Ends a subcommand whose work failed: one line on stderr, the exit status returned."""
    print(f"python -m arenagrad {command}: {message}", file=sys.stderr)
    return status


def bench(argv):
    try:
        from .bench import runner
    except ModuleNotFoundError as e:
        if e.name is None or not e.name.startswith("arenagrad.bench"):
            raise
        raise SystemExit("arenagrad.bench is not available in this installation") from None
    return runner.main(argv)


# --- argument types: each check a user's typo can fail is made while parsing, before the work;
# a failure is argparse's one-line "argument --x: ..." error and exit status 2 -----------------

def positive_int(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"accepted: an integer >= 1, got {text!r}")
    return n


def seed(text):
    """A seed that both random.seed and numpy's default_rng (make_moons) accept."""
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or n < 0:
        raise argparse.ArgumentTypeError(
            f"accepted: an integer >= 0 (numpy's seeds are non-negative), got {text!r}")
    return n


def output_file(text):
    """A path the command can write: an existing writable file, or a new file in an existing
    folder that lets us create files. The check leaves no file behind and changes none."""
    if not text:
        raise argparse.ArgumentTypeError("accepted: a file path, got ''")
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; accepted: a file path")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(
            f"folder {folder} does not exist; accepted: a file in an existing folder")
    if os.path.exists(text):
        if not os.access(text, os.W_OK):
            raise argparse.ArgumentTypeError(f"{text} is not writable; accepted: a writable file")
        return text
    try:  # access() would not see a read-only or pseudo file system (/proc) as root
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot create files in {folder} ({error.strerror}); accepted: a file in a "
            "writable folder") from None
    return text


def figure_file(extra):
    """An argument type: an output_file whose suffix matplotlib can write, checked (with
    matplotlib's presence, named by the `extra` that installs it) before any work starts."""
    def check(text):
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:
            raise argparse.ArgumentTypeError(
                f'needs matplotlib: pip install "arenagrad[{extra}]"') from None
        formats = FigureCanvasBase.get_supported_filetypes()
        suffix = os.path.splitext(text)[1][1:].lower()
        if suffix not in formats:
            raise argparse.ArgumentTypeError(
                f"accepted: a file name ending in .png (or another format matplotlib writes: "
                f"{', '.join(sorted(formats))}), got {text!r}")
        return output_file(text)
    return check


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m arenagrad",
        description="arenagrad: micrograd's scalar autograd with a C++ core.")
    parser.add_argument("--version", action="version", version=f"arenagrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")

    p = sub.add_parser("demo", help="train micrograd's moons classifier",
                       description="Train micrograd's moons classifier (MLP(2, [16, 16, 1]), "
                                   "max-margin loss + L2, SGD), as micrograd's demo notebook.")
    p.add_argument("--steps", type=positive_int, default=100, help="SGD steps (default 100)")
    p.add_argument("--seed", type=seed, default=DEFAULT_SEED,
                   help=f"seed of the data and the weights, >= 0 (default {DEFAULT_SEED})")
    p.add_argument("--plot", metavar="FILE.png", type=figure_file("viz"),
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

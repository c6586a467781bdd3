"""python -m arenagrad demo: runs, plots, and reaches micrograd's accuracy with the default seed."""
import os
import subprocess
import sys

import pytest

from arenagrad import cli
from arenagrad.datasets import make_moons
from conftest import micrograd_demo


def run_cli(*args):
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run([sys.executable, "-m", "arenagrad", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_demo_subprocess_prints_loss_and_accuracy():
    proc = run_cli("demo", "--steps", "3")
    assert proc.returncode == 0, proc.stderr
    assert "final loss" in proc.stdout and "accuracy" in proc.stdout
    assert "3 steps, seed 1337" in proc.stdout


def test_demo_subprocess_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "moons.png"
    proc = run_cli("demo", "--steps", "2", "--plot", str(path))
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in proc.stdout


def test_demo_bad_option_exits_2():
    proc = run_cli("demo", "--steps", "0")
    assert proc.returncode == 2
    assert "--steps" in proc.stderr


def test_no_subcommand_exits_2():
    assert run_cli().returncode == 2


def test_demo_default_seed_reaches_98_percent():
    run = cli.train()  # 100 steps, seed 1337: micrograd's settings
    assert len(run.losses) == len(run.accuracies) == 100
    assert run.accuracies[-1] >= 0.98
    assert run.losses[-1] < run.losses[0] / 10


def test_train_equals_micrograd_demo_loop():
    # cli.train is micrograd's notebook written with the public API; conftest.micrograd_demo is
    # the same notebook, checked there against the reference on both engines.
    run = cli.train(steps=20, seed=5)
    X, y = make_moons(n_samples=100, noise=0.1, seed=5)
    want = micrograd_demo("arenagrad.nn", X, y, steps=20, seed=5)
    assert list(zip(run.losses, run.accuracies)) == want


def test_train_predict_agrees_with_accuracy():
    run = cli.train(steps=10, seed=1337)
    # the model after the last update; its predict() classifies most points right
    correct = ((run.model.predict(run.X) > 0) == (run.y > 0)).mean()
    assert correct >= 0.8


def test_bench_delegates_argv(monkeypatch):
    import types
    calls = []
    runner = types.SimpleNamespace(main=lambda argv: calls.append(argv) or 0)
    monkeypatch.setitem(sys.modules, "arenagrad.bench.runner", runner)
    monkeypatch.setitem(sys.modules, "arenagrad.bench", types.SimpleNamespace(runner=runner))
    assert cli.main(["bench", "--json", "out.json", "--help"]) == 0
    assert calls == [["--json", "out.json", "--help"]]


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    run = cli.train(steps=1)
    with pytest.raises(SystemExit, match=r'pip install "arenagrad\[viz\]"'):
        cli.plot_decision_boundary(run, tmp_path / "x.png")

"""Soak: memory stays flat over long runs.

    python -m arenagrad.bench.soak                # 100,000 demo steps + 1,000 rebuilds of 1e6 nodes
    python -m arenagrad.bench.soak --steps 10000 --rebuilds 100 --nodes 200000

(a) micrograd's demo (100 moons points, MLP(2, [16, 16, 1]), max-margin loss + L2, SGD) for
    ``--steps`` steps, the graph rebuilt every step;
(b) ``--rebuilds`` times: an MLP forward over enough samples for ``--nodes`` nodes, summed,
    backward(), dropped.
Both sample the process RSS (/proc/self/statm) and ``arenagrad.live_nodes()`` every
``--every`` steps and print start / end / max. Nothing is asserted here; tests/test_soak.py runs
a short version with assertions.
"""
import argparse
import os
import random
import resource
import sys
import time

import arenagrad
from arenagrad.datasets import make_moons
from arenagrad.demo import max_margin_loss
from arenagrad.engine import Value
from arenagrad.nn import MLP

SEED = 1337  # micrograd's demo seed


def rss_bytes():
    """Current resident set size; the peak (ru_maxrss) where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def demo_steps(steps, n_samples=100, seed=SEED):
    """micrograd's demo training loop (as arenagrad.cli.train, whose loop has no per-step hook):
    yields (k, loss) after step k's update, with step k's graph already dropped."""
    X, y = make_moons(n_samples=n_samples, noise=0.1, seed=seed)
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    for k in range(steps):
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        total_loss = max_margin_loss(model, scores, y)
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9*k/steps
        for p in params:
            p.data -= learning_rate * p.grad
        loss = total_loss.data
        del inputs, scores, total_loss
        yield k, loss


def graph_rebuilds(rebuilds, nodes, seed=SEED):
    """Yields (k, (graph size, RSS while the graph was alive)) after rebuild k: an
    MLP(2, [16, 16, 1]) forward over enough moons samples for ~`nodes` nodes, summed,
    backward(), then dropped."""
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    X, _ = make_moons(n_samples=100, noise=0.1, seed=seed)
    rows = X.tolist()
    base = arenagrad.live_nodes()
    probe = model(rows[0])
    per_sample = arenagrad.live_nodes() - base
    del probe
    samples = [rows[i % len(rows)] for i in range(max(1, nodes // per_sample))]
    for k in range(rebuilds):
        root = arenagrad.sum([model(x) for x in samples])
        size = arenagrad.live_nodes() - base
        root.backward()
        rss_alive = rss_bytes()
        del root
        yield k, (size, rss_alive)


class Sampler:
    """RSS and live nodes at step 0 and every `every` steps."""

    def __init__(self, every):
        self.every = every
        self.rows = []  # (step, rss bytes, live nodes)

    def __call__(self, step, force=False):
        if force or step % self.every == 0:
            self.rows.append((step, rss_bytes(), arenagrad.live_nodes()))

    def summary(self):
        rss = [r for _, r, _ in self.rows]
        live = [n for _, _, n in self.rows]
        mb = 1 / 2**20
        return (f"RSS start {rss[0]*mb:.1f} MB, end {rss[-1]*mb:.1f} MB, max {max(rss)*mb:.1f} MB; "
                f"live nodes start {live[0]:,}, end {live[-1]:,}, max {max(live):,}, "
                f"min {min(live):,} ({len(self.rows)} samples)")


def run(label, steps, every, report_every):
    sampler = Sampler(every)
    t0 = time.perf_counter()
    extra = None
    for k, extra in steps:
        sampler(k + 1, force=k == 0)
        if (k + 1) % report_every == 0:
            _, rss, live = sampler.rows[-1]
            print(f"  {label} {k + 1:>7,}: RSS {rss / 2**20:7.1f} MB, live nodes {live:,}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{label}: {sampler.rows[-1][0]:,} done in {time.perf_counter() - t0:.1f} s; "
          f"{sampler.summary()}", flush=True)
    return sampler, extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="demo training steps")
    parser.add_argument("--rebuilds", type=int, default=1_000, help="graph rebuilds")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="nodes per rebuilt graph")
    parser.add_argument("--every", type=int, default=1_000, help="demo steps between samples")
    args = parser.parse_args(argv)

    print(f"(a) demo: {args.steps:,} steps, 100 moons points, MLP(2, [16, 16, 1]), "
          f"sampled every {args.every:,} steps", flush=True)
    run("demo step", demo_steps(args.steps), args.every, max(args.every, args.steps // 20))

    print(f"(b) rebuilds: {args.rebuilds:,} x (MLP forward over ~{args.nodes:,} nodes, sum, "
          f"backward, drop), sampled every rebuild", flush=True)
    peaks = []

    def rebuilds():
        for k, (size, rss_alive) in graph_rebuilds(args.rebuilds, args.nodes):
            peaks.append(rss_alive)
            yield k, size

    _, size = run("rebuild", rebuilds(), 1, max(1, args.rebuilds // 20))
    mb = 1 / 2**20
    print(f"    graph size {size:,} nodes; RSS with the graph alive: first {peaks[0]*mb:.1f} MB, "
          f"last {peaks[-1]*mb:.1f} MB, max {max(peaks)*mb:.1f} MB; "
          f"arena after the run: {arenagrad.memory_stats()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

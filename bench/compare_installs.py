"""Two installs of arenagrad side by side in one run: the per-op cost and micrograd's demo step.

    python bench/compare_installs.py --before /path/to/old/venv/bin/python --after python

Each round runs one short measurement in a subprocess of each interpreter, alternating, so that
both see the same machine load; the table gives medians over the rounds, and the ratio
after / before. Measured per subprocess: `acc = acc + w*x` over 1,000 terms (ns per op, and the
same loop on Python floats), micrograd's demo step as its notebook writes it (ms), and the
same step with graph reuse (ms). A change to the engine's state model is "no slower" when its
ratios stay within the noise of the rounds (min-max printed beside the median).
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys

MEASURE = r"""
import json, random, time
from arenagrad.bench import training
from arenagrad.bench.engines import ARENAGRAD

def float_loop(terms=1000, number=200):
    rng = random.Random(1234)
    w = [rng.uniform(-1, 1) for _ in range(terms)]
    x = [rng.uniform(-1, 1) for _ in range(terms)]
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter_ns()
        for _ in range(number):
            acc = 0.0
            for wi, xi in zip(w, x):
                acc = acc + wi * xi
        best = min(best, (time.perf_counter_ns() - t) / number / (2 * terms))
    return best

out = {
    "acc = acc + w*x (ns/op)": training.op_by_op(ARENAGRAD, 5)["ns_per_op"]["median"],
    "same loop on floats (ns/op)": float_loop(),
    "demo step, notebook code (ms)": training.demo_step(ARENAGRAD, 5, 10)["ms_per_step"]["median"],
    "demo step, graph reuse (ms)": training.demo_reuse_step(ARENAGRAD, 5, 20)["ms_per_step"]["median"],
}
print(json.dumps(out))
"""


def run(python, pin):
    command = [python, "-c", MEASURE]
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="interpreter with the old install")
    parser.add_argument("--after", default=sys.executable, help="interpreter with the new one")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU 0")
    args = parser.parse_args(argv)
    samples = {"before": [], "after": []}
    for k in range(args.rounds):
        for name in ("before", "after") if k % 2 == 0 else ("after", "before"):
            samples[name].append(run(getattr(args, name), not args.no_pin))
        print(f"round {k + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"| workload ({args.rounds} rounds, median [min-max]) | before | after | after / before |")
    print("| --- | --- | --- | --- |")
    for key in samples["before"][0]:
        b = [s[key] for s in samples["before"]]
        a = [s[key] for s in samples["after"]]
        print(f"| {key} | {statistics.median(b):.4g} [{min(b):.4g}-{max(b):.4g}] | "
              f"{statistics.median(a):.4g} [{min(a):.4g}-{max(a):.4g}] | "
              f"{statistics.median(a) / statistics.median(b):.2f} |")


if __name__ == "__main__":
    main()

"""Long fuzz run: the lockstep state machine of tests/test_fuzz.py for many operation sequences.

    python bench/fuzz.py                       # 100,000 sequences of up to 40 steps
    python bench/fuzz.py -n 5000 --steps 20    # shorter
    python bench/fuzz.py --modules -n 5000     # the module machine (tests/test_fuzz_modules.py)

The C++ engine and the reference are driven side by side (see tests/test_fuzz.py for the
rules and invariants). The run is split into chunks of ``--chunk`` sequences, each a
hypothesis run with ``max_examples=chunk`` and no example database, so that a failure (which
hypothesis shrinks and reports) does not end the whole run. Prints sequences and steps run
(shrinking included), elapsed time and failures; exits 1 if anything failed.
"""
import argparse
import gc
import importlib.util
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test


def load_machine(modules):
    tests = Path(__file__).resolve().parent.parent / "tests"
    sys.path.insert(0, str(tests))  # the machines import conftest's helpers
    name = "test_fuzz_modules" if modules else "test_fuzz"
    spec = importlib.util.spec_from_file_location(f"arenagrad_{name}", tests / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ModulesInLockstep if modules else module.EnginesInLockstep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--sequences", type=int, default=100_000,
                        help="operation sequences to run (default 100,000)")
    parser.add_argument("--steps", type=int, default=40,
                        help="hypothesis stateful_step_count: max steps per sequence (default 40)")
    parser.add_argument("--chunk", type=int, default=10_000,
                        help="sequences per hypothesis run (default 10,000)")
    parser.add_argument("--modules", action="store_true",
                        help="fuzz modules (MLP changes) instead of single operations")
    args = parser.parse_args(argv)

    machine = load_machine(args.modules)
    failures = []
    t0 = time.perf_counter()
    done = 0
    while done < args.sequences:
        n = min(args.chunk, args.sequences - done)
        run_settings = settings(max_examples=n, stateful_step_count=args.steps, database=None,
                                deadline=None, derandomize=False, print_blob=True,
                                suppress_health_check=list(HealthCheck))
        before = machine.sequences_run
        try:
            run_state_machine_as_test(machine, settings=run_settings)
        except Exception:  # noqa: BLE001 - report, keep fuzzing
            failures.append(traceback.format_exc())
            print(f"FAILURE in chunk at {done:,} sequences:\n{failures[-1]}", flush=True)
        # A failure's traceback (in cycles) holds Values: free them before the next chunk
        # takes its live-node baseline.
        gc.collect()
        done += n
        elapsed = time.perf_counter() - t0
        print(f"{done:>9,} / {args.sequences:,} sequences requested; "
              f"{machine.sequences_run:,} run ({machine.sequences_run - before:,} this chunk), "
              f"{machine.steps_run:,} steps, {elapsed:.0f} s, {len(failures)} failures",
              flush=True)

    elapsed = time.perf_counter() - t0
    print(f"\nfuzz: {machine.sequences_run:,} sequences ({args.sequences:,} requested, "
          f"stateful_step_count={args.steps}), {machine.steps_run:,} steps, "
          f"{elapsed:.1f} s ({elapsed / 60:.1f} min), {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

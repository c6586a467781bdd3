"""``python -m arenagrad bench``: the standard workloads for arenagrad and the pure-Python reference,
measured in the same run, printed as tables with ratios (reference / arenagrad) and, for the
backward pass, against the bare floor of cpp/floor.cpp, shipped as arenagrad._floor
(arenagrad / floor).

    python -m arenagrad bench                  # 1e3..1e6 nodes, ~10 minutes
    python -m arenagrad bench --quick          # smoke run, under a minute
    python -m arenagrad bench --sizes 1e3,1e7 --json out.json --plot out.png

Bad arguments stop it before any work (options.py). A failure during the work (Ctrl-C, a full
disk) ends it with one line that says where the figures measured so far were saved.
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile

from . import floor, graphs, higher_order, memory, options, training, versus_torch
from .engines import ARENAGRAD, ENGINES, REFERENCE
from .report import report
from .timing import machine

FAMILIES = options.FAMILIES


def parse_args(argv):
    return options.parse_args(argv, " ".join(__doc__.split("\n\n")[0].split()))


# --- the workloads, as (label, function) tasks for the progress bar ----------------------------

def tasks(args, results, notes):
    if "floor" in args.families:
        yield "floor", lambda: results.__setitem__("floor", floor.run(args.sizes, args.repeats))

    if "op_by_op" in args.families:
        for engine in ENGINES:
            yield f"op_by_op {engine.name}", lambda engine=engine: results.setdefault(
                "op_by_op", {}).__setitem__(engine.name, training.op_by_op(engine, args.repeats))

    if "graphs" in args.families:
        graph_table = results.setdefault("graphs", {})
        for shape in graphs.SHAPES.values():
            for size in args.sizes:
                graph_table.setdefault(shape.name, {}).setdefault(str(size), {})
                for engine in ENGINES:
                    limit = (graphs.reference_limits(shape, size, args.reference_cap)
                             if engine is REFERENCE else None)
                    if limit:
                        note = f"{shape.name} {size:.0e}: {limit[1]}"
                        if limit[0] == "all":
                            graph_table.setdefault(shape.name, {}).setdefault(str(size), {})[
                                engine.name] = {"skipped": limit[1]}
                            if size == args.sizes[0]:
                                notes.append(f"{shape.name}: {limit[1]}")
                            elif "capped" in limit[1] and size == args.sizes[-1]:
                                notes.append(f"{limit[1]}: sizes above it not run")
                            continue
                        notes.append(note)

                    def run_graph(shape=shape, size=size, engine=engine, limit=limit):
                        figures = graphs.run(engine, shape, size, args.repeats,
                                             with_backward=limit is None)
                        graph_table.setdefault(shape.name, {}).setdefault(str(size), {})[
                            engine.name] = figures
                    yield f"{shape.name} {size:.0e} {engine.name}", run_graph

    if "training" in args.families:
        ref_steps = 1 if args.quick else 2
        for engine in ENGINES:
            steps = 10 if engine is ARENAGRAD else ref_steps
            yield f"demo step {engine.name}", lambda engine=engine, steps=steps: results.setdefault(
                "demo_step", {}).__setitem__(engine.name,
                                             training.demo_step(engine, args.repeats, steps))
            if engine is ARENAGRAD:
                yield "demo step with graph reuse", lambda: results.setdefault(
                    "demo_step", {}).__setitem__(
                        "arenagrad_reuse", training.demo_reuse_step(ARENAGRAD, args.repeats, 10))
            yield f"lecture loop {engine.name}", lambda engine=engine: results.setdefault(
                "lecture_step", {}).__setitem__(engine.name,
                                                training.lecture_step(engine, args.repeats))

    if "memory" in args.families:
        memory_table = results.setdefault("memory", {})
        ref_size = int(min(args.memory_size, args.reference_cap))
        for shape in ("mlp", "chain"):
            def run_memory(shape=shape):
                memory_table[shape] = {
                    "arenagrad": memory.arena_bytes_per_node(ARENAGRAD, shape, args.memory_size),
                    "reference": memory.python_bytes_per_node(
                        REFERENCE, shape, ref_size, with_backward=shape == "mlp")}
            yield f"memory {shape}", run_memory
        notes.append(f"memory: the reference is measured at {ref_size:.0e} nodes (tracemalloc, "
                     f"Python objects); its chain without backward (too deep)")

    if "recycle" in args.families:
        def run_recycle():
            out = subprocess.run(
                [sys.executable, "-m", "arenagrad.bench.recycle", "--cycles", str(args.cycles),
                 "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True)
            results["recycle"] = json.loads(out.stdout)
        yield f"recycle ({args.cycles} cycles, subprocess)", run_recycle

    if "higher_order" in args.families:
        def run_higher_order():
            results["higher_order"] = higher_order.run(args.sizes, args.repeats)
            results["higher_order_per_call"] = higher_order.run_per_call(args.repeats)
        yield "higher_order", run_higher_order

    if "versus_torch" in args.families:
        yield "versus_torch", lambda: results.__setitem__(
            "versus_torch", versus_torch.run(args.repeats))


def load_average():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def pin_to_one_cpu():
    """Runs the benchmarks (and their subprocesses) on one CPU, as pyperf does: on the shared
    2-vCPU machines here, an unpinned process that migrates between CPUs read whole runs up to
    1.7x slower, pure-Python work included. Returns the CPU, or None where the OS has no
    affinity call."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


class Progress:
    """How far a run got, for the one line that ends a failed run."""

    def __init__(self):
        self.results = None  # the JSON document, filled workload by workload
        self.step = "setup"  # what the run is doing now, as the failure message names it
        self.finished, self.total = 0, 0
        self.saved = None  # where the complete figures were written, once they were
        self.writing = None  # the output file being written, while it is


def measure(args, progress):
    """Runs the workloads into progress.results, then prints the report and writes the files."""
    from tqdm import tqdm

    cpu = pin_to_one_cpu()
    results = progress.results = {
        "machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "config": {"sizes": args.sizes, "repeats": args.repeats, "quick": args.quick,
                   "reference_cap": args.reference_cap, "cycles": args.cycles,
                   "families": args.families}}
    results["machine"]["engine_compiler"] = floor.COMPILER  # one CMake build makes both
    results["machine"]["load_start"] = load_average()
    results["machine"]["pinned_cpu"] = cpu
    notes = []
    work = list(tasks(args, results, notes))
    progress.total = len(work)
    with tqdm(work, desc="bench", unit="workload", file=sys.stderr, dynamic_ncols=True) as bar:
        for label, run in bar:
            progress.step = f"workload {label!r}"
            bar.set_postfix_str(label)
            run()
            progress.finished += 1
    results["machine"]["load_end"] = load_average()
    results["notes"] = list(dict.fromkeys(notes))
    progress.step = "the report"
    print(report(results, notes, args))
    if args.json:
        progress.step, progress.writing = f"writing {args.json}", args.json
        text = json.dumps(results, indent=1)
        with open(args.json, "w") as f:
            f.write(text)
        progress.saved, progress.writing = args.json, None
        print(f"\nraw figures written to {args.json}")
    if args.plot:
        from . import plot
        progress.step = f"writing {args.plot}"
        plot.draw(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def save_partial(results, beside, complete):
    """Writes `results` to `beside`'s NAME.partial.json, or if that fails (or `beside` is None)
    to a new temporary file. Returns the path, or raises the OSError of the last attempt."""
    text = json.dumps(results, indent=1)
    if beside:
        path = os.path.splitext(beside)[0] + ".partial.json"
        try:
            with open(path, "w") as f:
                f.write(text)
            return path
        except OSError:
            pass
    suffix = ".json" if complete else ".partial.json"
    fd, path = tempfile.mkstemp(prefix="arenagrad-bench-", suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def stopped(args, progress, why, status):
    """The end of a run that failed during its work: one line on stderr, naming where the
    figures measured so far are (saved now unless they already were)."""
    if progress.saved:
        where = f"the figures are in {progress.saved}"
    elif progress.finished == 0:
        where = "no workload had finished, so nothing was saved"
    else:
        progress.results["stopped"] = {"why": why, "workloads_finished": progress.finished,
                                       "workloads": progress.total}
        # Beside the requested file, unless writing there is what failed (or it is no regular
        # file: never create NAME.partial.json beside a device such as /dev/full).
        beside = args.json
        if beside and (progress.writing == beside
                       or (os.path.exists(beside) and not os.path.isfile(beside))):
            beside = None
        complete = progress.finished == progress.total  # and only writing the files failed
        what = ("the figures" if complete else
                f"the {progress.finished} of {progress.total} workloads that finished")
        try:
            where = f"{what} are in {save_partial(progress.results, beside, complete)}"
        except OSError as error:
            where = f"{what} could not be saved either ({error.strerror or error})"
    print(f"python -m arenagrad bench: {why}; {where}", file=sys.stderr)
    return status


def describe(error):
    """One line for an error of the work: the OS's words, or the exception's first line."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    progress = Progress()
    try:
        return measure(args, progress)
    except KeyboardInterrupt:
        return stopped(args, progress, f"interrupted (Ctrl-C) during {progress.step}", 130)
    except (MemoryError, OSError, subprocess.SubprocessError) as error:
        return stopped(args, progress, f"{progress.step} failed ({describe(error)})", 1)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m arenagrad bench``: the standard workloads for arenagrad and the pure-Python reference,
measured in the same run, printed as tables with ratios (reference / arenagrad) and, for the
backward pass, against the bare floor of bench/floor.cpp (arenagrad / floor).

    python -m arenagrad bench                  # 1e3..1e6 nodes, ~10 minutes
    python -m arenagrad bench --quick          # smoke run, under a minute
    python -m arenagrad bench --sizes 1e3,1e7 --json out.json
"""
import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys

from . import floor, graphs, higher_order, memory, training
from .engines import ARENAGRAD, ENGINES, REFERENCE
from .timing import machine

FAMILIES = ("floor", "op_by_op", "graphs", "training", "memory", "recycle", "higher_order")
RECYCLE_LIMIT_NS = 15.0  # the layout requirement: backward after recycling stays <= 15 ns/node


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m arenagrad bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: sizes 1e3,1e4, 3 repeats, 20 recycle cycles (< 1 min)")
    parser.add_argument("--json", metavar="FILE", help="write the raw figures to FILE")
    parser.add_argument("--sizes", help="graph sizes in nodes, e.g. 1e3,1e4,1e5,1e6 (default), 1e7")
    parser.add_argument("--repeats", type=int, help="timed samples per figure (default 5)")
    parser.add_argument("--reference-cap", type=float, default=1e5,
                        help="largest graph the reference is timed on (default 1e5 nodes)")
    parser.add_argument("--cycles", type=int,
                        help="rebuild-and-drop cycles of the recycle workload (default 1000)")
    parser.add_argument("--only", help=f"comma-separated workload families: {','.join(FAMILIES)}")
    parser.add_argument("--recycle", action="store_true", help="run only the recycle workload")
    args = parser.parse_args(argv)
    args.sizes = ([int(float(s)) for s in args.sizes.split(",")] if args.sizes
                  else [1000, 10000] if args.quick else [1000, 10000, 100000, 1000000])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.cycles = args.cycles or (20 if args.quick else 1000)
    args.memory_size = max(args.sizes) if args.quick else 1000000
    families = ["recycle"] if args.recycle else (args.only.split(",") if args.only else FAMILIES)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown workload families: {', '.join(sorted(unknown))}")
    args.families = [f for f in FAMILIES if f in families]
    return args


# --- the workloads, as (label, function) tasks for the progress bar ----------------------------

def tasks(args, results, notes):
    if "floor" in args.families:
        def run_floor():
            figures, why = floor.run(args.sizes, args.repeats)
            results["floor"] = figures
            if why:
                notes.append(why)
        yield "floor (compile + run)", run_floor

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
        yield "higher_order", lambda: results.__setitem__(
            "higher_order", higher_order.run(args.sizes, args.repeats))


# --- the report --------------------------------------------------------------------------------

def num(x):
    """A figure with 3 significant digits, without scientific notation for everyday sizes."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def spread(figure):
    return f"{num(figure['median'])} [{num(figure['min'])}-{num(figure['max'])}]"


def ratio(a, b):
    if not (a and b):
        return "-"
    return f"{a / b:,.0f}x" if a / b >= 100 else f"{a / b:.1f}x"


def median(entry, key):
    figure = entry.get(key) if entry else None
    return figure["median"] if figure else None


def report(results, notes, args):
    lines = []
    out = lines.append
    m = results["machine"]
    out(f"arenagrad benchmark, {results['date']}")
    out(f"machine: {m['cpu']}, {m['cores']} cores, {m['platform']}")
    out(f"python {m['python']}, numpy {m['numpy']}; engine built by {m['engine_compiler']}; "
        f"python built with {m['python_compiler']}")
    out(f"load average at start {m['load_start']}, at end {m['load_end']} "
        "(with load above the core count, a timed sample can lose its core to another process "
        "and read up to 2x: see min-max)")
    pinned = (f"pinned to CPU {m['pinned_cpu']}" if m.get("pinned_cpu") is not None
              else "not pinned to a CPU")
    out(f"method: setup untimed, 1 warm-up, {args.repeats} timed samples, gc off while timed, "
        f"{pinned}; median [min-max]; ratios are of medians")
    out("")

    if "op_by_op" in results:
        r = results["op_by_op"]
        out("1. op-by-op graph building from Python: acc = acc + w*x, 1,000 terms (ns/op)")
        out(f"   arenagrad {spread(r['arenagrad']['ns_per_op'])}   reference "
            f"{spread(r['reference']['ns_per_op'])}   reference/arenagrad "
            f"{ratio(r['reference']['ns_per_op']['median'], r['arenagrad']['ns_per_op']['median'])}")
        out("")

    floor_shapes = (results.get("floor") or {}).get("shapes", {})
    if "graphs" in results:
        out("2. graphs, arenagrad (ns per node of the graph, leaves included)")
        header = (f"   {'shape':<14}{'size':>6}{'nodes':>12}  {'build':<22}{'backward':<22}"
                  f"{'free':<20}{'floor bw':>9}{'bw/floor':>10}")
        out(header)
        for shape, sizes in results["graphs"].items():
            for size, entry in sizes.items():
                ag = entry.get("arenagrad")
                if not ag:
                    continue
                fl = floor_shapes.get(shape, {}).get(int(size)) or floor_shapes.get(
                    shape, {}).get(str(size))
                fl_median = fl["median"] if fl else None
                out(f"   {shape:<14}{float(size):>6.0e}{ag['nodes']:>12,}  "
                    f"{spread(ag['build_ns_per_node']):<22}{spread(ag['backward_ns_per_node']):<22}"
                    f"{spread(ag['free_ns_per_node']):<20}{num(fl_median):>9}"
                    f"{ratio(median(ag, 'backward_ns_per_node'), fl_median):>10}")
        out("")
        out("   reference (same graphs, same run; its free includes the gc.collect() that its "
            "cyclic Values need) and reference/arenagrad")
        out(f"   {'shape':<14}{'size':>6}  {'build':<22}{'backward':<22}{'free (+gc)':<22}"
            f"{'build':>9}{'bw':>9}{'free':>9}")
        for shape, sizes in results["graphs"].items():
            for size, entry in sizes.items():
                ref, ag = entry.get("reference"), entry.get("arenagrad")
                if not ref or "skipped" in ref:
                    continue
                bw = ref.get("backward_ns_per_node")
                out(f"   {shape:<14}{float(size):>6.0e}  {spread(ref['build_ns_per_node']):<22}"
                    f"{(spread(bw) if bw else 'skipped'):<22}"
                    f"{spread(ref['free_ns_per_node']):<22}"
                    f"{ratio(median(ref, 'build_ns_per_node'), median(ag, 'build_ns_per_node')):>9}"
                    f"{ratio(median(ref, 'backward_ns_per_node'), median(ag, 'backward_ns_per_node')):>9}"
                    f"{ratio(median(ref, 'free_ns_per_node'), median(ag, 'free_ns_per_node')):>9}")
        out("")

    if "demo_step" in results:
        out("3. training steps from Python (ms/step)")
        for key, title in (("demo_step", "micrograd demo step (100 moons, MLP(2,[16,16,1]))"),
                           ("lecture_step", "lecture loop (MLP(3,[4,4,1]), 4 samples)")):
            r = results[key]
            out(f"   {title:<52} arenagrad {spread(r['arenagrad']['ms_per_step'])}  reference "
                f"{spread(r['reference']['ms_per_step'])}  reference/arenagrad "
                f"{ratio(r['reference']['ms_per_step']['median'], r['arenagrad']['ms_per_step']['median'])}")
        reuse = results["demo_step"].get("arenagrad_reuse")
        if reuse:
            ref = results["demo_step"]["reference"]["ms_per_step"]["median"]
            rebuild = results["demo_step"]["arenagrad"]["ms_per_step"]["median"]
            out(f"   {'the demo step with graph reuse (recompute())':<52} arenagrad "
                f"{spread(reuse['ms_per_step'])}  rebuilding/reuse "
                f"{ratio(rebuild, reuse['ms_per_step']['median'])}  reference/reuse "
                f"{ratio(ref, reuse['ms_per_step']['median'])}")
        out("")

    if "memory" in results:
        out("4. bytes per node of a live graph (after backward)")
        for shape, r in results["memory"].items():
            ag, ref = r["arenagrad"], r["reference"]
            out(f"   {shape:<6} arenagrad {ag['bytes_per_node']:.1f} B/node arena "
                f"({ag['nodes']:,} nodes, {ag['bytes'] / 2**20:.1f} MiB)   "
                f"reference {ref['bytes_per_node']:.0f} "
                f"B/node ({ref['nodes']:,} nodes)   reference/arenagrad "
                f"{ratio(ref['bytes_per_node'], ag['bytes_per_node'])}")
        out("")

    if "recycle" in results:
        r = results["recycle"]
        fresh = r["fresh"]["backward_ns_per_node"]
        recycled = r["recycled"]["backward_ns_per_node"]
        # Judged on the best sample: on a shared machine a sample that lost its core to another
        # process reads 2x (see the load average), which says nothing about the layout.
        verdict = "yes" if recycled["min"] <= RECYCLE_LIMIT_NS else "NO"
        out(f"5. layout after recycling: backward of a {r['graph_nodes']:,}-node MLP graph (ns/node)")
        out(f"   fresh arena {spread(fresh)}   after {r['cycles']} rebuild-and-drop cycles of a "
            f"{r['train_graph_nodes']:.0e}-node training graph ({r['cycles_seconds']:.2f} s) "
            f"{spread(recycled)}   recycled/fresh {ratio(recycled['median'], fresh['median'])}   "
            f"best sample <= {RECYCLE_LIMIT_NS:g} ns/node: {verdict}")
        out("")

    lines.extend(higher_order.report(results))
    if "floor" in results and results["floor"]:
        f = results["floor"]
        out(f"floor: bench/floor.cpp built with {f['compiler']} {f['flags']}")
    if notes:
        out("notes:")
        for note in dict.fromkeys(notes):
            out(f"   - {note}")
    return "\n".join(lines)


def engine_compiler():
    """The C++ compiler of the installed engine, from the CMake cache of an editable build."""
    here = pathlib.Path(__file__).resolve()
    for parent in [*here.parents, pathlib.Path.cwd()]:
        for cache in sorted(parent.glob("build/*/CMakeCache.txt")):
            for line in cache.read_text(errors="replace").splitlines():
                if line.startswith("CMAKE_CXX_COMPILER:"):
                    cxx = line.split("=", 1)[1]
                    return floor.compiler_version(cxx) if os.path.exists(cxx) else cxx
    return "unknown compiler"


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


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    from tqdm import tqdm

    cpu = pin_to_one_cpu()

    results = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "config": {"sizes": args.sizes, "repeats": args.repeats, "quick": args.quick,
                          "reference_cap": args.reference_cap, "cycles": args.cycles,
                          "families": args.families}}
    results["machine"]["engine_compiler"] = engine_compiler()
    results["machine"]["load_start"] = load_average()
    results["machine"]["pinned_cpu"] = cpu
    notes = []
    work = list(tasks(args, results, notes))
    bar = tqdm(work, desc="bench", unit="workload", file=sys.stderr, dynamic_ncols=True)
    for label, run in bar:
        bar.set_postfix_str(label)
        run()
    bar.close()
    results["machine"]["load_end"] = load_average()
    results["notes"] = list(dict.fromkeys(notes))
    print(report(results, notes, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nraw figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

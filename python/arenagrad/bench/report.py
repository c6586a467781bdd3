"""The text report of ``python -m arenagrad bench``: the tables, with ratios reference/arenagrad
and, for the backward pass, arenagrad/floor."""

from . import higher_order, versus_torch

RECYCLE_LIMIT_NS = 15.0  # the layout requirement: backward after recycling stays <= 15 ns/node


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
    if "versus_torch" in results:
        lines.extend(versus_torch.report(results, spread))
        lines.append("")
    if "floor" in results and results["floor"]:
        f = results["floor"]
        out(f"floor: cpp/floor.cpp (arenagrad._floor) built with {f['compiler']}, {f['flags']}")
    if notes:
        out("notes:")
        for note in dict.fromkeys(notes):
            out(f"   - {note}")
    return "\n".join(lines)

"""The benchmark suite runs end to end in quick mode and reports every workload.

No timing assertions (bench/README.md "Method": timing lives in the benchmark, never in unit
tests): only that each figure exists and is positive.
"""
import json

import pytest

from arenagrad.bench import graphs, runner
from arenagrad.bench.engines import ARENAGRAD, REFERENCE

SHAPES = ["chain", "wide_sum_fold", "wide_sum_nary", "random_dag", "mlp"]


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    assert runner.main(["--quick", "--sizes", "1e3", "--repeats", "2", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def positive(figure):
    return (figure["min"] > 0 and figure["median"] >= figure["min"]
            and figure["max"] >= figure["median"])


@pytest.mark.parametrize("figure", [
    {"median": 0.0, "min": 0.0, "max": 1.0},     # a zero figure
    {"median": 2.0, "min": -1.0, "max": 3.0},    # a negative sample
    {"median": 2.0, "min": 1.0, "max": 1.5},     # max below the median
    {"median": 0.5, "min": 1.0, "max": 2.0},     # median below the min
])
def test_positive_rejects_a_bad_figure(figure):
    assert not positive(figure)


def test_positive_accepts_a_good_figure():
    assert positive({"median": 2.0, "min": 1.0, "max": 3.0})


def test_bench_quick_reports_every_workload(quick_results):
    workloads = {"op_by_op", "graphs", "demo_step", "lecture_step", "memory", "recycle"}
    assert workloads <= set(quick_results)
    assert quick_results["machine"]["cpu"]


def test_bench_op_by_op_figures_positive_for_both_engines(quick_results):
    for engine in ("arenagrad", "reference"):
        assert positive(quick_results["op_by_op"][engine]["ns_per_op"])


def test_bench_graph_figures_positive_for_every_shape(quick_results):
    assert sorted(quick_results["graphs"]) == sorted(SHAPES)
    for shape in SHAPES:
        entry = quick_results["graphs"][shape]["1000"]
        ag = entry["arenagrad"]
        assert ag["nodes"] > 900
        for key in ("build_ns_per_node", "backward_ns_per_node", "free_ns_per_node"):
            assert positive(ag[key]), (shape, key)
        ref = entry["reference"]
        if shape == "wide_sum_nary":
            assert "n-ary" in ref["skipped"]
        else:
            assert positive(ref["backward_ns_per_node"]), shape


def test_bench_training_memory_and_recycle_figures_positive(quick_results):
    for key in ("demo_step", "lecture_step"):
        for engine in ("arenagrad", "reference"):
            assert positive(quick_results[key][engine]["ms_per_step"]), (key, engine)
    for shape in ("mlp", "chain"):
        for engine in ("arenagrad", "reference"):
            assert quick_results["memory"][shape][engine]["bytes_per_node"] > 0
    recycle = quick_results["recycle"]
    assert recycle["cycles"] == 20
    assert positive(recycle["fresh"]["backward_ns_per_node"])
    assert positive(recycle["recycled"]["backward_ns_per_node"])


def test_bench_floor_reports_every_shape(quick_results):
    # The floor ships in the package (arenagrad._floor): it always runs, wheel included.
    assert sorted(quick_results["floor"]["shapes"]) == sorted(SHAPES)
    for shape in SHAPES:
        assert positive(quick_results["floor"]["shapes"][shape]["1000"]), shape


def test_floor_builds_the_engine_graphs_node_for_node(quick_results):
    # cpp/floor.cpp mirrors arenagrad/bench/graphs.py: the graphs table's node counts, for every
    # shape, except random_dag, drawn by another generator (std::mt19937_64, not Python's
    # random), whose closing + tree can differ by a node.
    from arenagrad import _floor
    assert list(_floor.SHAPES) == SHAPES
    for shape in SHAPES:
        engine_nodes = quick_results["graphs"][shape]["1000"]["arenagrad"]["nodes"]
        floor_nodes = quick_results["floor"]["shapes"][shape]["1000"]["nodes"]
        slack = 1 if shape == "random_dag" else 0
        assert abs(floor_nodes - engine_nodes) <= slack, (shape, floor_nodes, engine_nodes)


@pytest.mark.parametrize("shape, size, repeats, message", [
    ("spiral", 1000, 1, "unknown shape 'spiral'"),
    ("chain", 1000, 0, "repeats must be >= 1"),
    ("chain", 2**32, 1, "size must be < 2**32"),
])
def test_floor_rejects_bad_arguments(shape, size, repeats, message):
    from arenagrad import _floor
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        _floor.measure(shape, size, repeats)


def test_bench_graph_nodes_match_between_engines():
    # Both engines build the same graph, node for node (the ratios compare like with like).
    for shape in ("chain", "wide_sum_fold", "random_dag", "mlp"):
        counts = []
        for engine in (ARENAGRAD, REFERENCE):
            live_before = engine.live_nodes()
            state = graphs.SHAPES[shape].setup(engine, 1000)
            root, _ = graphs.SHAPES[shape].build(engine, state)
            counts.append(engine.count_nodes(root, live_before))
            root = state = None
        assert counts[0] == counts[1], shape


def test_bench_higher_order_figures_positive(quick_results):
    for shape in ("chain", "random_dag", "mlp", "spread_dag"):
        entry = quick_results["higher_order"][shape]["1000"]
        assert entry["nodes"] > 900 and entry["inputs"] >= 1
        for key in ("backward_copy_ns_per_node", "grad_ns_per_node",
                    "grad_create_graph_ns_per_node"):
            assert positive(entry[key]), (shape, key)


def test_bench_higher_order_per_call_figures_positive(quick_results):
    per_call = quick_results["higher_order_per_call"]
    assert set(per_call) == {"newton", "two_inputs"}
    for name, entry in per_call.items():
        assert entry["nodes"] >= 4 and entry["inputs"] >= 1
        for key in ("backward_copy_ns", "grad_ns", "grad_create_graph_ns"):
            assert positive(entry[key]), (name, key)


def test_bench_versus_torch_figures_positive(quick_results):
    entry = quick_results["versus_torch"]
    for key in ("reuse", "rebuild"):
        assert positive(entry[key]["ms_per_step"]), key
    assert positive(entry["acc_values"]["ns_per_op"]) and positive(entry["acc_floats"]["ns_per_op"])
    torch = entry["torch"]  # measured when torch is installed, else None
    try:
        import torch as _  # noqa: F401
    except ImportError:
        assert torch is None
    else:
        assert positive(torch["ms_per_step"])


def test_bench_versus_torch_report_names_each_goal(quick_results):
    from arenagrad.bench import report
    from arenagrad.bench.versus_torch import report as versus_report
    lines = "\n".join(versus_report(quick_results, report.spread))
    assert "goal <= 0.5x" in lines and "goal <= 1.5x" in lines and "goal <= 1.6x" in lines

"""The benchmark suite runs end to end in quick mode and reports every workload.

No timing assertions (SPEC section 7): only that each figure exists and is positive.
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
    return figure["median"] > 0 and figure["min"] > 0 and figure["max"] >= figure["median"]


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


def test_bench_floor_reports_every_shape_when_it_runs(quick_results):
    if quick_results.get("floor") is None:
        pytest.skip("no C++ compiler or no bench/floor.cpp: " + "; ".join(quick_results["notes"]))
    assert sorted(quick_results["floor"]["shapes"]) == sorted(SHAPES)
    for shape in SHAPES:
        assert quick_results["floor"]["shapes"][shape]["1000"]["median"] > 0


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
    for shape in ("chain", "random_dag", "mlp"):
        entry = quick_results["higher_order"][shape]["1000"]
        assert entry["nodes"] > 900 and entry["inputs"] >= 1
        for key in ("backward_copy_ns_per_node", "grad_ns_per_node",
                    "grad_create_graph_ns_per_node"):
            assert positive(entry[key]), (shape, key)

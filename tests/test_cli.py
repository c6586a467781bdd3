"""The command line as a user meets it (README "Demo" and bench/README.md "Running"): every bad
argument of demo and bench is one line naming the argument and what is accepted, exit status 2,
before any work; a failure during the work (a full disk, Ctrl-C) is one line and a non-zero
status, and says where the figures measured so far are; --version; bench --plot.

Commands run in subprocesses, as a user runs them: a traceback, or work done before an argument
error, is visible there.
"""
import argparse
import json
import os
import pathlib
import re
import selectors
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arenagrad
from arenagrad import cli
from arenagrad.bench import options

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT and /dev/full are POSIX")
FULL_DISK = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def command(*args):
    return [sys.executable, "-m", "arenagrad", *args]


def run_cli(*args, cwd=None, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def last_line(proc):
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_usage_error(proc, subcommand, option, accepted):
    """Exit 2, no traceback, no work done, and one error line naming the option and what it
    accepts (argparse's format, usage lines above it)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""  # nothing was trained or measured
    assert "step/s" not in proc.stderr and "workload/s" not in proc.stderr  # no progress bar
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == [last_line(proc)], proc.stderr
    assert errors[0].startswith(f"python -m arenagrad {subcommand}: error: argument {option}: ")
    assert accepted in errors[0], errors[0]


# --- bad arguments, one row each (one test: two of the same name hid the first list) ----------

BAD_ARGUMENTS = [
    (["demo", "--plot", "missing/dir/x.png"], "--plot", "does not exist"),
    (["demo", "--seed", "-5"], "--seed", "accepted: an integer >= 0"),
    (["bench", "--sizes", "abc"], "--sizes", "accepted: whole numbers of nodes >= 643"),
    (["bench", "--sizes", "0"], "--sizes", "accepted: whole numbers of nodes >= 643"),
    (["bench", "--json", "missing/dir/r.json"], "--json", "does not exist"),
    (["demo", "--seed", "abc"], "--seed", "accepted: an integer >= 0"),
    (["demo", "--steps", "x"], "--steps", "accepted: an integer >= 1"),
    (["demo", "--plot", "."], "--plot", "accepted: a file name ending in .png"),
    (["demo", "--plot", "moons.txt"], "--plot", "accepted: a file name ending in .png"),
    (["demo", "--plot", "sub"], "--plot", "accepted: a file name ending in .png"),
    (["demo", "--plot", "sub.png"], "--plot", "is a folder"),
    (["bench", "--sizes", "100"], "--sizes", "nodes >= 643 (the smallest mlp graph)"),
    (["bench", "--sizes", "1e3,,1e4"], "--sizes", "got ''"),
    (["bench", "--sizes", "1500.5"], "--sizes", "whole numbers"),
    (["bench", "--sizes", "inf"], "--sizes", "whole numbers"),
    (["bench", "--sizes", "1e3,-1e4"], "--sizes", "got '-1e4'"),
    (["bench", "--sizes", "1e12"], "--sizes", "< 2**32 (the arena's node ids)"),
    (["bench", "--repeats", "0"], "--repeats", "accepted: an integer >= 1"),
    (["bench", "--cycles", "-3"], "--cycles", "accepted: an integer >= 1"),
    (["bench", "--reference-cap", "10"], "--reference-cap", "nodes >= 643"),
    (["bench", "--only", "graphs,gpu"], "--only", "accepted: a comma-separated list of floor,"),
    (["bench", "--json", "sub.png"], "--json", "is a folder"),
    (["bench", "--plot", "missing/p.png"], "--plot", "does not exist"),
    (["bench", "--plot", "p.json"], "--plot", "accepted: a file name ending in .png"),
    (["bench", "--only", "op_by_op", "--plot", "p.png"], "--plot", "includes graphs"),
]


@pytest.mark.parametrize("argv, option, accepted", BAD_ARGUMENTS,
                         ids=[" ".join(row[0]) for row in BAD_ARGUMENTS])
def test_bad_argument_fails_before_the_work_with_one_line(tmp_path, argv, option, accepted):
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub").mkdir()
    proc = run_cli(*argv, cwd=tmp_path)
    assert_usage_error(proc, argv[0], option, accepted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "sub.png"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("argv", [["demo", "--plot", "/proc/moons.png"],
                                  ["bench", "--json", "/proc/r.json"]], ids=" ".join)
def test_unwritable_folder_fails_before_the_work(argv):
    # /proc takes no new files, even from root (for whom permission bits would not stop it).
    proc = run_cli(*argv)
    assert_usage_error(proc, argv[0], argv[1], "accepted: a file in a writable folder")


@pytest.mark.parametrize("subcommand, extra, option", [
    ("demo", "viz", "--plot"), ("bench", "bench", "--plot")])
def test_plot_without_matplotlib_names_the_extra_before_the_work(tmp_path, subcommand, extra,
                                                                 option):
    # matplotlib made unimportable, as in an installation without the extra
    code = ("import sys; sys.modules['matplotlib'] = None; from arenagrad.cli import main; "
            f"sys.exit(main([{subcommand!r}, '--plot', 'out.png']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert_usage_error(proc, subcommand, option, f'needs matplotlib: pip install "arenagrad[{extra}]"')


# --- the argument types, in process, against their oracles ----------------------------------

@given(st.integers(min_value=-2**70, max_value=2**70))
def test_seed_accepts_exactly_what_numpy_accepts(n):
    try:
        np.random.default_rng(n)
        numpy_accepts = True
    except ValueError:
        numpy_accepts = False
    if numpy_accepts:
        assert cli.seed(str(n)) == n
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="accepted: an integer >= 0"):
            cli.seed(str(n))


@given(st.lists(st.integers(min_value=1, max_value=2**33), min_size=1, max_size=5),
       st.sampled_from(["{}", "{:.10e}", "{:_}", "{:.1f}"]))
def test_sizes_parse_every_notation_and_reject_graphs_out_of_range(values, notation):
    text = ",".join(notation.format(v) for v in values)
    if 643 <= min(values) and max(values) < 2**32:
        assert options.sizes(text) == sorted(set(values))
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=r">= 643 \(the smallest mlp"):
            options.sizes(text)


@given(st.text(max_size=12))
def test_node_count_returns_a_whole_size_or_rejects(text):
    try:
        n = options.node_count(text)
    except argparse.ArgumentTypeError:
        return
    assert isinstance(n, int) and options.SMALLEST_SIZE <= n < 2**32 and n == float(text)


def test_smallest_size_is_the_largest_of_the_shapes_smallest_graphs():
    from arenagrad.bench.graphs import SHAPES, mlp_setup, MLP_NODES_PER_SAMPLE
    assert options.SMALLEST_SIZE == max(shape.smallest for shape in SHAPES.values())
    assert options.SMALLEST_SIZE == MLP_NODES_PER_SAMPLE == 643
    from arenagrad.bench.engines import ARENAGRAD
    _, X = mlp_setup(ARENAGRAD, options.SMALLEST_SIZE)
    assert len(X) == 1  # one sample: the smallest graph the mlp shape builds as described


def test_output_file_check_writes_nothing(tmp_path):
    existing = tmp_path / "old.json"
    existing.write_text("keep")
    mtime = existing.stat().st_mtime_ns
    assert cli.output_file(str(existing)) == str(existing)
    assert cli.output_file(str(tmp_path / "new.json")) == str(tmp_path / "new.json")
    assert existing.read_text() == "keep" and existing.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


# --- --version -----------------------------------------------------------------------------------

def test_version_prints_the_package_version():
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"arenagrad {arenagrad.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", arenagrad.__version__)


# --- failures during the work ------------------------------------------------------------------

def saved_file(line):
    """The file a failure line says the figures are in."""
    match = re.search(r" are in (\S+\.json)$", line)
    assert match, line
    return match.group(1)


@POSIX_ONLY
@FULL_DISK
def test_bench_json_on_full_disk_saves_the_figures_elsewhere():
    proc = run_cli("bench", "--only", "op_by_op", "--repeats", "1", "--json", "/dev/full")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line = last_line(proc)
    assert line.startswith("python -m arenagrad bench: writing /dev/full failed "
                           "(No space left on device); the figures are in ")
    path = saved_file(line)
    try:
        with open(path) as f:
            results = json.load(f)
    finally:
        os.remove(path)
    for engine in ("arenagrad", "reference"):
        assert results["op_by_op"][engine]["ns_per_op"]["median"] > 0
    assert "reference/arenagrad" in proc.stdout  # the report was printed before the write


@POSIX_ONLY
@FULL_DISK
def test_bench_plot_on_full_disk_says_where_the_json_is(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "p.png").symlink_to("/dev/full")
    proc = run_cli("bench", "--only", "graphs", "--sizes", "1e3", "--repeats", "1",
                   "--json", "r.json", "--plot", "p.png", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert last_line(proc) == ("python -m arenagrad bench: writing p.png failed (No space left "
                               "on device); the figures are in r.json")
    assert set(json.loads((tmp_path / "r.json").read_text())["graphs"]) >= {"chain", "mlp"}


@POSIX_ONLY
@FULL_DISK
def test_demo_plot_on_full_disk_ends_with_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "moons.png").symlink_to("/dev/full")
    proc = run_cli("demo", "--steps", "2", "--plot", "moons.png", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert last_line(proc) == ("python -m arenagrad demo: writing moons.png failed (No space "
                               "left on device); the decision boundary was not saved")
    assert "final loss" in proc.stdout


def interrupt_when(argv, marker, cwd, timeout=120):
    """Starts `argv`, sends SIGINT once `marker` shows on its stderr (the progress bar), and
    returns (returncode, stdout, stderr)."""
    # SIGINT back to its default in the child, as a terminal's Ctrl-C finds it: a shell that
    # starts the tests in the background hands every child SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler.
    proc = subprocess.Popen(command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=dict(os.environ, PYTHONWARNINGS="error"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while marker.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0 and selector.select(left), f"{marker!r} never shown: {seen[-500:]!r}"
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                proc.wait()
                pytest.fail(f"exited {proc.returncode} before {marker!r}: {seen[-500:]!r}")
            seen += chunk
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), (seen + err).decode()


@POSIX_ONLY
@pytest.mark.parametrize("json_option", [["--json", "r.json"], []], ids=["json", "no-json"])
def test_bench_ctrl_c_saves_the_finished_workloads(tmp_path, json_option):
    # op_by_op runs first; once the progress bar names the first graph, it has finished. The
    # graphs at 1e5 nodes keep the run busy for many seconds after that.
    rc, out, err = interrupt_when(
        ["bench", "--only", "op_by_op,graphs", "--sizes", "1e3,1e5", "--repeats", "3",
         *json_option], "chain 1e+03 arenagrad", tmp_path)
    assert rc == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    line = err.strip().splitlines()[-1]
    match = re.match(r"python -m arenagrad bench: interrupted \(Ctrl-C\) during workload "
                     r"'\S+ \S+ \w+'; the (\d+) of (\d+) workloads that finished are in ", line)
    assert match, line
    finished, total = int(match.group(1)), int(match.group(2))
    assert 2 <= finished < total
    path = pathlib.Path(saved_file(line))
    if json_option:  # beside the requested file, which is not written
        assert path == pathlib.Path("r.partial.json")
        assert not (tmp_path / "r.json").exists()
        path = tmp_path / path
    else:  # a temporary file
        assert path.is_absolute() and path.name.startswith("arenagrad-bench-")
        assert path.name.endswith(".partial.json")
    try:
        results = json.loads(path.read_text())
    finally:
        path.unlink()
    for engine in ("arenagrad", "reference"):
        assert results["op_by_op"][engine]["ns_per_op"]["median"] > 0
    assert results["stopped"]["workloads_finished"] == finished
    assert results["stopped"]["workloads"] == total
    assert out == ""  # no report of a run that did not finish


@POSIX_ONLY
def test_demo_ctrl_c_ends_with_one_line(tmp_path):
    rc, out, err = interrupt_when(["demo", "--steps", "1000000"], "acc=", tmp_path)
    assert rc == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "python -m arenagrad demo: interrupted (Ctrl-C)"


# --- bench --plot --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quick_plot_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("plot")
    # Run away from any source tree: the floor ships in the package (arenagrad._floor), so it
    # runs from an installed wheel with no compiler too (.ci/wheel runs this file so).
    proc = run_cli("bench", "--quick", "--only", "floor,graphs", "--repeats", "1",
                   "--json", str(folder / "r.json"), "--plot", str(folder / "ns_per_node.png"),
                   cwd=folder)
    return proc, folder


def test_bench_quick_plot_writes_a_png(quick_plot_run):
    proc, folder = quick_plot_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (folder / "ns_per_node.png").read_bytes()[:8] == PNG_SIGNATURE
    assert proc.stdout.splitlines()[-1] == f"plot written to {folder / 'ns_per_node.png'}"


def test_bench_plot_draws_every_shape_with_engine_reference_and_floor(quick_plot_run):
    from arenagrad.bench import plot
    proc, folder = quick_plot_run
    results = json.loads((folder / "r.json").read_text())
    fig = plot.figure(results)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == list(results["graphs"])
    for ax in axes:
        labels = {text.get_label() for text in ax.containers} | {
            line.get_label() for line in ax.get_lines()}
        assert {"arenagrad backward", "arenagrad build (from Python)", "arenagrad free"} <= labels
        if ax.get_title() != "wide_sum_nary":  # the reference has no n-ary sum
            assert "reference backward" in labels
        assert "floor backward (plain arrays)" in labels
        assert ax.get_xscale() == ax.get_yscale() == "log"
    # the points are the medians of the run: arenagrad's backward at 1e3 nodes, first panel
    chain = results["graphs"][axes[0].get_title()]
    backward = [c for c in axes[0].containers if c.get_label() == "arenagrad backward"][0]
    xs, ys = backward.lines[0].get_data()
    assert list(xs) == [int(size) for size in chain]
    assert list(ys) == [chain[size]["arenagrad"]["backward_ns_per_node"]["median"]
                        for size in chain]


def test_bench_prints_engine_floor_ratio_for_every_shape(quick_plot_run):
    # The graphs table ends each row with the floor's ns/node and arenagrad backward / floor.
    proc, _ = quick_plot_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("2. graphs, arenagrad"))
    table = lines[start + 2:lines.index("", start)]  # after the title and the column header
    assert lines[start + 1].split()[-2:] == ["bw", "bw/floor"]
    floor_rows = {row[0]: row for row in map(str.split, table)}
    assert sorted(floor_rows) == sorted(["chain", "wide_sum_fold", "wide_sum_nary",
                                         "random_dag", "mlp"]), proc.stdout
    for shape, row in floor_rows.items():
        floor_ns, ratio = row[-2], row[-1]
        assert float(floor_ns.replace(",", "")) > 0, row
        assert ratio.endswith("x") and float(ratio[:-1].replace(",", "")) > 0, row
    assert "floor: cpp/floor.cpp (arenagrad._floor) built with" in proc.stdout


def test_saved_run_redraws_with_the_module(quick_plot_run, tmp_path):
    _, folder = quick_plot_run
    proc = subprocess.run([sys.executable, "-m", "arenagrad.bench.plot", str(folder / "r.json"),
                           str(tmp_path / "again.png")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "again.png").read_bytes()[:8] == PNG_SIGNATURE

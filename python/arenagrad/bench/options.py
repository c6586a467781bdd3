"""The command line of ``python -m arenagrad bench``: every check a typo can fail is made here,
while parsing and before any workload runs, as argparse's one-line error with exit status 2."""
import argparse
import math

from ..cli import figure_file, output_file, positive_int
from .graphs import SHAPES

FAMILIES = ("floor", "op_by_op", "graphs", "training", "memory", "recycle", "higher_order",
            "versus_torch")
DEFAULT_SIZES = [1000, 10000, 100000, 1000000]
QUICK_SIZES = [1000, 10000]
# Every size is built in every shape; below this, some shape's graph is not what it describes.
SMALLEST_SIZE = max(shape.smallest for shape in SHAPES.values())
_SMALLEST_SHAPE = max(SHAPES.values(), key=lambda shape: shape.smallest).name
LARGEST_SIZE = 2**32 - 1  # the arena names nodes with 32-bit ids (NodeId, cpp/node.hpp)


def node_count(text):
    """A graph size in nodes: a whole number from SMALLEST_SIZE to LARGEST_SIZE, written 1000,
    1e3 or 1_000."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x == int(x) and SMALLEST_SIZE <= x <= LARGEST_SIZE):
        raise argparse.ArgumentTypeError(
            f"accepted: whole numbers of nodes >= {SMALLEST_SIZE} (the smallest {_SMALLEST_SHAPE} "
            f"graph) and < 2**32 (the arena's node ids), e.g. 1e3 or 1000, got {text!r}")
    return int(x)


def sizes(text):
    """Comma-separated node counts, returned sorted, without repeats."""
    return sorted({node_count(part) for part in text.split(",")})


def families(text):
    names = text.split(",")
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload family {unknown[0]!r}; accepted: a comma-separated list of "
            f"{','.join(FAMILIES)}")
    return names


def build_parser(description):
    parser = argparse.ArgumentParser(prog="python -m arenagrad bench", description=description)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: sizes 1e3,1e4, 3 repeats, 20 recycle cycles (< 1 min)")
    parser.add_argument("--json", metavar="FILE", type=output_file,
                        help="write the raw figures to FILE")
    parser.add_argument("--plot", metavar="FILE.png", type=figure_file("bench"),
                        help="draw ns per node against graph size, per shape, to FILE.png "
                             '(needs matplotlib: pip install "arenagrad[bench]")')
    parser.add_argument("--sizes", type=sizes,
                        help=f"graph sizes in nodes (>= {SMALLEST_SIZE}), e.g. 1e3,1e4,1e5,1e6 "
                             "(default), 1e7")
    parser.add_argument("--repeats", type=positive_int,
                        help="timed samples per figure (default 5)")
    parser.add_argument("--reference-cap", type=node_count, default=100000,
                        help="largest graph the reference is timed on (default 1e5 nodes)")
    parser.add_argument("--cycles", type=positive_int,
                        help="rebuild-and-drop cycles of the recycle workload (default 1000)")
    parser.add_argument("--only", type=families,
                        help=f"comma-separated workload families: {','.join(FAMILIES)}")
    return parser


def parse_args(argv, description):
    parser = build_parser(description)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.cycles = args.cycles or (20 if args.quick else 1000)
    args.memory_size = max(args.sizes) if args.quick else 1000000
    chosen = args.only or FAMILIES
    args.families = [f for f in FAMILIES if f in chosen]
    if args.plot and "graphs" not in args.families:
        parser.error("argument --plot: draws the graphs workload, which this run leaves out; "
                     "accepted: with --only, a list that includes graphs")
    return args

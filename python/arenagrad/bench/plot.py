"""The figure of ``python -m arenagrad bench --plot FILE.png``: ns per node against graph size,
one panel per shape, for arenagrad (backward, build, free), the reference (backward, build) and
the floor's backward. Needs matplotlib (``pip install "arenagrad[bench]"``).

A saved run can be drawn again: ``python -m arenagrad.bench.plot results.json FILE.png``.
"""
import json
import sys

SERIES = [  # (engine, figure, style, label)
    ("arenagrad", "backward_ns_per_node", "o-", "arenagrad backward"),
    ("arenagrad", "build_ns_per_node", "s--", "arenagrad build (from Python)"),
    ("arenagrad", "free_ns_per_node", "^:", "arenagrad free"),
    ("reference", "backward_ns_per_node", "o-", "reference backward"),
    ("reference", "build_ns_per_node", "s--", "reference build"),
]


def draw_shape(ax, shape, sizes, floor):
    """One panel: every series of SERIES that has points, then the floor's backward."""
    for engine, key, style, label in SERIES:
        points = [(int(size), entry[engine][key]) for size, entry in sizes.items()
                  if key in entry.get(engine, {})]
        if points:
            ax.errorbar([p[0] for p in points], [p[1]["median"] for p in points],
                        yerr=[[p[1]["median"] - p[1]["min"] for p in points],
                              [p[1]["max"] - p[1]["median"] for p in points]],
                        fmt=style, color="C0" if engine == "arenagrad" else "C3",
                        alpha=1.0 if "backward" in key else 0.6, capsize=2, label=label)
    if shape in floor:
        # floor sizes are ints in a live run and strings in a JSON file read back
        points = sorted((int(size), f["median"]) for size, f in floor[shape].items())
        ax.plot([p[0] for p in points], [p[1] for p in points], "k-", lw=2,
                label="floor backward (plain arrays)")
    if len(sizes) == 1:  # one size: give the axis a width (matplotlib warns at zero width)
        size = int(next(iter(sizes)))
        ax.set_xlim(size / 2, size * 2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(shape)
    ax.set_xlabel("graph size (nodes)")
    ax.grid(True, which="both", alpha=0.3)


def figure(results):
    """The figure of `results` (the runner's JSON document, live or read back)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    shapes = results["graphs"]
    floor = (results.get("floor") or {}).get("shapes", {})
    fig = Figure(figsize=(4.2 * len(shapes), 4.2))
    axes = fig.subplots(1, len(shapes), sharey=True, squeeze=False)[0]
    for ax, (shape, sizes) in zip(axes, shapes.items()):
        draw_shape(ax, shape, sizes, floor)
    axes[0].set_ylabel("ns per node")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"arenagrad vs reference vs floor, {results['machine']['cpu']}, {results['date']}")
    fig.tight_layout()
    return fig


def draw(results, path):
    """Writes the figure of `results` to `path` (its format from the suffix)."""
    figure(results).savefig(path, dpi=110)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) != 2:
        print("usage: python -m arenagrad.bench.plot RESULTS.json FILE.png", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        draw(json.load(f), argv[1])
    print(f"plot written to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

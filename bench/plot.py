"""Draws ns/node against graph size, one panel per shape, from the runner's JSON.

    python bench/plot.py results/latest.json results/ns_per_node.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [  # (engine, figure, style, label)
    ("arenagrad", "backward_ns_per_node", "o-", "arenagrad backward"),
    ("arenagrad", "build_ns_per_node", "s--", "arenagrad build (from Python)"),
    ("arenagrad", "free_ns_per_node", "^:", "arenagrad free"),
    ("reference", "backward_ns_per_node", "o-", "reference backward"),
    ("reference", "build_ns_per_node", "s--", "reference build"),
]


def main(source, target):
    with open(source) as f:
        results = json.load(f)
    shapes = results["graphs"]
    floor = (results.get("floor") or {}).get("shapes", {})
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 4.2), sharey=True)
    for ax, (shape, sizes) in zip(axes, shapes.items()):
        for engine, key, style, label in SERIES:
            points = [(int(size), entry[engine][key]) for size, entry in sizes.items()
                      if key in entry.get(engine, {})]
            if points:
                xs = [p[0] for p in points]
                ax.errorbar(xs, [p[1]["median"] for p in points],
                            yerr=[[p[1]["median"] - p[1]["min"] for p in points],
                                  [p[1]["max"] - p[1]["median"] for p in points]],
                            fmt=style, color="C0" if engine == "arenagrad" else "C3",
                            alpha=1.0 if "backward" in key else 0.6, capsize=2, label=label)
        if shape in floor:
            points = sorted((int(size), f["median"]) for size, f in floor[shape].items())
            ax.plot([p[0] for p in points], [p[1] for p in points], "k-", lw=2,
                    label="floor backward (plain arrays)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(shape)
        ax.set_xlabel("graph size (nodes)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ns per node")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"arenagrad vs reference vs floor, {results['machine']['cpu']}, {results['date']}")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    print(f"plot written to {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

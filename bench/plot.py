"""Draws a saved run again: `python bench/plot.py results/latest.json results/ns_per_node.png`.

The drawing lives in the package (arenagrad.bench.plot); a new run draws it with
`python -m arenagrad bench ... --plot FILE.png`.
"""
import sys

from arenagrad.bench.plot import main

if __name__ == "__main__":
    sys.exit(main())

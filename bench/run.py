"""Thin entry point: `python bench/run.py [options]` is `python -m arenagrad bench [options]`."""
import sys

from arenagrad.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())

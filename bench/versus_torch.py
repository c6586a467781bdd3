"""micrograd's demo step against PyTorch's batched step, side by side in one run.

    python bench/versus_torch.py [--repeats N] [--json FILE]

The same as ``python -m arenagrad bench --only versus_torch`` (the workload is
arenagrad.bench.versus_torch); torch is compared when it is installed (pip install torch).
"""
import sys

from arenagrad.bench import runner

if __name__ == "__main__":
    sys.exit(runner.main(["--only", "versus_torch", *sys.argv[1:]]))

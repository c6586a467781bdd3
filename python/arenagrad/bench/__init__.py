"""arenagrad's benchmark suite: the standard workloads of bench/README.md, for arenagrad and the
pure-Python reference measured in the same run.

Run it with ``python -m arenagrad bench`` (or ``python -m arenagrad.bench.runner``); see
``bench/README.md`` in the repository for the workloads and the method.
"""

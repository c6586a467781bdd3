"""The loss of micrograd's demo notebook (demo.ipynb), defined once for the demo command, the
benchmarks, the soak run and the tests. Engine-agnostic: it takes any engine's Values.

Only the `demo_step` benchmark (arenagrad.bench.training) keeps the notebook's code verbatim,
since it is the notebook with only the import changed (bench/README.md "Workloads").
"""


def max_margin_loss(model, scores, y, alpha=1e-4):
    """The svm "max-margin" loss of `scores` against labels `y` (+1/-1), averaged over the batch,
    plus `alpha` L2 regularization over `model.parameters()`; written as the notebook writes it,
    so that every engine computes the same numbers in the same order."""
    losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum((p*p for p in model.parameters()))
    return data_loss + reg_loss

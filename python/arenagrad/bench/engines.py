"""The two engines under test, behind the few calls the workloads need."""
import arenagrad
from arenagrad import engine as ag_engine
from arenagrad import nn as ag_nn
from arenagrad.reference import engine as ref_engine
from arenagrad.reference import nn as ref_nn

from .timing import collect


def _count_reference(root):
    """Nodes reachable from `root` (an iterative walk: the reference's graphs can be deep)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        v = stack.pop()
        for child in v._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


class Engine:
    """An engine as a micrograd user sees it (Value, MLP), plus node counting."""

    def __init__(self, name, value, mlp, nary_sum, frees_by_refcount):
        self.name = name
        self.Value = value
        self.MLP = mlp
        self.nary_sum = nary_sum  # None: the engine has no n-ary sum node
        # False: dropping a graph frees nothing until the cycle collector runs (the reference's
        # `_backward` closures hold their `out`), so freeing is timed with gc.collect().
        self.frees_by_refcount = frees_by_refcount

    def count_nodes(self, root, live_before):
        """Nodes in the graph of `root`; `live_before` is live_nodes() before its setup."""
        if self.name == "arenagrad":
            return arenagrad.live_nodes() - live_before
        return _count_reference(root)

    def live_nodes(self):
        return arenagrad.live_nodes() if self.name == "arenagrad" else 0

    def free(self, graphs):
        """Drops every graph in the list `graphs` (the timed part of freeing)."""
        graphs.clear()
        if not self.frees_by_refcount:
            collect()


ARENAGRAD = Engine("arenagrad", ag_engine.Value, ag_nn.MLP, arenagrad.sum, True)
REFERENCE = Engine("reference", ref_engine.Value, ref_nn.MLP, None, False)
ENGINES = (ARENAGRAD, REFERENCE)

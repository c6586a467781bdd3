// Re-evaluating a graph that was built once: after its leaves change, recompute() gives every
// node the value a rebuild would give, over a topological order cached per root, allocating
// no Node (and after the first call no order).
#pragma once

#include "arena.hpp"

namespace arenagrad {

// Thrown by recompute() for a custom node with a Python `_backward`: its forward is unknown.
struct CustomForwardUnknown {
  NodeId id;
};

// Forward values of every node under `root`, from the current leaves. On a Python float error
// (ArithmeticFault), std::bad_alloc or an interrupt, every value is restored and the exception
// propagates [A5]. The order is cached all or nothing.
void recompute(Arena& arena, NodeId root);

// grad = 0 for every node under `root` (itself included): what a rebuilt graph starts from.
void zero_grad(Arena& arena, NodeId root);

}  // namespace arenagrad

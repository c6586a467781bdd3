// Re-running a graph that was built once: after its leaves change, recompute() gives every node
// the value a rebuild would give, and backward() the grads, by replaying the graph's tape
// (tape.hpp), lowered on the first recompute() or zero_grad() and cached per root. No Node is
// allocated.
#pragma once

#include "arena.hpp"
#include "tape.hpp"

namespace arenagrad {

// Forward values of every node under `root`, from the current leaves. On a Python float error
// (ArithmeticFault), std::bad_alloc or an interrupt, every value is restored and the exception
// propagates [A5]. The tape is cached all or nothing.
void recompute(Arena& arena, NodeId root);

// grad = 0 for every node under `root` (itself included): what a rebuilt graph starts from.
void zero_grad(Arena& arena, NodeId root);

// backward(): replays root's tape when it has one (the same numbers, [T2]), else walks.
void backward_replayed(Arena& arena, NodeId root);

}  // namespace arenagrad

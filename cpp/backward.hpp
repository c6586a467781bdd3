// Topological order and the reverse sweep of the chain rule. Iterative at any depth.
#pragma once

#include <vector>

#include "arena.hpp"

namespace arenagrad {

// Every Node reachable from `root`, each after all of its operands (root last).
void topological_order(Arena& arena, NodeId root, std::vector<NodeId>& order);

// micrograd's backward(): root.grad = 1, then each Node's local derivative in reverse
// topological order, accumulating (+=) into operands; no grad is ever zeroed. Polls for
// interrupts (Arena::interrupt_poll); an interrupted sweep leaves grads partly accumulated.
void backward(Arena& arena, NodeId root);

}  // namespace arenagrad

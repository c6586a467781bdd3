// Topological order and the reverse sweep of the chain rule. Iterative at any depth.
#pragma once

#include <cstddef>
#include <vector>

#include "arena.hpp"
#include "walk.hpp"

namespace arenagrad {

// The id scans' give-up rule (backward's here, grad()'s in grad.cpp): a scan gives up, for the
// explicit topological order, once it has read more than kSparseFactor unreached slots per
// reachable Node plus kSparseSlack, so that it costs at most a constant factor more than the
// graph, however many unrelated Nodes lie between. Only unreached slots are counted: a reached
// one is work the graph needs, and the count then costs nothing on a dense graph's slots.
constexpr std::size_t kSparseFactor = 8;
constexpr std::size_t kSparseSlack = 256;

// Every Node reachable from `root`, each after all of its operands (root last), into `order`
// (cleared first). Runs inside `walk` [W1]; polls for interrupts.
void topological_order(Arena& arena, WalkScope& walk, NodeId root, std::vector<NodeId>& order);

// micrograd's backward(): root.grad = 1, then each Node's local derivative in reverse
// topological order, accumulating (+=) into operands; no grad is ever zeroed. Polls for
// interrupts; an interrupted sweep leaves grads partly accumulated. Costs O(reachable Nodes).
void backward(Arena& arena, NodeId root);

// How the last backward() went, for tests of its cost: the route taken and the slots it read.
struct BackwardReport {
  const char* route;       // "scan", "checked scan", "topological order", "tape"
  std::size_t slots_read;  // arena slots scanned plus Nodes visited by a topological order
};
BackwardReport last_backward();
void note_backward(BackwardReport report);  // for the tape's replay (graph_reuse.cpp)

}  // namespace arenagrad

// Topological order and the reverse sweep of the chain rule. Iterative at any depth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "arena.hpp"
#include "walk.hpp"

namespace arenagrad {

// The id scans' give-up rule (backward's here, grad()'s in grad_numbers.cpp): a scan gives up,
// for the explicit topological order, once it has read more than kSparseFactor unreached slots
// per reachable Node plus kSparseSlack, so that it costs at most a constant factor more than the
// graph, however many unrelated Nodes lie between. Only unreached slots are counted: a reached
// one is work the graph needs, and the count then costs nothing on a dense graph's slots.
constexpr std::size_t kSparseFactor = 8;
constexpr std::size_t kSparseSlack = 256;

// Every Node reachable from `root`, each after all of its operands (root last), into `order`
// (cleared first). Runs inside `walk` [W1]; polls for interrupts. `first_visit(id, node)` runs
// once for each of those Nodes, before it takes this walk's mark (its `mark` still shows what
// an earlier walk left there). Marks them all with one new epoch: `order.back()`'s mark.
struct NoVisit {
  void operator()(NodeId, const Node&) const {}
};
template <class FirstVisit = NoVisit>
void topological_order(Arena& arena, WalkScope& walk, NodeId root, std::vector<NodeId>& order,
                       FirstVisit&& first_visit = {}) {
  // Recursive twin (micrograd's build_topo):
  //   def build_topo(v):
  //       if v not in visited:
  //           visited.add(v)
  //           for child in v._prev: build_topo(child)
  //           topo.append(v)
  // `visited` is `mark == epoch`. Leaves are appended as soon as they are seen: with no
  // operands, their post-order position is immediate. A stack entry with the top bit set means:
  // its operands are done, append it (NodeIds stay below 2^31, Arena::grow).
  constexpr NodeId kExpanded = NodeId{1} << 31;
  const std::uint16_t epoch = walk.new_epoch();
  const std::size_t poll_mask = walk::mask();
  std::vector<NodeId>& stack = walk.stack();  // [W2]
  stack.push_back(root);
  order.clear();
  for (std::size_t step = 1; !stack.empty(); ++step) {
    if (walk::due(step, poll_mask)) walk::poll_interrupt();
    const NodeId top = stack.back();
    if (top & kExpanded) {
      stack.pop_back();
      order.push_back(top & ~kExpanded);
      continue;
    }
    Node& n = arena.node(top);
    if (n.mark == epoch) {
      stack.pop_back();
      continue;
    }
    first_visit(top, n);
    n.mark = epoch;
    stack.back() = top | kExpanded;
    for (NodeId id : visible_operands(n)) {
      Node& operand = arena.node(id);
      if (operand.mark == epoch) continue;
      if (operand.op == Op::Leaf) {
        first_visit(id, operand);
        operand.mark = epoch;
        order.push_back(id);
      } else {
        stack.push_back(id);
      }
    }
  }
}

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

#include "graph_reuse.hpp"

#include <vector>

#include "backward.hpp"
#include "ops.hpp"

namespace arenagrad {

namespace {

// The cached order of `root`'s graph ([A1]: it stays valid while root lives).
const std::vector<NodeId>& order_of(Arena& arena, NodeId root) {
  if (const std::vector<NodeId>* order = arena.cached_order(root)) return *order;
  std::vector<NodeId>& order = arena.cache_order(root);
  topological_order(arena, root, order);
  return order;
}

}  // namespace

void recompute(Arena& arena, NodeId root) {
  const std::vector<NodeId>& order = order_of(arena, root);
  std::vector<double>& saved = arena.saved_scratch;        // values before, restored on error
  std::vector<double>& operands = arena.operand_scratch;   // the evaluated node's operand values
  saved.clear();
  try {
    for (NodeId id : order) {
      Node& n = arena.node(id);
      if (n.flags & flag::kCustomBackward) throw CustomForwardUnknown{id};
      if (n.op == Op::Leaf || n.op == Op::Custom) continue;  // inputs: keep their data
      operands.clear();
      for (NodeId o : owned_operands(n)) operands.push_back(arena.node(o).data);
      const double value = evaluate(n.op, operands.data(), operands.size());
      saved.push_back(n.data);
      n.data = value;
    }
  } catch (...) {
    std::size_t i = 0;
    for (NodeId id : order) {
      Node& n = arena.node(id);
      if (n.op == Op::Leaf || n.op == Op::Custom) continue;
      if (i == saved.size()) break;
      n.data = saved[i++];
    }
    throw;
  }
}

void zero_grad(Arena& arena, NodeId root) {
  for (NodeId id : order_of(arena, root)) arena.node(id).grad = 0.0;
}

}  // namespace arenagrad

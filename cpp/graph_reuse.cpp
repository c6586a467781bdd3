#include "graph_reuse.hpp"

#include <vector>

#include "backward.hpp"
#include "ops.hpp"
#include "walk.hpp"

namespace arenagrad {

namespace {

// The cached order of `root`'s graph ([A1]: it stays valid while root lives). Built in a local
// vector and stored only when complete: an interrupt or std::bad_alloc half-way caches nothing.
const std::vector<NodeId>& order_of(Arena& arena, WalkScope& walk, NodeId root) {
  if (const std::vector<NodeId>* order = arena.cached_order(root)) return *order;
  std::vector<NodeId> order;
  topological_order(arena, walk, root, order);
  return arena.store_order(root, std::move(order));
}

}  // namespace

void recompute(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  const std::vector<NodeId>& order = order_of(arena, walk, root);
  std::vector<double>& saved = walk.values();              // [W2] values before, for errors
  std::vector<double>& operands = walk.operand_values();   // the evaluated node's operands
  saved.reserve(order.size());
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
  WalkScope walk(arena);
  for (NodeId id : order_of(arena, walk, root)) arena.node(id).grad = 0.0;
}

}  // namespace arenagrad

#include "backward.hpp"

#include "ops.hpp"

namespace arenagrad {

namespace {
// A stack entry with this bit set means: its operands are done, append it to the order.
// NodeIds stay below 2^31 (Arena::grow).
constexpr NodeId kExpanded = NodeId{1} << 31;
}  // namespace

void topological_order(Arena& arena, NodeId root, std::vector<NodeId>& order) {
  // Recursive twin (micrograd's build_topo):
  //   def build_topo(v):
  //       if v not in visited:
  //           visited.add(v)
  //           for child in v._prev: build_topo(child)
  //           topo.append(v)
  // `visited` is `mark == epoch`. Leaves are appended as soon as they are seen: with no
  // operands, their post-order position is immediate.
  const std::uint16_t epoch = arena.begin_walk();
  std::vector<NodeId>& stack = arena.stack_scratch;
  order.clear();
  stack.clear();
  stack.push_back(root);
  while (!stack.empty()) {
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
    n.mark = epoch;
    stack.back() = top | kExpanded;
    for (NodeId id : visible_operands(n)) {
      Node& operand = arena.node(id);
      if (operand.mark == epoch) continue;
      if (operand.op == Op::Leaf) {
        operand.mark = epoch;
        order.push_back(id);
      } else {
        stack.push_back(id);
      }
    }
  }
}

void backward(Arena& arena, NodeId root) {
  std::vector<NodeId>& order = arena.order_scratch;
  topological_order(arena, root, order);
  arena.node(root).grad = 1.0;
  for (auto it = order.rbegin(); it != order.rend(); ++it) propagate(arena, arena.node(*it));
}

}  // namespace arenagrad

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
  std::size_t until_poll = Arena::kPollInterval;
  while (!stack.empty()) {
    if (--until_poll == 0) {
      arena.poll_interrupt();
      until_poll = Arena::kPollInterval;
    }
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

namespace {

// Fast paths. When every non-leaf operand has a smaller id than its user (the common case:
// allocate() hands out ascending slots, arena.hpp [A4]), descending id order is a reverse
// topological order: the sweep scans ids down from the root, propagating through the Nodes
// marked as reachable and marking their operands, with no order vector and no stack. Leaves are
// never marked: they receive their grad from their users and have nothing to pass on.

// One scan, when no live Node breaks the order (Arena::out_of_order_nodes() == 0).
void sweep_by_id(Arena& arena, NodeId root, std::uint16_t epoch) {
  arena.node(root).mark = epoch;
  std::size_t pending = 1;  // marked, not yet swept
  for (NodeId id = root;; --id) {
    if ((id & (Arena::kPollInterval - 1)) == 0) arena.poll_interrupt();
    const Node& n = arena.node(id);
    if (n.mark != epoch) continue;
    propagate(arena, n);
    for (NodeId o : visible_operands(n)) {
      Node& operand = arena.node(o);
      if (operand.mark != epoch && operand.op != Op::Leaf) {
        operand.mark = epoch;
        ++pending;
      }
    }
    if (--pending == 0) return;
  }
}

// Otherwise a first scan marks what is reachable and checks the order for this graph; it
// returns the lowest reachable id, or `root + 1` when the order does not hold here (nothing has
// been swept: the caller falls back to the explicit topological order).
NodeId mark_reachable_by_id(Arena& arena, NodeId root, std::uint16_t epoch) {
  arena.node(root).mark = epoch;
  std::size_t pending = 1;  // marked, not yet scanned
  for (NodeId id = root;; --id) {
    if ((id & (Arena::kPollInterval - 1)) == 0) arena.poll_interrupt();
    const Node& n = arena.node(id);
    if (n.mark != epoch) continue;
    for (NodeId o : visible_operands(n)) {
      Node& operand = arena.node(o);
      if (operand.op == Op::Leaf) continue;
      if (o >= id) return root + 1;
      if (operand.mark != epoch) {
        operand.mark = epoch;
        ++pending;
      }
    }
    if (--pending == 0) return id;
  }
}

}  // namespace

void backward(Arena& arena, NodeId root) {
  const std::uint16_t epoch = arena.begin_walk();
  arena.node(root).grad = 1.0;
  if (arena.out_of_order_nodes() == 0) {
    sweep_by_id(arena, root, epoch);
    return;
  }
  const NodeId lowest = mark_reachable_by_id(arena, root, epoch);
  if (lowest <= root) {
    for (NodeId id = root + 1; id-- > lowest;) {
      if ((id & (Arena::kPollInterval - 1)) == 0) arena.poll_interrupt();
      const Node& n = arena.node(id);
      if (n.mark == epoch) propagate(arena, n);
    }
    return;
  }
  std::vector<NodeId>& order = arena.order_scratch;
  topological_order(arena, root, order);
  for (std::size_t i = order.size(); i-- > 0;) {
    if ((i & (Arena::kPollInterval - 1)) == 0) arena.poll_interrupt();
    propagate(arena, arena.node(order[i]));
  }
}

}  // namespace arenagrad

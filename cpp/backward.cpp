#include "backward.hpp"

#include "ops.hpp"

namespace arenagrad {

namespace {
BackwardReport report{"", 0};
}  // namespace

BackwardReport last_backward() { return report; }
void note_backward(BackwardReport r) { report = r; }

namespace {

// Fast paths. When every non-leaf operand has a smaller id than its user (the common case:
// allocate() hands out ascending slots, arena.hpp [A4]), descending id order is a reverse
// topological order: the sweep scans ids down from the root, propagating through the Nodes
// marked as reachable and marking their operands, with no order vector and no stack. Leaves are
// never marked: they receive their grad from their users and have nothing to pass on.

// One scan, when no live Node breaks the order (Arena::out_of_order_nodes() == 0). Returns the
// id where it stopped when the slots turned out sparse (every reachable Node above it has been
// swept, none below it), or kDone.
constexpr NodeId kDone = ~NodeId{0};

NodeId sweep_by_id(Arena& arena, NodeId root, std::uint16_t epoch) {
  const std::size_t poll_mask = walk::mask();
  arena.node(root).mark = epoch;
  std::size_t pending = 1;  // marked, not yet swept
  std::size_t budget = kSparseFactor + kSparseSlack;  // unreached slots it may still read
  for (NodeId id = root;; --id) {
    if (walk::due(id, poll_mask)) walk::poll_interrupt();
    const Node& n = arena.node(id);
    if (n.mark != epoch) {
      if (budget-- == 0) return id;
      continue;
    }
    const auto reach = [&](Node& operand) ARENAGRAD_FORCE_INLINE {
      if (operand.mark != epoch && operand.op != Op::Leaf) {
        operand.mark = epoch;
        ++pending;
        budget += kSparseFactor;
      }
    };
    propagate(arena, n, reach);  // marks each operand as its grad is written: one lookup apiece
    if (--pending == 0) {
      report.slots_read = root - id + 1;
      return kDone;
    }
  }
}

// Otherwise a first scan marks what is reachable and checks the order for this graph; it
// returns the lowest reachable id, or kDone when the order does not hold here or the slots are
// sparse (nothing has been swept: the caller falls back to the explicit topological order).
NodeId mark_reachable_by_id(Arena& arena, NodeId root, std::uint16_t epoch) {
  const std::size_t poll_mask = walk::mask();
  arena.node(root).mark = epoch;
  std::size_t pending = 1;  // marked, not yet scanned
  std::size_t budget = kSparseFactor + kSparseSlack;  // unreached slots it may still read
  for (NodeId id = root;; --id) {
    if (walk::due(id, poll_mask)) walk::poll_interrupt();
    const Node& n = arena.node(id);
    if (n.mark != epoch) {
      if (budget-- == 0) return kDone;
      continue;
    }
    for (NodeId o : visible_operands(n)) {
      Node& operand = arena.node(o);
      if (operand.op == Op::Leaf) continue;
      if (o >= id) return kDone;
      if (operand.mark != epoch) {
        operand.mark = epoch;
        ++pending;
        budget += kSparseFactor;
      }
    }
    if (--pending == 0) return id;
  }
}

// Propagates through the topological order of root's graph, in reverse, skipping the Nodes
// above `swept_above` (already swept by a scan that gave up there).
void sweep_topological(Arena& arena, WalkScope& walk, NodeId root, NodeId swept_above) {
  std::vector<NodeId>& order = walk.order();  // [W2]
  topological_order(arena, walk, root, order);
  const std::size_t poll_mask = walk::mask();
  for (std::size_t i = order.size(); i-- > 0;) {
    if (walk::due(i, poll_mask)) walk::poll_interrupt();
    if (order[i] <= swept_above) propagate(arena, arena.node(order[i]));
  }
  report.slots_read += order.size();
}

}  // namespace

void backward(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  const std::size_t poll_mask = walk::mask();
  const std::uint16_t epoch = walk.new_epoch();
  arena.node(root).grad = 1.0;
  report = {"scan", 0};
  if (arena.out_of_order_nodes() == 0) {
    const NodeId stopped = sweep_by_id(arena, root, epoch);
    if (stopped == kDone) return;
    // [A4] with no Node out of order, the reachable Nodes above `stopped` are exactly the swept
    report = {"topological order", root - stopped + 1};
    sweep_topological(arena, walk, root, stopped);
    return;
  }
  const NodeId lowest = mark_reachable_by_id(arena, root, epoch);
  if (lowest != kDone) {
    report = {"checked scan", 2 * std::size_t{root - lowest + 1}};
    for (NodeId id = root + 1; id-- > lowest;) {
      if (walk::due(id, poll_mask)) walk::poll_interrupt();
      const Node& n = arena.node(id);
      if (n.mark == epoch) propagate(arena, n);
    }
    return;
  }
  report = {"topological order", 0};
  sweep_topological(arena, walk, root, kDone);
}

}  // namespace arenagrad

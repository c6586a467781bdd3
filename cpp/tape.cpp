#include "tape.hpp"

#include <algorithm>

#include "backward.hpp"
#include "ops.hpp"

namespace arenagrad::tape {

namespace {

constexpr std::uint32_t kOneNode = 0;  // Tape::code: one node, run by its op; n > 0: a chain

// True when inner[i] and inner[i+1] are a chain link m = w*x, a = _ + m, where `_` is not m
// itself (m + m: the chain would read its start before computing m).
bool is_link(const Arena& arena, const std::vector<NodeId>& inner, std::size_t i) {
  if (i + 1 >= inner.size()) return false;
  const Node& m = arena.node(inner[i]);
  const Node& a = arena.node(inner[i + 1]);
  return m.op == Op::Mul && a.op == Op::Add && a.operands.pair[1] == inner[i] &&
         a.operands.pair[0] != inner[i];
}

// True when link inner[j], inner[j+1] may join a run whose Adds carry `epoch` in their marks:
// it continues the run, and its Mul reads no Add of the run. backward() keeps each Add's grad
// in a register from the store to the next link's use, which such a read would make stale.
bool extends(Arena& arena, const std::vector<NodeId>& inner, std::size_t j, std::uint16_t epoch) {
  if (!is_link(arena, inner, j) || arena.node(inner[j + 1]).operands.pair[0] != inner[j - 1])
    return false;
  const Node& m = arena.node(inner[j]);
  return arena.node(m.operands.pair[0]).mark != epoch && arena.node(m.operands.pair[1]).mark != epoch;
}

// Appends the non-leaf nodes' ids to `ids` and their instructions to `tape` (a link's factors
// to tape.factors), fusing each maximal run of links into one.
void emit(Arena& arena, std::uint16_t epoch, const std::vector<NodeId>& inner,
          std::vector<NodeId>& ids, Tape& tape) {
  for (std::size_t i = 0; i < inner.size();) {
    if (!is_link(arena, inner, i)) {
      ids.push_back(inner[i++]);
      tape.code.push_back(kOneNode);
      continue;
    }
    arena.node(inner[i + 1]).mark = epoch;  // the run's Adds carry `epoch` while it grows
    std::size_t j = i + 2;  // the run is inner[i, j)
    while (extends(arena, inner, j, epoch)) {
      arena.node(inner[j + 1]).mark = epoch;
      j += 2;
    }
    for (std::size_t k = i + 1; k < j; k += 2) arena.node(inner[k]).mark = 0;  // no epoch is 0
    ids.insert(ids.end(), inner.begin() + static_cast<std::ptrdiff_t>(i),
               inner.begin() + static_cast<std::ptrdiff_t>(j));
    for (std::size_t k = i; k < j; k += 2)
      for (NodeId factor : arena.node(inner[k]).operands.pair) tape.factors.push_back(&arena.node(factor));
    tape.code.push_back(static_cast<std::uint32_t>((j - i) / 2));
    i = j;
  }
}

// Polls for interrupts once per walk::interval() nodes, between instructions: a chain counts its
// nodes but is not split, so a chain of n links polls only at its ends (one compare a link
// measured 17% more instructions in recompute(); a 1e6-link chain measured 12 ms a pass).
class Poll {
 public:
  void after(std::size_t nodes) {
    if ((done_ += nodes) >= next_) {
      next_ = done_ + walk::interval();
      walk::poll_interrupt();
    }
  }

 private:
  std::size_t done_ = 0;
  std::size_t next_ = walk::interval();
};

// One node's forward value, as evaluate() gives it from its operands' current data. Add and Mul
// inline and fixed arities from a stack array: one vector push a node cost 10% of recompute().
double value_of(const Arena& arena, const Node& n, std::vector<double>& operands) {
  const NodeId* o = n.operands.pair;
  switch (n.op) {
    case Op::Add: return arena.node(o[0]).data + arena.node(o[1]).data;
    case Op::Mul: return arena.node(o[0]).data * arena.node(o[1]).data;
    case Op::Sum:
      operands.clear();
      for (NodeId id : owned_operands(n)) operands.push_back(arena.node(id).data);
      return evaluate(n.op, operands.data(), operands.size());
    default: {
      const double x[2] = {arena.node(o[0]).data, owned_arity(n.op) == 2 ? arena.node(o[1]).data : 0.0};
      return evaluate(n.op, x, 2);
    }
  }
}

// Tape::runs for these ids, or none when there would be more than one run per 8 ids.
std::vector<NodeId> runs_of(std::vector<NodeId> ids) {
  std::sort(ids.begin(), ids.end());
  std::vector<NodeId> runs;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[j - 1] + 1) ++j;
    if (runs.size() / 2 + 1 > ids.size() / 8 + 1) return {};
    runs.push_back(ids[i]);
    runs.push_back(static_cast<NodeId>(j - i));
    i = j;
  }
  runs.shrink_to_fit();
  return runs;
}

}  // namespace

Tape lower(Arena& arena, WalkScope& walk, NodeId root) {
  std::vector<NodeId>& order = walk.order();  // [W2]
  topological_order(arena, walk, root, order);
  Tape tape;
  std::vector<NodeId> ids, inner;  // the stream's ids: the leaves', then the instructions'
  bool in_id_order = true;
  for (NodeId id : order) {
    const Node& n = arena.node(id);
    if (n.op == Op::Leaf) {
      ids.push_back(id);
    } else {
      inner.push_back(id);
      if (n.flags & flag::kOutOfOrder) in_id_order = false;
    }
  }
  tape.leaves = ids.size();
  if (in_id_order) std::sort(inner.begin(), inner.end());  // [T2] the id scan's order
  ids.reserve(order.size());
  emit(arena, walk.new_epoch(), inner, ids, tape);
  tape.code.shrink_to_fit();
  tape.factors.shrink_to_fit();
  tape.nodes.reserve(ids.size());
  for (NodeId id : ids) tape.nodes.push_back(&arena.node(id));
  tape.runs = runs_of(std::move(ids));
  return tape;
}

void forward(Arena& arena, const Tape& tape, Saved& saved) {
  double* save = saved.values;
  Poll poll;
  std::vector<double> operands;
  Node* const* node = tape.nodes.data() + tape.leaves;
  Node* const* factor = tape.factors.data();
  try {
    for (const std::uint32_t links : tape.code) {
      if (links != kOneNode) {
        poll.after(2 * links);
        double acc = arena.node(node[1]->operands.pair[0]).data;
        for (Node* const* const end = node + 2 * links; node != end; node += 2, factor += 2) {
          Node& m = *node[0];
          Node& a = *node[1];
          const double product = factor[0]->data * factor[1]->data;
          *save++ = m.data;
          m.data = product;
          acc = acc + product;
          *save++ = a.data;
          a.data = acc;
        }
        continue;
      }
      poll.after(1);
      Node& n = **node++;
      if (n.flags & flag::kCustomBackward) throw CustomForwardUnknown{arena.id_of(n)};
      if (n.op == Op::Custom) continue;  // built by hand: its data is an input
      const double value = value_of(arena, n, operands);
      *save++ = n.data;
      n.data = value;
    }
  } catch (...) {
    saved.count = static_cast<std::size_t>(save - saved.values);
    throw;
  }
  saved.count = static_cast<std::size_t>(save - saved.values);
}

void restore(const Tape& tape, const Saved& saved) {
  std::size_t next = 0;
  for (std::size_t i = tape.leaves; i < tape.nodes.size() && next < saved.count; ++i) {
    Node& n = *tape.nodes[i];
    if (n.op != Op::Custom) n.data = saved.values[next++];  // forward() skips Custom nodes alone
  }
}

void backward(Arena& arena, const Tape& tape) {
  Poll poll;
  Node* const* end = tape.nodes.data() + tape.nodes.size();  // the instructions' nodes, from the last
  Node* const* factor = tape.factors.data() + tape.factors.size();  // and the links' factors
  for (auto code = tape.code.rbegin(); code != tape.code.rend(); ++code) {
    const std::uint32_t links = *code;
    if (links == kOneNode) {
      poll.after(1);
      propagate(arena, **--end);
      continue;
    }
    // The links from the last: a_k, then m_k, as propagate() would take them one by one. The
    // grad of a_k-1 stays in `g` from its store to its use: nothing in between writes it
    // (extends(): no Mul of the run reads an Add of the run).
    poll.after(2 * links);
    // a_k's first operand is a_k-1, the entry just below it in the run (emit()'s extends()):
    // only the first link reads it from its Add.
    Node* const* const first = end - 2 * links;
    double g = end[-1]->grad;
    for (Node* const* link = end - 2; ; link -= 2) {
      Node& m = *link[0];
      Node& before = link != first ? *link[-1] : arena.node(link[1]->operands.pair[0]);
      const double g_before = before.grad + 1.0 * g;
      before.grad = g_before;
      const double gm = m.grad + 1.0 * g;
      m.grad = gm;
      factor -= 2;
      Node& w = *factor[0];
      Node& x = *factor[1];
      w.grad += x.data * gm;
      x.grad += w.data * gm;
      g = g_before;
      if (link == first) break;
    }
    end = first;
  }
}

void zero_grad(Arena& arena, const Tape& tape) {
  if (tape.runs.empty()) {
    for (Node* n : tape.nodes) n->grad = 0.0;
    return;
  }
  // Consecutive ids within a chunk are consecutive Nodes in memory ([A3]'s chunks).
  for (std::size_t r = 0; r < tape.runs.size(); r += 2) {
    NodeId id = tape.runs[r];
    std::size_t left = tape.runs[r + 1];
    while (left > 0) {
      const std::size_t in_chunk =
          std::min<std::size_t>(left, Arena::kChunkSize - (id & (Arena::kChunkSize - 1)));
      Node* const first = &arena.node(id);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#endif
      for (std::size_t k = 0; k < in_chunk; ++k) first[k].grad = 0.0;
      id += static_cast<NodeId>(in_chunk);
      left -= in_chunk;
    }
  }
}

}  // namespace arenagrad::tape

#include "tape.hpp"

#include <algorithm>

#include "backward.hpp"
#include "ops.hpp"

namespace arenagrad::tape {

namespace {

constexpr NodeId kDot = NodeId{1} << 31;

bool is_leaf(const Node& n) { return n.op == Op::Leaf; }

// True when inner[i] and inner[i+1] are a chain link m = w*x, a = _ + m.
bool is_link(const Arena& arena, const std::vector<NodeId>& inner, std::size_t i) {
  if (i + 1 >= inner.size()) return false;
  const Node& m = arena.node(inner[i]);
  const Node& a = arena.node(inner[i + 1]);
  return m.op == Op::Mul && a.op == Op::Add && a.operands.pair[1] == inner[i];
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

// Appends the non-leaf nodes, fusing each maximal run of links into one kDot instruction.
void emit(Arena& arena, std::uint16_t epoch, const std::vector<NodeId>& inner,
          std::vector<NodeId>& stream) {
  for (std::size_t i = 0; i < inner.size();) {
    if (!is_link(arena, inner, i)) {
      stream.push_back(inner[i++]);
      continue;
    }
    arena.node(inner[i + 1]).mark = epoch;  // the run's Adds carry `epoch` while it grows
    std::size_t j = i + 2;  // the run is inner[i, j)
    while (extends(arena, inner, j, epoch)) {
      arena.node(inner[j + 1]).mark = epoch;
      j += 2;
    }
    for (std::size_t k = i + 1; k < j; k += 2) arena.node(inner[k]).mark = 0;  // no epoch is 0
    const NodeId tag = kDot | static_cast<NodeId>((j - i) / 2);
    stream.push_back(tag);
    stream.insert(stream.end(), inner.begin() + static_cast<std::ptrdiff_t>(i),
                  inner.begin() + static_cast<std::ptrdiff_t>(j));
    stream.push_back(tag);
    i = j;
  }
}

std::size_t leaf_count(const std::vector<NodeId>& stream) { return stream[0]; }

// Polls for interrupts once per walk::interval() nodes, however far an instruction jumps.
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

// One node's forward value, as evaluate() gives it from its operands' current data.
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

}  // namespace

std::vector<NodeId> lower(Arena& arena, WalkScope& walk, NodeId root) {
  std::vector<NodeId>& order = walk.order();  // [W2]
  topological_order(arena, walk, root, order);
  std::vector<NodeId> leaves, inner;
  bool in_id_order = true;
  for (NodeId id : order) {
    const Node& n = arena.node(id);
    if (is_leaf(n)) {
      leaves.push_back(id);
    } else {
      inner.push_back(id);
      if (n.flags & flag::kOutOfOrder) in_id_order = false;
    }
  }
  if (in_id_order) std::sort(inner.begin(), inner.end());  // [T2] the id scan's order
  std::vector<NodeId> stream;
  stream.reserve(1 + order.size() + inner.size() / 8);
  stream.push_back(static_cast<NodeId>(leaves.size()));
  stream.insert(stream.end(), leaves.begin(), leaves.end());
  emit(arena, walk.new_epoch(), inner, stream);
  return stream;
}

void forward(Arena& arena, const std::vector<NodeId>& stream, Saved& saved) {
  double* save = saved.values;
  Poll poll;
  std::vector<double> operands;
  try {
    for (std::size_t i = 1 + leaf_count(stream); i < stream.size(); ++i) {
      if (stream[i] & kDot) {
        const std::size_t links = stream[i] & ~kDot;
        poll.after(2 * links);
        const NodeId* link = &stream[i + 1];
        double acc = arena.node(arena.node(link[1]).operands.pair[0]).data;
        for (std::size_t k = 0; k < links; ++k, link += 2) {
          Node& m = arena.node(link[0]);
          Node& a = arena.node(link[1]);
          const double product =
              arena.node(m.operands.pair[0]).data * arena.node(m.operands.pair[1]).data;
          *save++ = m.data;
          m.data = product;
          acc = acc + product;
          *save++ = a.data;
          a.data = acc;
        }
        i += 2 * links + 1;
        continue;
      }
      poll.after(1);
      Node& n = arena.node(stream[i]);
      if (n.flags & flag::kCustomBackward) throw CustomForwardUnknown{stream[i]};
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

void restore(Arena& arena, const std::vector<NodeId>& stream, const Saved& saved) {
  std::size_t next = 0;
  auto put_back = [&](NodeId id) {
    if (next == saved.count) return false;
    arena.node(id).data = saved.values[next++];
    return true;
  };
  for (std::size_t i = 1 + leaf_count(stream); i < stream.size(); ++i) {
    if (stream[i] & kDot) {
      const std::size_t links = stream[i] & ~kDot;
      for (std::size_t k = 0; k < 2 * links; ++k)
        if (!put_back(stream[i + 1 + k])) return;
      i += 2 * links + 1;
      continue;
    }
    if (arena.node(stream[i]).op == Op::Custom) continue;
    if (!put_back(stream[i])) return;
  }
}

void backward(Arena& arena, const std::vector<NodeId>& stream) {
  Poll poll;
  const std::size_t first = 1 + leaf_count(stream);
  for (std::size_t i = stream.size(); i-- > first;) {
    if (!(stream[i] & kDot)) {
      poll.after(1);
      propagate(arena, arena.node(stream[i]));
      continue;
    }
    // The links from the last: a_k, then m_k, as propagate() would take them one by one. The
    // grad of a_k-1 stays in `g` from its store to its use: nothing in between writes it
    // (extends(): no Mul of the run reads an Add of the run).
    const std::size_t links = stream[i] & ~kDot;
    poll.after(2 * links);
    i -= 2 * links + 1;  // the opening tag
    double g = arena.node(stream[i + 2 * links]).grad;
    for (std::size_t k = links; k-- > 0;) {
      const Node& a = arena.node(stream[i + 2 + 2 * k]);
      Node& m = arena.node(stream[i + 1 + 2 * k]);
      Node& before = arena.node(a.operands.pair[0]);
      const double g_before = before.grad + 1.0 * g;
      before.grad = g_before;
      const double gm = m.grad + 1.0 * g;
      m.grad = gm;
      Node& w = arena.node(m.operands.pair[0]);
      w.grad += arena.node(m.operands.pair[1]).data * gm;
      Node& x = arena.node(m.operands.pair[1]);
      x.grad += w.data * gm;
      g = g_before;
    }
  }
}

void zero_grad(Arena& arena, const std::vector<NodeId>& stream) {
  const NodeId* id = stream.data() + 1;
  const NodeId* const end = stream.data() + stream.size();
  for (const NodeId* const leaves_end = id + leaf_count(stream); id != leaves_end; ++id)
    arena.node(*id).grad = 0.0;
  while (id != end) {
    if (!(*id & kDot)) {
      arena.node(*id++).grad = 0.0;
      continue;
    }
    const NodeId* const links_end = id + 1 + 2 * (*id & ~kDot);
    for (++id; id != links_end; ++id) arena.node(*id).grad = 0.0;
    ++id;  // the closing tag
  }
}

}  // namespace arenagrad::tape

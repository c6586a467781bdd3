// grad() with create_graph: the adjoints as engine nodes, each op's local derivative written
// with engine operations over the explicit order, so that grad() and backward() can go through
// them again.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "grad.hpp"
#include "grad_internal.hpp"
#include "ops.hpp"

namespace arenagrad {
namespace grad_detail {

namespace {

constexpr NodeId kNone = ~NodeId{0};  // an adjoint node not made yet: zero so far

// Counts on the nodes one step builds, dropped when the step ends (also by a throw): a node
// outlives the step only if an adjoint or a node built on it took a count of its own.
class StepHolds {
 public:
  explicit StepHolds(Arena& arena) : arena_(arena) {}
  StepHolds(const StepHolds&) = delete;
  StepHolds& operator=(const StepHolds&) = delete;
  ~StepHolds() {
    while (n_ > 0) arena_.release(ids_[--n_]);
  }
  NodeId operator()(NodeId id) {
    arena_.acquire(id);
    ids_[n_++] = id;
    return id;
  }

 private:
  Arena& arena_;
  NodeId ids_[12];  // the most one op's rule builds is 8 (Pow)
  int n_ = 0;
};

// The adjoint of each node of the order: a node holding one count, or kNone.
class NodeAdjoints {
 public:
  NodeAdjoints(Arena& arena, std::size_t n) : arena_(arena), ids_(n, kNone) {}
  NodeAdjoints(const NodeAdjoints&) = delete;
  NodeAdjoints& operator=(const NodeAdjoints&) = delete;
  ~NodeAdjoints() {
    for (NodeId id : ids_)
      if (id != kNone) arena_.release(id);
  }
  NodeId operator[](std::size_t i) const { return ids_[i]; }
  // adjoint[i] += contribution, as an Add node (the first contribution is the adjoint itself).
  void accumulate(std::size_t i, NodeId contribution) {
    NodeId& slot = ids_[i];
    const NodeId total =
        slot == kNone ? contribution : add(arena_, Operand::of(slot), Operand::of(contribution));
    arena_.acquire(total);
    if (slot != kNone) arena_.release(slot);  // now held by `total`
    slot = total;
  }

 private:
  Arena& arena_;
  std::vector<NodeId> ids_;
};

// for_each_partial (ops.hpp) written with engine ops: emit(operand, d out / d operand * g) for
// each operand `wanted`, g the adjoint node of `out`. Each node's value is computed exactly as
// for_each_partial computes it, so the numbers are the double sweep's, IEEE inf/NaN included
// where Python's ** would raise (a ** (k-1) at a = 0): make_node records such a value as is.
template <class Wanted, class Emit>
void chain_rule_nodes(Arena& arena, NodeId out_id, NodeId g, Wanted&& wanted, Emit&& emit) {
  StepHolds h(arena);
  const Node& out = arena.node(out_id);  // [A3]: valid across the allocations below
  const NodeId a = out.operands.pair[0], b = out.operands.pair[1];
  const auto constant = [&](double x, bool is_int = false) {
    const NodeId id = h(leaf(arena, x));
    if (is_int) arena.node(id).flags |= flag::kIntConstant;
    return id;
  };
  const auto times = [&](NodeId x, NodeId y) {
    return h(mul(arena, Operand::of(x), Operand::of(y)));
  };
  const auto one_minus = [&](NodeId x) {  // 1 + x * -1, i.e. 1 - x exactly (micrograd's `-`)
    return h(add(arena, Operand::of(constant(1.0)), Operand::of(times(x, constant(-1.0, true)))));
  };
  const auto power = [&](Op op, NodeId base, NodeId exponent, double value) {
    const NodeId id = h(make_node(arena, op, value, base, exponent));
    // a PowConst's hidden constant k carries k-1 in its grad field (ops.cpp pow_const)
    if (op == Op::PowConst) arena.node(exponent).grad = arena.node(exponent).data - 1;
    return id;
  };
  switch (out.op) {
    case Op::Leaf:
    case Op::Custom:
      return;
    case Op::Add:  // 1 * g is g
      if (wanted(a)) emit(a, g);
      if (wanted(b)) emit(b, g);
      return;
    case Op::Sum:
      for (NodeId id : operands_of(out, -1))
        if (wanted(id)) emit(id, g);
      return;
    case Op::Mul:  // b g, a g
      if (wanted(a)) emit(a, times(b, g));
      if (wanted(b)) emit(b, times(a, g));
      return;
    case Op::PowConst: {  // k a^(k-1) g
      if (!wanted(a)) return;
      const double x = arena.node(a).data, k = arena.node(b).data;
      const double k_minus_1 = arena.node(b).grad;  // as Python computes it (pow_const)
      const bool is_int = arena.node(b).flags & flag::kIntConstant;
      const NodeId p = power(Op::PowConst, a, constant(k_minus_1, is_int), std::pow(x, k_minus_1));
      emit(a, times(times(constant(k, is_int), p), g));
      return;
    }
    case Op::Pow: {  // b a^(b-1) g, and a^b log(a) g, log(a) a NaN constant for a <= 0 (so
                     // every derivative of it is NaN too, as torch's)
      const double x = arena.node(a).data;
      if (wanted(a)) {
        const NodeId b_minus_1 = h(add(arena, Operand::of(b), Operand::of(constant(-1.0, true))));
        const NodeId p = power(Op::Pow, a, b_minus_1, std::pow(x, arena.node(b_minus_1).data));
        emit(a, times(times(b, p), g));
      }
      if (wanted(b)) {
        const NodeId log_a = x > 0 ? h(unary(arena, Op::Log, a))
                                   : constant(std::numeric_limits<double>::quiet_NaN());
        emit(b, times(times(out_id, log_a), g));
      }
      return;
    }
    case Op::Relu:  // a constant 0 or 1: relu's second derivative is 0
      if (wanted(a)) emit(a, times(constant(out.data > 0 ? 1.0 : 0.0), g));
      return;
    case Op::Tanh:  // (1 - t t) g
      if (wanted(a)) emit(a, times(one_minus(times(out_id, out_id)), g));
      return;
    case Op::Exp:  // exp(a) g: the node itself
      if (wanted(a)) emit(a, times(out_id, g));
      return;
    case Op::Log:  // a**-1 g, its value 1/a
      if (wanted(a))
        emit(a, times(power(Op::PowConst, a, constant(-1.0, true), 1 / arena.node(a).data), g));
      return;
    case Op::Sigmoid:  // s (1 - s) g
      if (wanted(a)) emit(a, times(times(out_id, one_minus(out_id)), g));
      return;
  }
}

}  // namespace

}  // namespace grad_detail

using namespace grad_detail;

HeldNodes grad_graph(Arena& arena, NodeId output, const NodeId* inputs, std::size_t count) {
  // The walk ends before any node is built: building runs no walk, but a poll below may run
  // Python code that does.
  const Topo topo = [&] {
    WalkScope walk(arena);
    return Topo(arena, walk, output);
  }();
  const std::size_t n = topo.order.size();
  const auto at = [&](NodeId id) { return topo.find(id); };
  // needed[i]: order[i] is an input or reaches one. Other adjoints would be nodes nobody uses.
  std::vector<std::uint8_t> needed(n, 0);
  for (std::size_t k = 0; k < count; ++k)
    if (topo.find(inputs[k]) != kNowhere) needed[topo.find(inputs[k])] = 1;
  for (std::size_t i = 0; i < n; ++i)
    for (NodeId o : visible_operands(arena.node(topo.order[i])))
      needed[i] |= needed[at(o)];

  NodeAdjoints adj(arena, n);
  {
    StepHolds h(arena);
    adj.accumulate(n - 1, h(leaf(arena, 1.0)));
  }
  for (std::size_t i = n; i-- > 0;) {
    if (walk::due(i, walk::mask())) walk::poll_interrupt();
    const NodeId id = topo.order[i];
    if (arena.node(id).op == Op::Custom) through_custom(arena, id);
    if (!needed[i] || adj[i] == kNone) continue;
    chain_rule_nodes(
        arena, id, adj[i], [&](NodeId o) { return needed[at(o)] != 0; },
        [&](NodeId o, NodeId contribution) { adj.accumulate(at(o), contribution); });
  }

  HeldNodes results(arena);
  results.reserve(count);
  for (std::size_t k = 0; k < count; ++k) {
    const std::uint32_t i = topo.find(inputs[k]);
    results.hold(i != kNowhere && adj[i] != kNone ? adj[i] : leaf(arena, 0.0));
  }
  return results;
}

}  // namespace arenagrad

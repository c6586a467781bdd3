#include "ops.hpp"

#include <memory>
#include <utility>

#include "annotations.hpp"

namespace arenagrad {

namespace {

NodeId materialize(Arena& arena, const Operand& x) {
  if (!x.is_constant) return x.id;
  const NodeId id = leaf(arena, x.constant);
  if (x.is_int) arena.node(id).flags |= flag::kIntConstant;
  return id;
}

// Records `op` over operands of which one at least is a plain number: they become leaves now
// that the value is known to be valid. A failed allocation frees the constants made so far [A5].
ARENAGRAD_NO_INLINE NodeId record_with_constants(Arena& arena, Op op, double data,
                                                 const Operand& a, const Operand& b) {
  if (!grad_mode::recording()) return leaf(arena, data);
  const NodeId ia = materialize(arena, a);
  try {
    const NodeId ib = materialize(arena, b);
    try {
      return make_node(arena, op, data, ia, ib);
    } catch (...) {
      arena.discard_if_unheld(ib);
      throw;
    }
  } catch (...) {
    arena.discard_if_unheld(ia);
    throw;
  }
}

// Records `op` over operands that may still be plain numbers. Two Values (the common case)
// need nothing undone on a failure: make_node allocates last.
inline NodeId record(Arena& arena, Op op, double data, const Operand& a, const Operand& b) {
  if (!a.is_constant && !b.is_constant) return make_node(arena, op, data, a.id, b.id);
  return record_with_constants(arena, op, data, a, b);
}

double sigmoid(double x) {
  if (x >= 0) return 1 / (1 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1 + e);
}

}  // namespace

double python_pow(double base, double exponent) {
  if (exponent == 0) return 1.0;
  if (std::isnan(base) || std::isnan(exponent)) return std::pow(base, exponent);
  if (base == 0 && exponent < 0 && std::isfinite(exponent))
    throw ArithmeticFault{ArithmeticFault::Kind::ZeroDivision,
                          "0.0 cannot be raised to a negative power"};
  if (base < 0 && std::isfinite(base) && std::isfinite(exponent) &&
      exponent != std::floor(exponent))
    throw ArithmeticFault{ArithmeticFault::Kind::Domain,
                          "negative number cannot be raised to a fractional power"};
  const double r = std::pow(base, exponent);
  if (std::isinf(r) && std::isfinite(base) && std::isfinite(exponent))
    throw ArithmeticFault{ArithmeticFault::Kind::Overflow, "(34, 'Numerical result out of range')"};
  return r;
}

double evaluate(Op op, const double* x, std::size_t n) {
  switch (op) {
    case Op::Leaf:
    case Op::Custom:
      break;  // no forward rule: never passed (see the declaration)
    case Op::Add: return x[0] + x[1];
    case Op::Mul: return x[0] * x[1];
    case Op::PowConst:
    case Op::Pow: return python_pow(x[0], x[1]);
    case Op::Relu: return x[0] < 0 ? 0.0 : x[0];
    case Op::Tanh: return std::tanh(x[0]);
    case Op::Exp: {
      const double r = std::exp(x[0]);
      if (std::isinf(r) && std::isfinite(x[0]))
        throw ArithmeticFault{ArithmeticFault::Kind::Overflow, "math range error"};
      return r;
    }
    case Op::Log:
      if (x[0] <= 0) throw ArithmeticFault{ArithmeticFault::Kind::Domain, "math domain error"};
      return std::log(x[0]);
    case Op::Sigmoid: return sigmoid(x[0]);
    case Op::Sum: {
      double s = 0.0;  // Python's sum() starts from 0
      for (std::size_t i = 0; i < n; ++i) s = s + x[i];
      return s;
    }
  }
  return 0.0;
}

NodeId leaf(Arena& arena, double data) { return arena.allocate(data); }

NodeId add(Arena& arena, Operand a, Operand b) {
  const double x[2] = {a.value(arena), b.value(arena)};
  return record(arena, Op::Add, evaluate(Op::Add, x, 2), a, b);
}

NodeId mul(Arena& arena, Operand a, Operand b) {
  const double x[2] = {a.value(arena), b.value(arena)};
  return record(arena, Op::Mul, evaluate(Op::Mul, x, 2), a, b);
}

NodeId pow_const(Arena& arena, Operand a, Operand k) {
  const double x[2] = {a.value(arena), k.constant};
  const NodeId id = record(arena, Op::PowConst, evaluate(Op::PowConst, x, 2), a, k);
  // The hidden constant's unused grad holds k-1 for the derivative: exact here for |k| <= 2**53
  // (value_type.cpp stores Python's exact int k-1 beyond).
  const Node& out = arena.node(id);
  if (out.op == Op::PowConst) arena.node(out.operands.pair[1]).grad = k.constant - 1;
  return id;
}

NodeId pow(Arena& arena, Operand base, Operand exponent) {
  const double x[2] = {base.value(arena), exponent.value(arena)};
  return record(arena, Op::Pow, evaluate(Op::Pow, x, 2), base, exponent);
}

NodeId unary(Arena& arena, Op op, NodeId a) {
  const double x = arena.node(a).data;
  return make_node(arena, op, evaluate(op, &x, 1), a);
}

namespace {

// n-ary nodes: the operand array is allocated before the Node, so a failure leaves nothing [A5].
NodeId nary(Arena& arena, Op op, double data, const NodeId* ids, std::size_t n) {
  std::unique_ptr<NodeId[]> operands = Arena::new_operands(n);
  const NodeId id = arena.allocate(data);
  NodeId* slots = Arena::operand_slots(operands);
  Node& out = arena.node(id);
  out.op = op;
  arena.attach_operands(out, std::move(operands));
  for (std::size_t i = 0; i < n; ++i) {
    slots[i] = ids[i];
    arena.add_operand(id, ids[i]);
  }
  return id;
}

}  // namespace

NodeId sum(Arena& arena, const NodeId* ids, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s = s + arena.node(ids[i]).data;
  if (!grad_mode::recording()) return leaf(arena, s);
  return nary(arena, Op::Sum, s, ids, n);
}

NodeId custom(Arena& arena, double data, const NodeId* children, std::size_t n, std::string op) {
  const bool with_operands = n > 0 && grad_mode::recording();
  const NodeId id = with_operands ? nary(arena, Op::Custom, data, children, n) : leaf(arena, data);
  if (op.empty()) return id;
  try {
    annotations().annotate(id).op = std::move(op);
  } catch (...) {
    arena.discard_if_unheld(id);
    throw;
  }
  return id;
}

NodeId neg(Arena& arena, NodeId a) {
  return mul(arena, Operand::of(a), Operand::number(-1, true));
}

// The intermediate (-b, b**-1) is held across the second op: recording, that op takes its own
// count; under no_grad() it does not, and the hold's release frees the intermediate.
NodeId sub(Arena& arena, Operand a, Operand b) {
  if (b.is_constant) return add(arena, a, Operand::number(-b.constant, b.is_int));
  const Hold minus_b(arena, neg(arena, b.id));
  return add(arena, a, Operand::of(minus_b.id()));
}

NodeId truediv(Arena& arena, Operand a, Operand b) {
  if (b.is_constant) return mul(arena, a, Operand::number(python_pow(b.constant, -1)));
  const Hold one_over_b(arena, pow_const(arena, b, Operand::number(-1, true)));
  return mul(arena, a, Operand::of(one_over_b.id()));
}

}  // namespace arenagrad

// The operators: forward value, then local derivative accumulated (+=) into each operand.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "arena.hpp"
#include "custom_backward.hpp"
#include "grad_mode.hpp"
#include "inlining.hpp"

namespace arenagrad {

// A Python float error, thrown by a forward computation before anything is allocated [A5].
struct ArithmeticFault {
  enum class Kind { ZeroDivision, Overflow, Domain };
  Kind kind;
  const char* message;
};

// An operand as the Python layer hands it over: a Node, or a plain number that becomes a
// constant Leaf (micrograd's `Value(other)`) only once the op is known to succeed.
struct Operand {
  NodeId id;
  double constant;
  bool is_constant;
  bool is_int;  // the constant was a Python int: `a ** 2` is written '**2', not '**2.0'

  static Operand of(NodeId id) { return {id, 0.0, false, false}; }
  static Operand number(double x, bool is_int = false) { return {0, x, true, is_int}; }
  double value(const Arena& arena) const { return is_constant ? constant : arena.node(id).data; }
};

// Python's float `**`: raises where Python raises, and ValueError where Python would return a
// complex number (negative base, fractional exponent).
double python_pow(double base, double exponent);

// Forward value of `op` from operand values, with Python's errors. Used to build and recompute.
// `op` is neither Leaf nor Custom (their data is an input, not computed).
double evaluate(Op op, const double* x, std::size_t n);

// Records a unary (b unused) or binary op whose value is already computed and valid [A5].
// Under no_grad() the result is a plain leaf. Only allocate() can throw, before anything changed.
ARENAGRAD_FORCE_INLINE inline NodeId make_node(Arena& arena, Op op, double data, NodeId a,
                                                NodeId b = 0) {
  Node* made;
  const NodeId id = arena.allocate(data, made);
  if (!grad_mode::recording()) return id;
  Node& out = *made;
  out.op = op;
  out.operands.pair[0] = a;
  out.operands.pair[1] = b;
  arena.add_operand(id, out, a, arena.node(a));
  if (owned_arity(op) == 2) arena.add_operand(id, out, b, arena.node(b));
  return id;
}

// A new binary Node's operands, and the counts it holds on them ([A1]): `na` and `nb` are the
// Nodes of `a` and `b`, at hand (their addresses stay valid across allocations, [A3]).
ARENAGRAD_FORCE_INLINE inline void link_binary(Arena& arena, NodeId id, Node& out, NodeId a,
                                                Node& na, NodeId b, Node& nb) {
  out.operands.pair[0] = a;
  out.operands.pair[1] = b;
  arena.add_operand(id, out, a, na);
  arena.add_operand(id, out, b, nb);
}

// A transient hold on a Node ([A1]): keeps it alive across allocations, released on every exit.
class Hold {
 public:
  Hold(Arena& arena, NodeId id) : arena_(arena), id_(id) { arena_.acquire(id_); }
  ~Hold() { arena_.release(id_); }
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;
  NodeId id() const { return id_; }

 private:
  Arena& arena_;
  NodeId id_;
};

NodeId leaf(Arena& arena, double data);
NodeId add(Arena& arena, Operand a, Operand b);
NodeId mul(Arena& arena, Operand a, Operand b);
NodeId pow_const(Arena& arena, Operand a, Operand k);  // `a ** k`, k a number
NodeId pow(Arena& arena, Operand base, Operand exponent);  // `a ** b`, `2 ** b`
NodeId unary(Arena& arena, Op op, NodeId a);               // Relu, Tanh, Exp, Log, Sigmoid
NodeId sum(Arena& arena, const NodeId* ids, std::size_t n);
NodeId custom(Arena& arena, double data, const NodeId* children, std::size_t n, std::string op);

// micrograd's compositions, kept node for node so that the numbers are micrograd's.
NodeId neg(Arena& arena, NodeId a);                  // a * -1
NodeId sub(Arena& arena, Operand a, Operand b);      // a + (-b)
NodeId truediv(Arena& arena, Operand a, Operand b);  // a * b**-1

// The local derivatives of `out`'s op: calls f(operand, d out / d operand) for each operand, in
// operand order (a Custom node has none: see grad_internal.hpp). The one place these partials
// live: backward()'s propagate and grad() (grad_numbers.cpp) both multiply them by the adjoint
// of `out`.
template <class F>
ARENAGRAD_FORCE_INLINE inline void for_each_partial(const Arena& arena, const Node& out, F&& f) {
  const NodeId* o = out.operands.pair;
  switch (out.op) {
    case Op::Leaf:
    case Op::Custom:  // its partials are the user's `_backward` closure: see propagate()
      return;
    case Op::Add:  // d(a+b)/da = d(a+b)/db = 1
      f(o[0], 1.0);
      f(o[1], 1.0);
      return;
    case Op::Mul:  // d(ab)/da = b, d(ab)/db = a
      f(o[0], arena.node(o[1]).data);
      f(o[1], arena.node(o[0]).data);
      return;
    case Op::PowConst: {  // d(a^k)/da = k a^(k-1); the constant's grad field holds k-1 as
      const double a = arena.node(o[0]).data;  // Python computes it (exact for int k, pow_const)
      const Node& k = arena.node(o[1]);
      f(o[0], k.data * std::pow(a, k.grad));
      return;
    }
    case Op::Pow: {  // d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log a (NaN for a <= 0)
      const double a = arena.node(o[0]).data;
      const double b = arena.node(o[1]).data;
      const double da = b * std::pow(a, b - 1);
      const double db = a > 0 ? out.data * std::log(a) : std::numeric_limits<double>::quiet_NaN();
      f(o[0], da);
      f(o[1], db);
      return;
    }
    case Op::Relu:  // d relu(a) = [relu(a) > 0]
      f(o[0], out.data > 0 ? 1.0 : 0.0);
      return;
    case Op::Tanh:  // d tanh = 1 - t^2
      f(o[0], 1 - out.data * out.data);
      return;
    case Op::Exp:  // d exp = exp
      f(o[0], out.data);
      return;
    case Op::Log:  // d log a = 1/a
      f(o[0], 1 / arena.node(o[0]).data);
      return;
    case Op::Sigmoid:  // d s = s (1 - s)
      f(o[0], out.data * (1 - out.data));
      return;
    case Op::Sum:  // d(sum)/d each = 1
      for (NodeId id : operands_of(out, -1)) f(id, 1.0);
      return;
  }
}

// micrograd's chain rule at one node: each operand's grad += d out / d operand * out.grad.
// `touched(operand_node)` then runs for each visible operand (once per operand slot), for a
// sweep that marks what it reaches with the lookup it already made. Inline: backward.cpp's
// sweep calls it once per node.
struct NoTouch {
  void operator()(Node&) const {}
};
template <class Touched = NoTouch>
ARENAGRAD_FORCE_INLINE inline void propagate(Arena& arena, const Node& out, Touched&& touched = {}) {
  if (out.op == Op::Custom) {  // the user's `_backward` closure, if any (value_state.cpp)
    CustomBackward::run(out);
    for (NodeId id : visible_operands(out)) touched(arena.node(id));
    return;
  }
  const double g = out.grad;
  for_each_partial(arena, out, [&](NodeId id, double d) ARENAGRAD_FORCE_INLINE {
    Node& operand = arena.node(id);
    operand.grad += d * g;
    touched(operand);
  });
}

}  // namespace arenagrad

// The graph record: one plain struct per scalar, stored in the Arena (arena.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace arenagrad {

// Index of a Node in the Arena. Stable while the Node is live (arena.hpp [A3]).
using NodeId = std::uint32_t;

enum class Op : std::uint8_t {
  Leaf,      // no operands
  Add,       // a + b
  Mul,       // a * b
  PowConst,  // a ** k; k lives in the hidden constant operand b (not part of _prev)
  Pow,       // a ** b, both Values
  Relu,
  Tanh,
  Exp,
  Log,
  Sigmoid,
  Sum,       // n-ary: operands[0] + operands[1] + ...
  Custom,    // Value(data, _children, _op) built by hand: operands recorded, no local derivative
};

// Operand storage. Unary and binary ops keep their operands inline; n-ary ops own a heap array
// whose first element is the count: many[0] = n, many[1..n] = operands.
union Operands {
  NodeId pair[2];
  NodeId* many;
};

namespace flag {
inline constexpr std::uint8_t kAnnotated = 2;    // has an entry in annotations.hpp's table
inline constexpr std::uint8_t kIntConstant = 4;  // a constant leaf written as an int (`a ** 2`)
inline constexpr std::uint8_t kCachedTape = 8;  // a root with a tape in tapes() (graph_reuse.hpp)
inline constexpr std::uint8_t kOutOfOrder = 16;  // some operand's id is not below this Node's
inline constexpr std::uint8_t kPythonState = 32;  // Python state kept for it (value_type.hpp [V2])
inline constexpr std::uint8_t kCustomBackward = 64;  // a Python `_backward` closure is attached
// State kept outside the Arena: freeing such a Node tells the Arena's observer (arena.hpp [A7]).
inline constexpr std::uint8_t kObserved = kAnnotated | kPythonState | kCachedTape;
}  // namespace flag

// Field order: what a sweep reads and writes on a Node it reaches as an operand (data, grad, op,
// mark) comes first, in 20 bytes, so that such a Node spans one cache line more often (3 in 4
// positions of a 40-byte Node in 64-byte lines, against 1 in 2 with `op` and `mark` last).
struct Node {
  double data;
  double grad;
  Op op;
  std::uint8_t flags;
  std::uint16_t mark;   // == the running walk's epoch once it has visited it (walk.hpp [W1])
  std::uint32_t refs;   // arena.hpp [A1]
  Operands operands;
  void* handle;         // borrowed: this Node's Python Value, or nullptr (value_type.hpp [V1])
};
static_assert(sizeof(Node) == 40, "Node is the unit of the arena's memory budget");

inline bool is_nary(Op op) { return op == Op::Sum || op == Op::Custom; }

// Operands that take part in the graph (`_prev`, the topological walk). PowConst's exponent is a
// hidden constant: it is owned by the node but not an operand in micrograd's sense.
// -1: n-ary, read the count. Indexed by Op (a table: freeing and recording read it per Node).
inline constexpr std::int8_t kVisibleArity[] = {0, 2, 2, 1, 2, 1, 1, 1, 1, 1, -1, -1};
inline constexpr std::int8_t kOwnedArity[] = {0, 2, 2, 2, 2, 1, 1, 1, 1, 1, -1, -1};
static_assert(sizeof(kOwnedArity) == static_cast<std::size_t>(Op::Custom) + 1 &&
                  sizeof(kVisibleArity) == sizeof(kOwnedArity) &&
                  kOwnedArity[static_cast<int>(Op::PowConst)] == 2 &&
                  kVisibleArity[static_cast<int>(Op::PowConst)] == 1 &&
                  kOwnedArity[static_cast<int>(Op::Sigmoid)] == 1,
              "one entry per Op, in Op's order");
inline int visible_arity(Op op) { return kVisibleArity[static_cast<std::uint8_t>(op)]; }

// Operands a Node holds a count on (released when it is freed).
inline int owned_arity(Op op) { return kOwnedArity[static_cast<std::uint8_t>(op)]; }

// micrograd's `_op` strings. PowConst is completed by the exponent ('**2') at the binding.
inline const char* op_name(Op op) {
  switch (op) {
    case Op::Leaf: return "";
    case Op::Add: return "+";
    case Op::Mul: return "*";
    case Op::PowConst: return "**";
    case Op::Pow: return "**";
    case Op::Relu: return "ReLU";
    case Op::Tanh: return "tanh";
    case Op::Exp: return "exp";
    case Op::Log: return "log";
    case Op::Sigmoid: return "sigmoid";
    case Op::Sum: return "sum";
    case Op::Custom: return "";
  }
  return "";
}

}  // namespace arenagrad

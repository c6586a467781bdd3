// The derivative of an Op::Custom Node (Value(data, children, op) built by hand): a Python
// `_backward` closure, which the engine cannot see. The Python layer installs the call
// (value_state.cpp); propagate() (ops.hpp) makes it for each custom Node it sweeps.
#pragma once

#include "node.hpp"

namespace arenagrad {

class CustomBackward {
 public:
  using Call = void (*)(const Node& n);  // throws on a Python error (value_type.hpp)

  static void install(Call call) { call_ = call; }
  // micrograd's `n._backward()`: the closure if the Node has one, else nothing.
  static void run(const Node& n) {
    if (call_) call_(n);
  }

 private:
  static inline Call call_ = nullptr;
};

}  // namespace arenagrad

#include "grad.hpp"

#include <string>

#include "annotations.hpp"
#include "grad_internal.hpp"
#include "grad_mode.hpp"

namespace arenagrad {

namespace grad_detail {
[[noreturn]] void through_custom(const Arena&, NodeId id) {
  const std::string op = annotations().op_text(id);
  throw NotDifferentiable{"grad() cannot differentiate through the Value with _op '" + op +
                          "': it was built by hand as Value(data, _children, _op) and has no "
                          "derivative made of engine operations"};
}
}  // namespace grad_detail

bool grad_builds_graph(bool create_graph) { return create_graph && grad_mode::recording(); }

}  // namespace arenagrad

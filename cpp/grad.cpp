#include "grad.hpp"

#include <string>
#include <vector>

#include "annotations.hpp"
#include "grad_internal.hpp"
#include "grad_mode.hpp"
#include "ops.hpp"

namespace arenagrad {

namespace grad_detail {
[[noreturn]] void through_custom(const Arena&, NodeId id) {
  const std::string op = annotations().op_text(id);
  throw NotDifferentiable{"grad() cannot differentiate through the Value with _op '" + op +
                          "': it was built by hand as Value(data, _children, _op) and has no "
                          "derivative made of engine operations"};
}
}  // namespace grad_detail

const char* last_grad_route() { return grad_detail::numbers_route(); }

HeldNodes grad(Arena& arena, NodeId output, const std::vector<NodeId>& inputs, bool create_graph) {
  // Under no_grad() ops record nothing, so the adjoint nodes would be leaves holding exactly
  // the numbers of the double sweep: compute those (torch: no graph either).
  if (create_graph && grad_mode::recording())
    return grad_detail::adjoint_nodes(arena, output, inputs);
  const std::vector<double> values = grad_detail::adjoint_numbers(arena, output, inputs);
  HeldNodes results(arena);
  results.reserve(values.size());
  for (double x : values) results.hold(leaf(arena, x));
  return results;
}

}  // namespace arenagrad

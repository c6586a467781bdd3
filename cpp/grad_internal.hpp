// What grad()'s two paths share (grad.hpp): the numbers (grad_numbers.cpp) and the nodes of
// create_graph (grad_nodes.cpp) both meet the error for a node with no engine derivative and
// walk the explicit topological order with each node's position in it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "arena.hpp"
#include "backward.hpp"
#include "walk.hpp"

namespace arenagrad {
namespace grad_detail {

// The one place that meets a node with no engine derivative (grad.cpp). A Custom node's
// derivative, if any, is a Python `_backward` closure: it writes into .grad, which grad() must
// not touch, and it is no engine op, so create_graph could not record it either. Throws
// NotDifferentiable naming its `_op`.
[[noreturn]] void through_custom(const Arena& arena, NodeId id);

constexpr std::uint32_t kNowhere = ~std::uint32_t{0};

// Any id order: the explicit topological order (operands first, output last) and each node's
// position in it, which keys the adjoint table: a direct table over the graph's id range when
// it is compact (4 bytes an id), else a hash map (a map node per graph node cost ~15x the
// memory, and left the heap holes that long after).
class Topo {
 public:
  std::vector<NodeId> order;

  // `walk` lends its marks to the ordering; the sweeps over `order` use none.
  Topo(Arena& arena, WalkScope& walk, NodeId root) : Topo(ordered(arena, walk, root)) {}
  explicit Topo(std::vector<NodeId> topological) : order(std::move(topological)) {
    const auto [lo, hi] = std::minmax_element(order.begin(), order.end());
    const std::size_t span = std::size_t{*hi} - *lo + 1;
    if (span <= 4 * order.size() + 4096) {
      lo_ = *lo;
      dense_.assign(span, kNowhere);
      for (std::size_t i = 0; i < order.size(); ++i)
        dense_[order[i] - lo_] = static_cast<std::uint32_t>(i);
    } else {
      sparse_.reserve(order.size());
      for (std::size_t i = 0; i < order.size(); ++i)
        sparse_.emplace(order[i], static_cast<std::uint32_t>(i));
    }
  }
  // The position of `id`, or kNowhere if the graph does not hold it.
  std::uint32_t find(NodeId id) const {
    if (!dense_.empty()) return std::size_t{id - lo_} < dense_.size() ? dense_[id - lo_] : kNowhere;
    const auto it = sparse_.find(id);
    return it == sparse_.end() ? kNowhere : it->second;
  }

 private:
  // Built in the walk's own order buffer [W2], which keeps its capacity, then copied at its size:
  // one allocation, where growing a new vector took one per doubling.
  static std::vector<NodeId> ordered(Arena& arena, WalkScope& walk, NodeId root) {
    std::vector<NodeId>& order = walk.order();
    topological_order(arena, walk, root, order);
    return order;
  }
  NodeId lo_ = 0;
  std::vector<std::uint32_t> dense_;
  std::unordered_map<NodeId, std::uint32_t> sparse_;
};

}  // namespace grad_detail
}  // namespace arenagrad

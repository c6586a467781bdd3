// A compiled replay of one root's graph: its nodes lowered, once, to a flat instruction stream
// that recompute(), zero_grad() and backward() run as tight loops.
//
// [T1] The nodes stay the only state. The stream holds node ids and no values: every replay reads
//      and writes the nodes' own data and grad fields, so nothing it holds can go stale. It stays
//      valid while its root lives ([A1]: a live root keeps its graph alive, a Node's operands
//      never change).
// [T2] Same numbers as the node-by-node walks. The stream is the order backward() sweeps this
//      graph in, read forwards: ascending ids when no node of the graph is out of order (the id
//      scan's order, backward.cpp), else the explicit topological order. Every instruction does
//      exactly the arithmetic of propagate()/evaluate() on its nodes, in stream order; fused
//      instructions only drop the dispatch, never reorder a floating-point operation.
//
// Layout of the stream (NodeIds stay below 2^31, Arena::grow, so the top bit tags):
//   [L, leaf_1 .. leaf_L]                    the graph's leaves (zero_grad clears them too)
//   id                                       one node, run by its op
//   kDot|n, m_0, a_0, .. m_n-1, a_n-1, kDot|n
//                                            a chain a_k = a_k-1 + m_k, m_k = w_k * x_k
//                                            (a_-1 is a_0's first operand): micrograd's neuron
//                                            `sum((wi*xi for ...), b)`; tagged at both ends so that
//                                            backward reads the stream from its end.
#pragma once

#include <vector>

#include "arena.hpp"
#include "walk.hpp"

namespace arenagrad {

// Thrown by recompute() for a custom node with a Python `_backward`: its forward is unknown.
struct CustomForwardUnknown {
  NodeId id;
};

}  // namespace arenagrad

namespace arenagrad::tape {

// The stream of `root`'s graph (walks it: call inside `walk`).
std::vector<NodeId> lower(Arena& arena, WalkScope& walk, NodeId root);

// The values forward() overwrote, in order: room for stream.size() of them.
struct Saved {
  double* values;
  std::size_t count = 0;
};

// Forward values of every non-leaf node, in stream order. Throws what evaluate() throws, and
// CustomForwardUnknown; on return and on a throw, `saved` holds each value it overwrote.
void forward(Arena& arena, const std::vector<NodeId>& stream, Saved& saved);
// Puts back the values forward() overwrote before it threw.
void restore(Arena& arena, const std::vector<NodeId>& stream, const Saved& saved);

// micrograd's chain rule over the stream from its end; the root's grad must be set.
void backward(Arena& arena, const std::vector<NodeId>& stream);

// grad = 0 for every node of the stream, leaves included.
void zero_grad(Arena& arena, const std::vector<NodeId>& stream);

}  // namespace arenagrad::tape

// A compiled replay of one root's graph: its nodes lowered, once, to a flat instruction stream
// that recompute(), zero_grad() and backward() run as tight loops.
//
// [T1] The nodes stay the only state. The stream holds the nodes' addresses and no values: every
//      replay reads and writes the nodes' own data and grad fields, so nothing it holds can go
//      stale. It stays valid while its root lives ([A1]: a live root keeps its graph alive, a
//      Node's operands never change; [A3]: a live Node never moves).
// [T2] Same numbers as the node-by-node walks. The stream is the order backward() sweeps this
//      graph in, read forwards: ascending ids when no node of the graph is out of order (the id
//      scan's order, backward.cpp), else the explicit topological order. Every instruction does
//      exactly the arithmetic of propagate()/evaluate() on its nodes, in stream order; fused
//      instructions only drop the dispatch, never reorder a floating-point operation.
//
// Layout (struct of arrays):
//   nodes: the graph's leaves (zero_grad clears them too), then every other node in stream order;
//   code:  one entry per instruction, reading the next nodes in turn:
//          0      one node, run by its op;
//          n > 0  a chain of n links m_0, a_0, .. m_n-1, a_n-1 with a_k = a_k-1 + m_k and
//                 m_k = w_k * x_k (a_-1 is a_0's first operand): micrograd's neuron
//                 `sum((wi*xi for ...), b)`; its w_k, x_k are the next 2n of `factors`.
//   backward() reads the three arrays from their ends.
#pragma once

#include <cstddef>
#include <cstdint>
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

struct Tape {
  std::vector<Node*> nodes;  // addresses, not ids: a replay reads each once, without the chunk lookup
  std::vector<Node*> factors;  // each link's w_k and x_k (m_k's operands), in stream order
  std::vector<std::uint32_t> code;
  std::size_t leaves = 0;  // nodes[0, leaves) are the leaves
  // The ids of `nodes` as runs of consecutive ids, for zero_grad(): (first, count) pairs, in
  // ascending order. Empty when the ids are too scattered for runs to pay (zero_grad() then
  // reads `nodes`).
  std::vector<NodeId> runs;

  std::size_t bytes() const {
    return (nodes.capacity() + factors.capacity()) * sizeof(Node*) +
           runs.capacity() * sizeof(NodeId) +
           code.capacity() * sizeof(std::uint32_t);
  }
};

// The tape of `root`'s graph (walks it: call inside `walk`).
Tape lower(Arena& arena, WalkScope& walk, NodeId root);

// The values forward() overwrote, in order: room for tape.nodes.size() of them.
struct Saved {
  double* values;
  std::size_t count = 0;
};

// Forward values of every non-leaf node, in stream order. Throws what evaluate() throws, and
// CustomForwardUnknown; on return and on a throw, `saved` holds each value it overwrote.
void forward(Arena& arena, const Tape& tape, Saved& saved);
// Puts back the values forward() overwrote before it threw.
void restore(const Tape& tape, const Saved& saved);

// micrograd's chain rule over the tape from its end; the root's grad must be set.
void backward(Arena& arena, const Tape& tape);

// grad = 0 for every node of the tape, leaves included.
void zero_grad(Arena& arena, const Tape& tape);

}  // namespace arenagrad::tape

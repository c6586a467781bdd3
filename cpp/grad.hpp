// arenagrad.grad(): d output / d inputs by reverse accumulation into a local adjoint table, never
// through Node::grad; with create_graph the adjoints are engine nodes (differentiable again).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "arena.hpp"

namespace arenagrad {

// The graph holds a node that the engine cannot differentiate (Op::Custom: Value(data, children,
// op) built by hand). Python's TypeError at the binding.
struct NotDifferentiable {
  std::string message;
};

// arenagrad.grad(output, inputs, create_graph): d output / d inputs[i], for each i, in order
// (grad_numbers.cpp without a graph, grad_nodes.cpp with one).
// Reads and writes no Node::grad. Throws NotDifferentiable if the graph holds an Op::Custom
// node, Interrupted when the poll asks.
//
// Whether it builds a graph: with create_graph, outside no_grad(). Inside no_grad() ops record
// nothing, so the adjoint nodes would be leaves holding exactly grad_numbers()'s numbers: those
// are computed instead (torch: no graph either).
bool grad_builds_graph(bool create_graph);

// Without a graph: values[i] is the number that a zeroed graph's backward() would leave in
// inputs[i].grad (bit for bit while no node is out of order, arena.hpp [A4]); 0.0 for an input
// that `output` does not reach. Allocates nothing once the walks' scratch has grown [W2].
void grad_numbers(Arena& arena, NodeId output, const NodeId* inputs, std::size_t count,
                  double* values);

// With a graph: each result's graph is made of ordinary nodes, the local derivatives written as
// engine ops, so grad() and backward() can go through it again; an input that `output` does not
// reach gets a new leaf 0.0. On any exception nothing it built stays alive.
HeldNodes grad_graph(Arena& arena, NodeId output, const NodeId* inputs, std::size_t count);

// The route the last grad() without create_graph took: "scan" (descending ids), "scan, then
// topological order" (the scan gave up on sparse slots and the explicit order finished, as in
// backward()), "topological order" (the explicit one alone, sums keyed by id: nodes out of
// order) or "topological order, hashed" (the same, its ids too spread out: sums keyed by
// position, through a map). For tests of its cost.
const char* last_grad_route();

}  // namespace arenagrad

// micrograd's Neuron/Layer/MLP forward pass in C++: one call builds one sample's whole graph,
// node for node the graph micrograd builds; and predict(), the same arithmetic with no nodes.
#pragma once

#include <cstddef>
#include <vector>

#include "arena.hpp"

namespace arenagrad {

// micrograd's Layer: `nout` Neurons of `nin` inputs. weights[j * nin + i] is neuron j's w[i];
// nonlin[j] is neuron j's own flag (micrograd lets each Neuron of a Layer differ).
struct DenseLayer {
  std::size_t nin = 0;
  std::size_t nout = 0;
  std::vector<NodeId> weights;
  std::vector<NodeId> biases;
  std::vector<bool> nonlin;
  // The Nodes of `weights` and `biases`, filled by Network: it holds them ([A1]), so they stay
  // live and, [A3], at these addresses while it does.
  std::vector<Node*> weight_nodes;
  std::vector<Node*> bias_nodes;
};

// A stack of DenseLayers over parameter Nodes it holds a count on ([A1]): the Python Neurons
// hold the same Nodes through their Values, so `p.data` updates are seen by the next forward.
// It is a cache of the modules' structure (nn.py decides when it is stale and rebuilds it).
class Network {
 public:
  Network(Arena& arena, std::vector<DenseLayer> layers);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  std::size_t nin() const { return layers_.front().nin; }
  std::size_t nout() const { return layers_.back().nout; }

  // Builds, for each neuron, micrograd's `sum((wi*xi for wi, xi in zip(w, x)), b)` (Mul, then
  // Add onto the running sum, in order) and its ReLU. `inputs` must be held by the caller. The
  // returned outputs each carry one count that the caller must release. On std::bad_alloc every
  // Node built so far is freed before it propagates [A5].
  std::vector<NodeId> forward(const std::vector<NodeId>& inputs) const;

  // The same arithmetic on plain doubles, no graph: `x` is rows x nin, `out` rows x nout.
  void predict(const double* x, std::size_t rows, double* out) const;

 private:
  Arena& arena_;
  std::vector<DenseLayer> layers_;
};

}  // namespace arenagrad

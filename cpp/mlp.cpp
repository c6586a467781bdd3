#include "mlp.hpp"

#include <stdexcept>

#include "ops.hpp"

namespace arenagrad {

Network::Network(Arena& arena, std::vector<DenseLayer> layers)
    : arena_(arena), layers_(std::move(layers)) {
  if (layers_.empty()) throw std::invalid_argument("a Network needs at least one layer");
  for (const DenseLayer& layer : layers_) {
    if (layer.weights.size() != layer.nin * layer.nout || layer.biases.size() != layer.nout)
      throw std::invalid_argument("layer parameters do not match its shape");
    for (NodeId id : layer.weights) arena_.acquire(id);
    for (NodeId id : layer.biases) arena_.acquire(id);
  }
}

Network::~Network() {
  for (const DenseLayer& layer : layers_) {
    for (NodeId id : layer.weights) arena_.release(id);
    for (NodeId id : layer.biases) arena_.release(id);
  }
}

std::vector<NodeId> Network::forward(const std::vector<NodeId>& inputs) const {
  if (!arena_.recording()) {  // no_grad(): the outputs as leaves, no intermediate nodes
    std::vector<double> x(inputs.size()), y(nout());
    for (std::size_t i = 0; i < inputs.size(); ++i) x[i] = arena_.node(inputs[i]).data;
    predict(x.data(), 1, y.data());
    std::vector<NodeId> outputs;
    for (double value : y) {
      outputs.push_back(leaf(arena_, value));
      arena_.acquire(outputs.back());
    }
    return outputs;
  }
  // Invariant: every id in `x` carries one count taken here (except the caller's inputs), so no
  // intermediate Node is freed before the next layer holds it, whatever the shapes.
  std::vector<NodeId> x = inputs;
  bool own_x = false;
  std::vector<NodeId> y;
  for (const DenseLayer& layer : layers_) {
    y.clear();
    for (std::size_t j = 0; j < layer.nout; ++j) {
      const NodeId* w = &layer.weights[j * layer.nin];
      NodeId act = layer.biases[j];
      double sum = arena_.node(act).data;
      for (std::size_t i = 0; i < layer.nin; ++i) {
        const double p = arena_.node(w[i]).data * arena_.node(x[i]).data;
        const NodeId product = make_node(arena_, Op::Mul, p, w[i], x[i]);
        sum = sum + p;
        act = make_node(arena_, Op::Add, sum, act, product);
      }
      if (layer.nonlin) act = make_node(arena_, Op::Relu, sum < 0 ? 0.0 : sum, act);
      arena_.acquire(act);
      y.push_back(act);
    }
    if (own_x)
      for (NodeId id : x) arena_.release(id);
    x.swap(y);
    own_x = true;
  }
  return x;
}

void Network::predict(const double* x, std::size_t rows, double* out) const {
  std::vector<double> in, act;
  for (std::size_t r = 0; r < rows; ++r) {
    in.assign(x + r * nin(), x + (r + 1) * nin());
    for (const DenseLayer& layer : layers_) {
      act.resize(layer.nout);
      for (std::size_t j = 0; j < layer.nout; ++j) {
        const NodeId* w = &layer.weights[j * layer.nin];
        double s = arena_.node(layer.biases[j]).data;
        for (std::size_t i = 0; i < layer.nin; ++i) s = s + arena_.node(w[i]).data * in[i];
        act[j] = layer.nonlin ? (s < 0 ? 0.0 : s) : s;
      }
      in.swap(act);
    }
    for (std::size_t j = 0; j < nout(); ++j) out[r * nout() + j] = in[j];
  }
}

}  // namespace arenagrad

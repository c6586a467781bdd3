#include "mlp.hpp"

#include <stdexcept>

#include "grad_mode.hpp"
#include "ops.hpp"

namespace arenagrad {

Network::Network(Arena& arena, std::vector<DenseLayer> layers)
    : arena_(arena), layers_(std::move(layers)) {
  if (layers_.empty()) throw std::invalid_argument("a Network needs at least one layer");
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    const DenseLayer& layer = layers_[k];
    if (layer.weights.size() != layer.nin * layer.nout || layer.biases.size() != layer.nout ||
        layer.nonlin.size() != layer.nout || (k > 0 && layer.nin != layers_[k - 1].nout))
      throw std::invalid_argument("layer parameters do not match its shape");
  }
  for (DenseLayer& layer : layers_) {
    layer.weight_nodes.reserve(layer.weights.size());
    layer.bias_nodes.reserve(layer.biases.size());
  }
  for (DenseLayer& layer : layers_) {  // nothing below throws [A1]
    for (NodeId id : layer.weights) {
      arena_.acquire(id);
      layer.weight_nodes.push_back(&arena_.node(id));
    }
    for (NodeId id : layer.biases) {
      arena_.acquire(id);
      layer.bias_nodes.push_back(&arena_.node(id));
    }
  }
}

Network::~Network() {
  for (const DenseLayer& layer : layers_) {
    for (NodeId id : layer.weights) arena_.release(id);
    for (NodeId id : layer.biases) arena_.release(id);
  }
}

namespace {

constexpr NodeId kNoNode = ~NodeId{0};

}  // namespace

std::vector<NodeId> Network::forward(const std::vector<NodeId>& inputs) const {
  if (!grad_mode::recording()) {  // no_grad(): the outputs as leaves, no intermediate nodes
    std::vector<double> x(inputs.size()), y(nout());
    for (std::size_t i = 0; i < inputs.size(); ++i) x[i] = arena_.node(inputs[i]).data;
    predict(x.data(), 1, y.data());
    HeldNodes outputs(arena_);
    outputs.reserve(y.size());
    for (double value : y) outputs.hold(leaf(arena_, value));
    return outputs.take();
  }
  // `held` owns one count on each Node of `x` (none on the caller's inputs), `next` on each
  // output of the layer being built: no Node is freed before the next layer holds it, and all
  // of them are freed if an allocation fails.
  const std::vector<NodeId>* x = &inputs;
  HeldNodes held(arena_), next(arena_);
  std::vector<Node*> x_nodes;  // the Nodes of *x, held by the caller or `held`: live [A3]
  for (const DenseLayer& layer : layers_) {
    next.reserve(layer.nout);
    x_nodes.resize(layer.nin);
    for (std::size_t i = 0; i < layer.nin; ++i) x_nodes[i] = &arena_.node((*x)[i]);
    Arena::Burst burst(arena_);  // ended before anything is freed (the failure path, `held`)
    for (std::size_t j = 0; j < layer.nout; ++j) {
      const NodeId* w = &layer.weights[j * layer.nin];
      Node* const* w_nodes = &layer.weight_nodes[j * layer.nin];
      // `act` heads the neuron's chain built so far; once it is a new Node nothing holds it
      // (refs 0) until the next Node takes it as an operand, so freeing it on a failure frees
      // the whole chain [A1]. `product` is a Mul not yet taken by its Add.
      // Node pointers stay valid across allocations [A3]: no Node is looked up by id here.
      NodeId act = layer.biases[j];
      Node* act_node = layer.bias_nodes[j];
      NodeId product = kNoNode;
      double sum = act_node->data;
      try {
        for (std::size_t i = 0; i < layer.nin; ++i) {
          Node& wn = *w_nodes[i];
          Node& xn = *x_nodes[i];
          const double p = wn.data * xn.data;
          Node* product_node;
          product = burst.allocate(p, Op::Mul, product_node);
          link_binary(arena_, product, *product_node, w[i], wn, (*x)[i], xn);
          sum = sum + p;
          Node* sum_node;
          const NodeId next_act = burst.allocate(sum, Op::Add, sum_node);
          link_binary(arena_, next_act, *sum_node, act, *act_node, product, *product_node);
          act = next_act;
          act_node = sum_node;
          product = kNoNode;
        }
        if (layer.nonlin[j]) {
          Node* relu_node;
          const NodeId relu = burst.allocate(sum < 0 ? 0.0 : sum, Op::Relu, relu_node);
          relu_node->operands.pair[0] = act;
          relu_node->operands.pair[1] = 0;
          arena_.add_operand(relu, *relu_node, act, *act_node);
          act = relu;
        }
      } catch (...) {
        burst.end();
        if (product != kNoNode) arena_.discard_if_unheld(product);
        arena_.discard_if_unheld(act);  // the bias is held by the Network: kept
        throw;
      }
      next.hold(act);
    }
    burst.end();
    held.replace_with(next);
    x = &held.ids();
  }
  return held.take();
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
        act[j] = layer.nonlin[j] ? (s < 0 ? 0.0 : s) : s;
      }
      in.swap(act);
    }
    for (std::size_t j = 0; j < nout(); ++j) out[r * nout() + j] = in[j];
  }
}

}  // namespace arenagrad

// The bare floor: the five benchmark graph shapes as plain arrays, and the smallest reverse sweep
// that can backpropagate through them. No arena, no refcounts, no Python, no reachability walk:
// operands always have smaller indices, so descending index order is a reverse topological order.
// What the engine's backward costs above this floor is the price of its generality.
// Built with the engine's flags into its own module, arenagrad._floor (floor_module.cpp), so
// that it ships in the wheel; README "Performance" and bench/README.md "The floor".
#include "floor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace arenagrad_floor {
namespace {

enum Op : std::uint8_t { Leaf, Add, Mul, Relu, Tanh, Sum };

// Struct of arrays: node i is (data[i], grad[i], op[i], a[i], b[i]). A Sum node's operands are
// many[a[i] .. a[i] + b[i]).
struct Graph {
  std::vector<double> data, grad;
  std::vector<std::uint8_t> op;
  std::vector<std::uint32_t> a, b;
  std::vector<std::uint32_t> many;

  std::uint32_t push(double d, Op o, std::uint32_t x = 0, std::uint32_t y = 0) {
    data.push_back(d);
    grad.push_back(0.0);
    op.push_back(o);
    a.push_back(x);
    b.push_back(y);
    return static_cast<std::uint32_t>(data.size() - 1);
  }
  std::uint32_t leaf(double d) { return push(d, Leaf); }
  std::uint32_t add(std::uint32_t x, std::uint32_t y) { return push(data[x] + data[y], Add, x, y); }
  std::uint32_t mul(std::uint32_t x, std::uint32_t y) { return push(data[x] * data[y], Mul, x, y); }
  std::uint32_t relu(std::uint32_t x) { return push(data[x] < 0 ? 0.0 : data[x], Relu, x); }
  std::uint32_t tanh_(std::uint32_t x) { return push(std::tanh(data[x]), Tanh, x); }
  std::uint32_t sum(const std::vector<std::uint32_t>& xs) {
    double s = 0.0;
    for (std::uint32_t x : xs) s += data[x];
    const auto first = static_cast<std::uint32_t>(many.size());
    many.insert(many.end(), xs.begin(), xs.end());
    return push(s, Sum, first, static_cast<std::uint32_t>(xs.size()));
  }
  std::size_t size() const { return data.size(); }
};

// The reverse sweep: root.grad = 1, then each node's local derivative, accumulated (+=).
void backward(Graph& g) {
  double* grad = g.grad.data();
  const double* data = g.data.data();
  const std::uint8_t* op = g.op.data();
  const std::uint32_t* a = g.a.data();
  const std::uint32_t* b = g.b.data();
  const std::uint32_t* many = g.many.data();
  const std::size_t n = g.size();
  grad[n - 1] = 1.0;
  for (std::size_t i = n; i-- > 0;) {
    const double out = grad[i];
    switch (op[i]) {
      case Leaf: break;
      case Add: grad[a[i]] += out; grad[b[i]] += out; break;
      case Mul: grad[a[i]] += data[b[i]] * out; grad[b[i]] += data[a[i]] * out; break;
      case Relu: grad[a[i]] += (data[i] > 0 ? 1.0 : 0.0) * out; break;
      case Tanh: grad[a[i]] += (1 - data[i] * data[i]) * out; break;
      case Sum:
        for (std::uint32_t k = a[i], e = a[i] + b[i]; k < e; ++k) grad[many[k]] += out;
        break;
    }
  }
}

// The shapes, node for node those of arenagrad/bench/graphs.py.
Graph chain(std::size_t size) {  // y = y * c + d, c and d constant leaves: 4 nodes a step
  Graph g;
  std::uint32_t y = g.leaf(0.5);
  for (std::size_t s = 0; s < size / 4; ++s) y = g.add(g.mul(y, g.leaf(0.9999999)), g.leaf(0.001));
  return g;
}

Graph wide_sum_fold(std::size_t size) {  // Python's sum(values): ((0 + v0) + v1) + ...
  Graph g;
  const std::size_t n = size / 2;
  for (std::size_t i = 0; i < n; ++i) g.leaf(std::sin(double(i)));
  std::uint32_t acc = g.leaf(0.0);
  for (std::uint32_t i = 0; i < n; ++i) acc = g.add(acc, i);
  return g;
}

Graph wide_sum_nary(std::size_t size) {  // arenagrad.sum(values): one n-ary node
  Graph g;
  std::vector<std::uint32_t> xs;
  for (std::size_t i = 0; i + 1 < size; ++i) xs.push_back(g.leaf(std::sin(double(i))));
  g.sum(xs);
  return g;
}

Graph random_dag(std::size_t size) {
  // 16 leaves, then a + b or a * b of two uniformly random earlier nodes, 1 in 10 followed by
  // tanh; finally a balanced + tree over the nodes nobody uses, so everything is reachable.
  Graph g;
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 16; ++i) g.leaf(2 * unit(rng) - 1);
  std::vector<char> used(16, 0);
  std::size_t sinks = 16;
  auto use = [&](std::uint32_t x) { if (!used[x]) { used[x] = 1; --sinks; } };
  auto fresh = [&] { used.push_back(0); ++sinks; };
  while (g.size() + sinks - 1 < size) {
    std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(g.size() - 1));
    const std::uint32_t x = pick(rng), y = pick(rng);
    const std::uint32_t v = unit(rng) < 0.5 ? g.add(x, y) : g.mul(x, y);
    use(x), use(y), fresh();
    if (unit(rng) < 0.1) g.tanh_(v), use(v), fresh();
  }
  std::vector<std::uint32_t> level;
  for (std::uint32_t i = 0; i < used.size(); ++i)
    if (!used[i]) level.push_back(i);
  while (level.size() > 1) {
    std::vector<std::uint32_t> next;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(g.add(level[i], level[i + 1]));
    if (level.size() % 2) next.push_back(level.back());
    level = next;
  }
  return g;
}

Graph mlp(std::size_t size) {  // micrograd's MLP(2, [16, 16, 1]) over many samples, summed
  Graph g;
  const int sizes[] = {2, 16, 16, 1};
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<std::vector<std::uint32_t>> w, bias;  // per layer: w[l][j * nin + i], bias[l][j]
  for (int l = 0; l < 3; ++l) {
    w.emplace_back();
    bias.emplace_back();
    for (int j = 0; j < sizes[l + 1]; ++j) {
      for (int i = 0; i < sizes[l]; ++i) w[l].push_back(g.leaf(unit(rng)));
      bias[l].push_back(g.leaf(0.0));
    }
  }
  const std::size_t per_sample = 643;  // 642 nodes of the forward, 1 add of the sum
  const std::size_t samples = std::max<std::size_t>(1, size / per_sample);
  std::uint32_t total = g.leaf(0.0);
  for (std::size_t s = 0; s < samples; ++s) {
    std::vector<std::uint32_t> x = {g.leaf(unit(rng)), g.leaf(unit(rng))};
    for (int l = 0; l < 3; ++l) {
      std::vector<std::uint32_t> out;
      for (int j = 0; j < sizes[l + 1]; ++j) {
        std::uint32_t act = bias[l][j];  // micrograd: b + w0*x0 + w1*x1 + ...
        for (int i = 0; i < sizes[l]; ++i) act = g.add(act, g.mul(w[l][j * sizes[l] + i], x[i]));
        out.push_back(l < 2 ? g.relu(act) : act);
      }
      x = out;
    }
    total = g.add(total, x[0]);
  }
  return g;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// One shape's figures: the graph is built once (untimed), swept once to size the samples, then
// `repeats` samples of enough sweeps for ~2 ms each, so small graphs are above the clock's grain.
Figure time_sweeps(Graph g, int repeats) {
  const double nodes = double(g.size());
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  backward(g);
  const double once = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
  const long number = std::max(1L, std::min(100000L, long(2e6 / std::max(once, 1.0))));
  std::vector<double> samples;
  for (int r = 0; r < repeats; ++r) {
    t0 = clock::now();
    for (long k = 0; k < number; ++k) backward(g);
    const double ns = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
    samples.push_back(ns / double(number) / nodes);
  }
  volatile double sink = g.grad[0];  // keep the sweeps observable
  (void)sink;
  return {static_cast<std::size_t>(nodes), median(samples),
          *std::min_element(samples.begin(), samples.end()),
          *std::max_element(samples.begin(), samples.end())};
}

struct Shape {
  const char* name;
  Graph (*make)(std::size_t);
};
const Shape kShapes[] = {{"chain", chain},
                         {"wide_sum_fold", wide_sum_fold},
                         {"wide_sum_nary", wide_sum_nary},
                         {"random_dag", random_dag},
                         {"mlp", mlp}};

}  // namespace

std::vector<std::string> shape_names() {
  std::vector<std::string> names;
  for (const Shape& s : kShapes) names.emplace_back(s.name);
  return names;
}

bool measure(const std::string& shape, std::size_t size, int repeats, Figure& out) {
  for (const Shape& s : kShapes) {
    if (shape == s.name) {
      out = time_sweeps(s.make(size), repeats);
      return true;
    }
  }
  return false;
}

}  // namespace arenagrad_floor

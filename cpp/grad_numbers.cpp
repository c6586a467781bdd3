// grad() without create_graph: backward()'s own sweeps (the id scan, finished in the explicit
// order where it gives up), with the sums in a table beside the nodes instead of in `.grad`.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <unordered_map>
#include <vector>

#include "grad.hpp"
#include "grad_internal.hpp"
#include "ops.hpp"

namespace arenagrad {
namespace grad_detail {

namespace {

// The inputs that are leaves, for the id-order sweep, where leaves have no adjoint slot (they
// pass nothing on): a contribution to a leaf is kept only when the leaf is an input. Looked up
// on every leaf operand, so when the inputs' ids are compact, a direct table of adjoints over
// their id range (every leaf in the range sums there; only the inputs' sums are read).
class LeafInputs {
 public:
  // The dense table lives in the walk's scratch [W2]: no allocation once it has grown.
  LeafInputs(const Arena& arena, WalkScope& walk, const NodeId* inputs, std::size_t count) {
    std::size_t leaves = 0;
    NodeId lo = ~NodeId{0}, hi = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (arena.node(inputs[i]).op != Op::Leaf) continue;
      ++leaves;
      lo = std::min(lo, inputs[i]);
      hi = std::max(hi, inputs[i]);
    }
    if (leaves == 0) return;
    if (std::size_t{hi} - lo < 4 * leaves + 4096) {
      std::vector<double>& table = walk.values();
      table.assign(std::size_t{hi} - lo + 1, 0.0);
      lo_ = lo;
      dense_ = table.data();
      dense_size_ = table.size();
    } else {
      sparse_ = std::make_unique<std::unordered_map<NodeId, double>>();
      for (std::size_t i = 0; i < count; ++i)
        if (arena.node(inputs[i]).op == Op::Leaf) sparse_->emplace(inputs[i], 0.0);
    }
  }
  // The sweep's copy of the table's bounds, held in registers (as members, every store of
  // the sweep through a double* made the compiler read them again).
  struct Sink {
    NodeId lo;
    std::size_t n;
    double* dense;
    LeafInputs* sparse;  // nullptr when no input is kept in the map
    ARENAGRAD_FORCE_INLINE void add(NodeId id, double x) const {
      if (std::size_t{id - lo} < n) dense[id - lo] += x;
      else if (sparse) sparse->add_sparse(id, x);
    }
  };
  Sink sink() { return {lo_, dense_size_, dense_, sparse_ ? this : nullptr}; }
  double sum_so_far(NodeId leaf) const {  // an input's sum; any other leaf's 0.0 unless in range
    if (std::size_t{leaf - lo_} < dense_size_) return dense_[leaf - lo_];
    if (!sparse_) return 0.0;
    const auto it = sparse_->find(leaf);
    return it == sparse_->end() ? 0.0 : it->second;
  }

 private:
  void add_sparse(NodeId id, double x) {  // out of the sweep's inner loop
    const auto it = sparse_->find(id);
    if (it != sparse_->end()) it->second += x;
  }
  NodeId lo_ = 0;
  double* dense_ = nullptr;  // the adjoint of leaf lo_ + i, i < dense_size_
  std::size_t dense_size_ = 0;
  // Instead, when the inputs' ids are spread out (made only then: most calls need no map).
  std::unique_ptr<std::unordered_map<NodeId, double>> sparse_;
};

// The id-order sweep's adjoint table, keyed by depth = root - id, in the walk's buffer [W2]
// (kept between walks: fresh memory for every call cost more in page faults than the sweep).
// Uninitialized: the sweep writes a depth's entry when it marks the node, before any read.
// Its size follows the deepest operand reached, not the graph: at 8 bytes a depth it is at
// most a fifth of the 40 bytes a slot the arena holds for the same ids, and only reached
// nodes' entries are written (the pages of a gap are never touched).
struct DepthAdjoints {
  double* at;
  std::size_t size;

  explicit DepthAdjoints(WalkScope& walk) : at(walk.buffer(kSparseSlack)), size(kSparseSlack) {}
  // Makes `depth` an entry (rare: the size doubles). False when the memory cannot be had (a
  // far operand under a memory cap): the caller then takes the explicit order, whose memory
  // follows the graph alone.
  bool grow(WalkScope& walk, std::size_t depth) noexcept {
    const std::size_t grown = std::max(depth + 1, 2 * size);
    try {
      at = walk.buffer(grown, size);
    } catch (const std::bad_alloc&) {
      return false;
    }
    size = grown;
    return true;
  }
};

// [A4] While no live node is out of order, descending ids are a reverse topological order: one
// scan down from the root sweeps the graph in backward.cpp's sweep_by_id order, with the same
// marks, budget and arithmetic, so the sums are backward()'s, bit for bit. Only where the sums
// live differs: a non-leaf's in `adj.at[root - id]`, valid once the node holds this walk's mark
// (no entry is read before, so the table needs no clearing pass); an input leaf's in `leaves`.
// A non-leaf's first contribution is stored as it is, where backward adds it to a zeroed grad:
// the two differ only when it is -0.0, and what follows from it then differs at most in the
// sign of a zero (x + 0 is x for x != 0; d * 0 is a zero or d's NaN), so a non-leaf input's sum
// is read as 0.0 + sum, which is backward's (a sum begun at 0.0 is never -0.0). Returns kSwept,
// or where it gave up when the slots turned out sparse (finish_in_order() takes it from there,
// as backward() does), or kLost when the table could not grow to an operand (its contribution
// is lost: the caller starts again in the explicit order).
// Its own function: inlined into its caller, the loop's locals were spilled to the stack.
constexpr NodeId kSwept = ~NodeId{0};
constexpr NodeId kLost = kSwept - 1;  // NodeIds stay below 2^31 (Arena::grow)

ARENAGRAD_NO_INLINE NodeId sweep_by_id(Arena& arena, WalkScope& walk, std::uint16_t epoch,
                                       NodeId root, DepthAdjoints& table, LeafInputs& leaves) {
  const std::size_t poll_mask = walk::mask();
  const LeafInputs::Sink to_inputs = leaves.sink();
  DepthAdjoints adj = table;  // in registers, as to_inputs; given back when the sweep ends
  arena.node(root).mark = epoch;
  adj.at[0] = 1.0;
  std::size_t pending = 1;  // marked, not yet swept; a marked id is below every swept one
  std::size_t budget = kSparseFactor + kSparseSlack;  // unreached slots it may still read
  // An operand the table could not grow to lost its contribution (the sweep gives up at its
  // end): it is not marked, so what only it reaches is never marked and the scan still ends.
  bool unfit = false;
  for (NodeId id = root;; --id) {
    if (walk::due(id, poll_mask)) walk::poll_interrupt();
    const Node& n = arena.node(id);
    if (n.mark != epoch) {
      if (budget-- > 0) continue;
      table = adj;
      return unfit ? kLost : id;
    }
    if (n.op == Op::Custom) through_custom(arena, id);
    const double g = adj.at[root - id];
    for_each_partial(arena, n, [&](NodeId o, double d) ARENAGRAD_FORCE_INLINE {
      Node& operand = arena.node(o);
      const std::size_t depth = root - o;  // o < id: [A4]
      if (operand.mark == epoch) {  // never a leaf: this sweep marks none
        adj.at[depth] += d * g;
      } else if (operand.op == Op::Leaf) {
        to_inputs.add(o, d * g);
      } else if (depth < adj.size || adj.grow(walk, depth)) {
        operand.mark = epoch;
        adj.at[depth] = d * g;  // not 0.0 + d * g: see above
        ++pending;
        budget += kSparseFactor;
      } else {
        unfit = true;
      }
    });
    if (--pending == 0) {
      table = adj;
      return unfit ? kLost : kSwept;
    }
  }
}

// The chain rule over an explicit topological order, in reverse, passing over the nodes above
// `above` (swept already); `sum(id)` is the sum of node `id` (every node of the order has one,
// its starting value in place). The one loop of every explicit-order route below.
constexpr NodeId kNothingSwept = ~NodeId{0};  // `above` when no node was swept before

template <class Sum>
void sweep_order(Arena& arena, const std::vector<NodeId>& order, NodeId above, Sum&& sum) {
  for (std::size_t i = order.size(); i-- > 0;) {
    if (walk::due(i, walk::mask())) walk::poll_interrupt();
    const NodeId id = order[i];
    if (id > above) continue;
    const Node& n = arena.node(id);
    if (n.op == Op::Custom) through_custom(arena, id);
    const double g = sum(id);
    for_each_partial(arena, n, [&](NodeId o, double d) { sum(o) += d * g; });
  }
}

// The scan gave up at `stopped` (sparse slots): as backward() does, the explicit order finishes
// the sweep, passing over the nodes above `stopped` (all swept: [A4]). Every node of the graph
// then sums in `adj`, leaves too (the table grows to the lowest): a non-leaf below `stopped`
// from what the scan left there if the scan reached it (its mark is `scanned`), else from 0.0;
// a leaf from what it summed in `leaves`. So the sums are backward()'s, bit for bit, and the
// scan's work is not done twice. False (the sums unusable) when the table cannot grow to the
// graph's lowest node, or a leaf lies above the root (a table keyed by depth has no entry for
// it; [A4] lets a leaf sit above its users): the caller starts again.
bool finish_in_order(Arena& arena, WalkScope& walk, std::uint16_t scanned, NodeId root,
                     NodeId stopped, DepthAdjoints& adj, const LeafInputs& leaves) {
  std::vector<NodeId>& order = walk.order();  // [W2]
  bool unfit = false;  // a leaf above the root, or no memory for the table to grow
  topological_order(arena, walk, root, order, [&](NodeId id, const Node& n) {
    if (unfit || (n.op == Op::Leaf && id > root)) {
      unfit = true;
      return;
    }
    const std::size_t depth = root - id;
    if (depth >= adj.size && !adj.grow(walk, depth)) {
      unfit = true;
      return;
    }
    if (n.op == Op::Leaf) adj.at[depth] = leaves.sum_so_far(id);
    else if (n.mark != scanned) adj.at[depth] = 0.0;
  });
  if (unfit) return false;
  double* const at = adj.at;  // entry of id: at[root - id]; in a register for the loop
  sweep_order(arena, order, stopped, [at, root](NodeId id) -> double& { return at[root - id]; });
  return true;
}

// Any id order, ids spread out: the same chain rule, adjoints keyed by position in the order.
std::vector<double> sweep_in_order(Arena& arena, const Topo& topo) {
  std::vector<double> adj(topo.order.size(), 0.0);
  adj.back() = 1.0;
  sweep_order(arena, topo.order, kNothingSwept,
              [&](NodeId id) -> double& { return adj[topo.find(id)]; });
  return adj;
}

const char* route = "";

// Any id order, the graph's ids not too spread out (its id range at most kSpreadFactor times
// its size, plus kSparseSlack): the same chain rule over `order` (topological_order's, whose
// marks still tell the graph's nodes), the sums in a table keyed by id over that range, in the
// walk's buffer [W2]. Only the graph's own entries are ever written (zeroed first), so the work
// and the pages touched follow the graph, not the range; no position lookup per contribution.
// Fills `values` and returns true, or false (nothing done) when the ids are too spread out or
// the table's memory cannot be had.
constexpr std::size_t kSpreadFactor = 64;

bool sweep_in_order_by_id(Arena& arena, WalkScope& walk, const std::vector<NodeId>& order,
                          NodeId output, const NodeId* inputs, std::size_t count,
                          double* values) {
  const auto [lo_at, hi_at] = std::minmax_element(order.begin(), order.end());
  const NodeId lo = *lo_at;
  const std::size_t span = std::size_t{*hi_at} - lo + 1;
  if (span > kSpreadFactor * order.size() + kSparseSlack) return false;
  double* adj;
  try {
    adj = walk.buffer(span);
  } catch (const std::bad_alloc&) {
    return false;
  }
  const std::uint16_t epoch = arena.node(output).mark;  // the order's walk marked the graph
  for (NodeId id : order) adj[id - lo] = 0.0;
  adj[output - lo] = 1.0;
  sweep_order(arena, order, kNothingSwept,
              [adj, lo](NodeId id) -> double& { return adj[id - lo]; });
  for (std::size_t i = 0; i < count; ++i) {
    const NodeId id = inputs[i];
    if (std::size_t{id - lo} < span && arena.node(id).mark == epoch) values[i] = adj[id - lo];
  }
  return true;
}

}  // namespace

}  // namespace grad_detail

using namespace grad_detail;

void grad_numbers(Arena& arena, NodeId output, const NodeId* inputs, std::size_t count,
                  double* values) {
  std::fill_n(values, count, 0.0);
  WalkScope walk(arena);  // [W1] the marks; [W2] the depth table's storage
  if (arena.out_of_order_nodes() == 0) {
    LeafInputs leaves(arena, walk, inputs, count);
    DepthAdjoints adj(walk);
    // Its marks tell the nodes the scan reached, and survive finish_in_order()'s own epoch.
    const std::uint16_t scanned = walk.new_epoch(/*another_follows=*/true);
    route = "scan";
    NodeId stopped = sweep_by_id(arena, walk, scanned, output, adj, leaves);
    std::uint16_t graph = scanned;  // the mark of the graph's nodes whose sums are in `adj`
    bool finished = false;          // by finish_in_order(): then every node's, leaves too
    if (stopped != kSwept && stopped != kLost) {
      route = "scan, then topological order";
      finished = finish_in_order(arena, walk, scanned, output, stopped, adj, leaves);
      if (finished) graph = arena.node(output).mark;  // topological_order's
      else stopped = kLost;
    }
    if (stopped != kLost) {
      for (std::size_t i = 0; i < count; ++i) {
        const NodeId id = inputs[i];
        const Node& n = arena.node(id);
        if (id == output) values[i] = 1.0;  // the root has no user in its own graph
        else if (n.op == Op::Leaf && !finished) values[i] = leaves.sum_so_far(id);
        else if (id <= output && n.mark == graph) values[i] = 0.0 + adj.at[output - id];
      }
      return;
    }
  }
  route = "topological order";
  std::vector<NodeId>& order = walk.order();  // [W2]
  topological_order(arena, walk, output, order);
  if (sweep_in_order_by_id(arena, walk, order, output, inputs, count, values)) return;
  route = "topological order, hashed";
  const Topo topo(order);
  const std::vector<double> adj = sweep_in_order(arena, topo);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t at = topo.find(inputs[i]);
    if (at != kNowhere) values[i] = adj[at];
  }
}

const char* last_grad_route() { return route; }

}  // namespace arenagrad

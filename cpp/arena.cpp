#include "arena.hpp"

#include <algorithm>
#include <new>

namespace arenagrad {

namespace {
constexpr std::size_t kWordsPerChunk = Arena::kChunkSize / 64;
constexpr std::size_t kSummaryPerChunk = kWordsPerChunk / 64;
}  // namespace

Arena& arena() {
  static Arena* const instance = new Arena();  // never destroyed [A6]
  return *instance;
}

void Arena::grow() {
  // NodeIds must stay below 2^31: backward.cpp tags stack entries with the top bit.
  if (chunks_.size() >= (std::size_t{1} << (31 - kChunkBits))) throw std::bad_alloc();
  // Value-initialized: backward.cpp's scans read the `mark` of every slot in a range, free
  // slots included, so no slot may hold garbage that could equal a walk's epoch.
  chunks_.emplace_back(new Node[kChunkSize]());
  free_words_.resize(free_words_.size() + kWordsPerChunk, ~std::uint64_t{0});
  free_summary_.resize(free_summary_.size() + kSummaryPerChunk, ~std::uint64_t{0});
}

NodeId* Arena::allocate_operands(Node& n, std::size_t count) {
  n.operands.many = new NodeId[count + 1];
  n.operands.many[0] = static_cast<NodeId>(count);
  operand_array_bytes_ += (count + 1) * sizeof(NodeId);
  return n.operands.many + 1;
}

void Arena::mark_free(NodeId id) {
  const std::size_t w = id / 64;
  const std::size_t s = w / 64;
  free_words_[w] |= std::uint64_t{1} << (id % 64);
  free_summary_[s] |= std::uint64_t{1} << (w % 64);
  summary_from_ = std::min(summary_from_, s);
  --live_;
}

void Arena::free_graph(NodeId id) {
  // [A2] Recursive twin:  free(n): for o in operands(n): if --o.refs == 0: free(o)
  release_stack_.push_back(id);
  while (!release_stack_.empty()) {
    const NodeId dead = release_stack_.back();
    release_stack_.pop_back();
    Node& n = node(dead);
    for (NodeId o : owned_operands(n))
      if (--node(o).refs == 0) release_stack_.push_back(o);
    if (is_nary(n.op)) {
      operand_array_bytes_ -= (n.operands.many[0] + 1) * sizeof(NodeId);
      delete[] n.operands.many;
    }
    if (n.flags & (flag::kAnnotated | flag::kCachedOrder | flag::kOutOfOrder | flag::kPythonState)) {
      if (n.flags & flag::kAnnotated) annotations_.erase(dead);
      if (n.flags & flag::kCachedOrder) orders_.erase(dead);
      if (n.flags & flag::kOutOfOrder) --out_of_order_;
      if (n.flags & flag::kPythonState) drop_python_state(dead);
    }
    n.op = Op::Leaf;
    n.flags = 0;
    mark_free(dead);
  }
}

std::uint16_t Arena::begin_walk() {
  if (++walk_epoch_ == 0) {  // wrapped: clear every mark so that no Node claims the new epoch
    for (auto& chunk : chunks_)
      for (std::size_t i = 0; i < kChunkSize; ++i) chunk[i].mark = 0;
    walk_epoch_ = 1;
  }
  return walk_epoch_;
}

void Arena::poll_interrupt() const {
  if (interrupt_poll && interrupt_poll()) throw Interrupted{};
}

const Annotation* Arena::annotation(NodeId id) const {
  if (!(node(id).flags & flag::kAnnotated)) return nullptr;
  return &annotations_.at(id);
}

Annotation& Arena::annotate(NodeId id) {
  node(id).flags |= flag::kAnnotated;
  return annotations_[id];
}

const std::vector<NodeId>* Arena::cached_order(NodeId root) const {
  if (!(node(root).flags & flag::kCachedOrder)) return nullptr;
  return &orders_.at(root);
}

std::vector<NodeId>& Arena::cache_order(NodeId root) {
  node(root).flags |= flag::kCachedOrder;
  return orders_[root];
}

MemoryStats Arena::memory_stats() const {
  std::size_t bytes = chunks_.size() * kChunkSize * sizeof(Node) +
                      (free_words_.capacity() + free_summary_.capacity()) * sizeof(std::uint64_t) +
                      operand_array_bytes_ +
                      (order_scratch.capacity() + stack_scratch.capacity() +
                       release_stack_.capacity()) * sizeof(NodeId) +
                      (saved_scratch.capacity() + operand_scratch.capacity()) * sizeof(double);
  for (const auto& entry : orders_) bytes += entry.second.capacity() * sizeof(NodeId);
  return {live_, chunks_.size() * kChunkSize, bytes};
}

void Arena::trim() {
  const auto last_chunk_is_free = [this] {
    return std::all_of(free_words_.end() - kWordsPerChunk, free_words_.end(),
                       [](std::uint64_t word) { return word == ~std::uint64_t{0}; });
  };
  while (chunks_.size() > 1 && last_chunk_is_free()) {
    chunks_.pop_back();
    free_words_.resize(free_words_.size() - kWordsPerChunk);
    free_summary_.resize(free_summary_.size() - kSummaryPerChunk);
  }
  summary_from_ = std::min(summary_from_, free_summary_.size());
  free_words_.shrink_to_fit();
  free_summary_.shrink_to_fit();
  order_scratch = {};
  stack_scratch = {};
  release_stack_ = {};
  saved_scratch = {};
  operand_scratch = {};
}

}  // namespace arenagrad

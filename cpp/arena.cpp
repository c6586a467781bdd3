#include "arena.hpp"

#include <algorithm>
#include <functional>
#include <new>

namespace arenagrad {

namespace {
constexpr std::size_t kWordsPerChunk = Arena::kChunkSize / 64;
constexpr std::size_t kSummaryPerChunk = kWordsPerChunk / 64;
}  // namespace

Arena* const detail::process_arena = new Arena();  // never destroyed [A6]

namespace {
// Room for `extra` more elements, growing geometrically; may throw std::bad_alloc.
template <class Vector>
void reserve_more(Vector& v, std::size_t extra) {
  const std::size_t needed = v.size() + extra;
  if (v.capacity() < needed) v.reserve(std::max(needed, 2 * v.capacity()));
}
}  // namespace

void Arena::grow() {
  // NodeIds must stay below 2^31: backward.cpp tags stack entries with the top bit.
  if (chunks_.size() >= (std::size_t{1} << (31 - kChunkBits))) throw std::bad_alloc();
  // Value-initialized: backward.cpp's scans read the `mark` of every slot in a range, free
  // slots included, so no slot may hold garbage that could equal a walk's epoch.
  std::unique_ptr<Node[]> chunk(new Node[kChunkSize]());
  reserve_more(chunks_, 1);
  reserve_more(free_words_, kWordsPerChunk);
  reserve_more(free_summary_, kSummaryPerChunk);
  // [A5] Everything that can fail has been done: nothing below allocates.
  chunks_.push_back(std::move(chunk));
  free_words_.resize(free_words_.size() + kWordsPerChunk, ~std::uint64_t{0});
  free_summary_.resize(free_summary_.size() + kSummaryPerChunk, ~std::uint64_t{0});
}

NodeId Arena::id_of(const Node& n) const {
  const std::less<const Node*> before;  // a total order across chunks
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    const Node* const first = chunks_[c].get();
    if (!before(&n, first) && before(&n, first + kChunkSize))
      return static_cast<NodeId>((c << kChunkBits) + static_cast<std::size_t>(&n - first));
  }
  return ~NodeId{0};  // not an arena Node (no caller passes one): an id no Node has
}

std::size_t Arena::next_free_word() {
  if (fail_countdown_ != 0 && --fail_countdown_ == 0) throw std::bad_alloc();
  std::size_t s = word_from_ / 64;
  while (s < free_summary_.size() && free_summary_[s] == 0) ++s;
  if (s == free_summary_.size()) grow();  // its first word is free_summary_[s]'s first
  word_from_ = 64 * s + lowest_bit(free_summary_[s]);
  return word_from_;
}

NodeId Arena::Burst::claim(double data, Op op, Node*& made) {
  end();
  Arena& a = arena_;
  if (a.fail_countdown_ != 0) {  // each allocation may be the one that fails
    const NodeId id = a.allocate(data, made);
    made->op = op;
    return id;
  }
  const std::size_t w = a.has_slot_at_hand() ? a.word_from_ : a.next_free_word();  // may throw
  claimed_ = taken_ = a.free_words_[w];
  a.free_words_[w] = 0;
  a.free_summary_[w / 64] &= ~(std::uint64_t{1} << (w % 64));
  word_ = w;
  base_ = static_cast<NodeId>(64 * w);
  first_ = &a.node(base_);
  return allocate(data, op, made);
}

void Arena::Burst::end() {
  arena_.live_ += count_bits(taken_ & ~claimed_);
  taken_ = 0;
  if (claimed_ == 0) return;
  arena_.free_words_[word_] |= claimed_;
  arena_.free_summary_[word_ / 64] |= std::uint64_t{1} << (word_ % 64);
  arena_.word_from_ = std::min(arena_.word_from_, word_);
  claimed_ = 0;
}

std::unique_ptr<NodeId[]> Arena::new_operands(std::size_t count) {
  std::unique_ptr<NodeId[]> operands(new NodeId[count + 1]);
  operands[0] = static_cast<NodeId>(count);
  return operands;
}

void Arena::attach_operands(Node& n, std::unique_ptr<NodeId[]> operands) {
  operand_array_bytes_ += (operands[0] + std::size_t{1}) * sizeof(NodeId);
  n.operands.many = operands.release();
}

void Arena::free_graph(NodeId id) {
  // [A2] Recursive twin:  free(n): for o in operands(n): if --o.refs == 0: free(o)
  // The worklist is a singly linked list through the `refs` fields of its Nodes (all 0).
  // The tables and counters live in locals while the loop runs (the stores to Nodes and bitmap
  // words would otherwise make the compiler reload them from the Arena at every step). They go
  // back to the Arena before the observer runs and are read again after it: it may allocate
  // (moving the tables, never the chunks [A3]) and re-enter free_graph [A7].
  constexpr NodeId kEnd = ~NodeId{0};
  const std::unique_ptr<Node[]>* chunks = chunks_.data();
  std::uint64_t* words = free_words_.data();
  std::uint64_t* summary = free_summary_.data();
  std::size_t lowest = word_from_;  // word_from_ once this loop's frees are counted
  std::size_t freed = 0;               // not yet subtracted from live_
  // The freed slots of one bitmap word, not yet written to it: a graph dies in runs of nearby
  // ids, so the word changes once in many frees. Written before the observer runs and at the end.
  std::size_t pending_word = 0;
  std::uint64_t pending = 0;
  const auto write_pending = [&] {
    if (pending == 0) return;
    words[pending_word] |= pending;
    summary[pending_word / 64] |= std::uint64_t{1} << (pending_word % 64);
    lowest = std::min(lowest, pending_word);
    pending = 0;
  };
  const auto at = [&chunks](NodeId i) -> Node& {
    return chunks[i >> kChunkBits][i & (kChunkSize - 1)];
  };
  // The Node freed next is the worklist's top: the last operand the Node just freed released to
  // 0, taken at once (`next`) without the round trip through the list; the list holds the rest.
  NodeId head = kEnd;
  NodeId dead = id;
  Node* n = &at(id);  // refs 0: its last holder let go
  for (;;) {
    NodeId next = kEnd;
    Node* next_node = nullptr;
    const auto release_operand = [&](NodeId o) {
      Node& operand = at(o);
      if (--operand.refs == 0) {
        if (next != kEnd) {  // the one released before waits on the list
          next_node->refs = head;
          head = next;
        }
        next = o;
        next_node = &operand;
      }
    };
    // owned_operands(), unrolled for one and two operands: the span's loop cost 6 more
    // instructions a Node (callgrind, `acc = acc + w*x`).
    const int arity = owned_arity(n->op);
    if (arity > 0) {
      release_operand(n->operands.pair[0]);
      if (arity == 2) release_operand(n->operands.pair[1]);
    } else if (arity < 0) {
      const NodeId* many = n->operands.many;
      for (NodeId k = 1; k <= many[0]; ++k) release_operand(many[k]);
      operand_array_bytes_ -= (many[0] + std::size_t{1}) * sizeof(NodeId);
      delete[] many;
    }
    if (n->flags & (flag::kObserved | flag::kOutOfOrder)) {
      if (n->flags & flag::kOutOfOrder) --out_of_order_;
      if ((n->flags & flag::kObserved) && freed_) {
        write_pending();
        word_from_ = lowest;
        live_ -= freed;
        freed = 0;
        freed_(dead, n->flags);  // [A7]: its slot is not free yet, so `n` stays this Node
        chunks = chunks_.data();
        words = free_words_.data();
        summary = free_summary_.data();
        lowest = word_from_;
      }
    }
    n->op = Op::Leaf;
    n->flags = 0;
    const std::size_t w = dead / 64;
    if (w != pending_word) {
      write_pending();
      pending_word = w;
    }
    pending |= std::uint64_t{1} << (dead % 64);
    ++freed;
    if (next != kEnd) {
      dead = next;
      n = next_node;
    } else if (head != kEnd) {
      dead = head;
      n = &at(head);
      head = n->refs;
      n->refs = 0;
    } else {
      break;
    }
  }
  write_pending();
  word_from_ = lowest;
  live_ -= freed;
}

std::uint16_t Arena::begin_walk(bool another_follows) {
  if (another_follows && walk_epoch_ >= 0xFFFE) walk_epoch_ = 0xFFFF;  // wrap now, not next
  if (++walk_epoch_ == 0) {  // wrapped: clear every mark so that no Node claims the new epoch
    for (auto& chunk : chunks_)
      for (std::size_t i = 0; i < kChunkSize; ++i) chunk[i].mark = 0;
    walk_epoch_ = 1;
  }
  return walk_epoch_;
}

MemoryStats Arena::memory_stats() const {
  std::size_t bytes = chunks_.size() * kChunkSize * sizeof(Node) +
                      (free_words_.capacity() + free_summary_.capacity()) * sizeof(std::uint64_t) +
                      operand_array_bytes_;
  return {live_nodes(), chunks_.size() * kChunkSize, bytes};
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
  word_from_ = std::min(word_from_, free_words_.size());
  free_words_.shrink_to_fit();
  free_summary_.shrink_to_fit();
}

}  // namespace arenagrad

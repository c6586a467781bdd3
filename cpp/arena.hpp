// The graph-node arena: storage, reference counts and slot reuse for every Node.
//
// [A1] Ownership. The Arena owns every Node. A Node's `refs` counts its holders, each of which
//      took its count with acquire() (or add_operand()) and gives it back with release():
//        - its Python handle, at most one (Node::handle; value_state.cpp wrap());
//        - every Node that has it as an operand, once per operand slot (add_operand());
//        - every compiled Network that has it as a parameter (mlp.cpp);
//        - transient holds of a C++ frame that must keep a Node alive across an allocation
//          (ops.cpp's Hold, HeldNodes below: mlp.cpp's forward, bindings.cpp's hold_operands,
//          grad_nodes.cpp); released on every exit, exceptions included.
//      A tape (tape.hpp) holds no count: it lives only while its root does, which holds the
//      whole graph.
//      A Node with refs == 0 outside free_graph() is one its creator has built and not yet
//      handed to a holder (an op's result until wrap(); the head of a neuron's chain in
//      mlp.cpp until the next Node takes it); on a failure the creator frees it, and what it
//      holds, with discard_if_unheld().
// [A2] Freeing. When a count reaches 0 the Node is freed and its operands released through a
//      worklist that is threaded through the dying Nodes themselves (a Node on it has no
//      holders, so its `refs` field links to the next): freeing never recurses and never
//      allocates, so it cannot fail (it runs in destructors and under memory exhaustion), and
//      it is re-entrant (each call has its own list).
// [A3] Id and address stability. Storage grows by whole chunks that never move, so a NodeId and a
//      Node& stay valid while the Node is live, across any allocation.
// [A4] Order. allocate() hands out the lowest free slot. A graph freed and rebuilt (a training
//      loop) therefore gets the same ascending slots back and keeps its memory layout; but ids
//      are not creation order in general, and nothing may assume operands have smaller ids.
//      Nodes that break "non-leaf operands have smaller ids" carry flag::kOutOfOrder, counted
//      (out_of_order_nodes()); while none is live, descending ids are a reverse topological
//      order of every graph, which backward.cpp's fastest sweep relies on.
// [A5] Failure. Ops validate and compute before allocating, and allocate a Node last; on error
//      (a Python float error, std::bad_alloc) the Arena holds exactly the Nodes it held before.
// [A6] Threads. Every entry point runs with the GIL held, so the Arena is only ever used by one
//      thread at a time; Python code (and with it another thread) can run only where a walk
//      polls for signals (walk.hpp [W1]). The Arena is a process-wide object that is never
//      destroyed, so Values freed late at interpreter exit still find it.
// [A7] Observer. The Arena keeps no state but its own: what others keep for a Node (its label
//      and `_op` text, annotations.hpp; a root's tape, graph_reuse.hpp; its Python state,
//      value_type.hpp [V2]) they flag with a bit of flag::kObserved. When a Node with such a flag is freed, free_graph calls the one
//      installed observer with its id and flags, once, after its operands went on the worklist
//      and before its slot is reused (its data and grad are still readable). The observer
//      must not allocate without bound; it may run Python code and so re-enter free_graph,
//      which [A2] allows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#include "inlining.hpp"
#include "node.hpp"

namespace arenagrad {

// The operands of a Node as a range of ids.
struct OperandSpan {
  const NodeId* first;
  const NodeId* last;
  const NodeId* begin() const { return first; }
  const NodeId* end() const { return last; }
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
};

inline OperandSpan operands_of(const Node& n, int arity) {
  if (arity < 0) return {n.operands.many + 1, n.operands.many + 1 + n.operands.many[0]};
  return {n.operands.pair, n.operands.pair + arity};
}
inline OperandSpan visible_operands(const Node& n) { return operands_of(n, visible_arity(n.op)); }
inline OperandSpan owned_operands(const Node& n) { return operands_of(n, owned_arity(n.op)); }

struct MemoryStats {
  std::size_t live_nodes;
  std::size_t capacity;  // node slots allocated
  std::size_t bytes;     // node storage + bitmaps + operand arrays
};

class Arena {
 public:
  static constexpr unsigned kChunkBits = 16;
  static constexpr std::size_t kChunkSize = std::size_t{1} << kChunkBits;

  Node& node(NodeId id) { return chunks_[id >> kChunkBits][id & (kChunkSize - 1)]; }
  const Node& node(NodeId id) const { return chunks_[id >> kChunkBits][id & (kChunkSize - 1)]; }

  // A Leaf holding `data`, refs == 0: the caller acquires it (a Value or an operand slot) at once.
  ARENAGRAD_FORCE_INLINE NodeId allocate(double data) {
    Node* made;
    return allocate(data, made);
  }
  // The same, handing over the new Node too.
  ARENAGRAD_FORCE_INLINE NodeId allocate(double data, Node*& made) {
    const std::size_t w = has_slot_at_hand() ? word_from_ : next_free_word();
    return take_slot(w, data, made);
  }

  // Whether allocate() would take its slot from the word it starts at, with no call (no search,
  // no growth, no fault injection): then allocate_at_hand() takes that same slot. For callers
  // that must make no call but tail calls on their common path (the operator and dealloc slots
  // would otherwise save registers on every call).
  bool has_slot_at_hand() const {
    const std::size_t w = word_from_;
    return w != free_words_.size() && free_words_[w] != 0 && fail_countdown_ == 0;
  }
  ARENAGRAD_FORCE_INLINE NodeId allocate_at_hand(double data, Node*& made) {  // has_slot_at_hand()
    return take_slot(word_from_, data, made);
  }

  // allocate() many times in a row, for a caller that makes no other use of the Arena's slots
  // meanwhile (no other allocate(), nothing freed): the MLP forward's neurons. It claims the
  // free slots of the lowest bitmap word with any at once (the Arena then sees them taken) and
  // hands them out lowest first, so the ids are allocate()'s, in allocate()'s order [A4]. end(),
  // which the destructor calls, gives back what it did not hand out and counts what it did;
  // the Arena may be used again after it. Under fault injection every slot comes from allocate().
  class Burst {
   public:
    explicit Burst(Arena& arena) : arena_(arena) {}
    ~Burst() { end(); }
    Burst(const Burst&) = delete;
    Burst& operator=(const Burst&) = delete;

    // allocate(data, made), the new Node's op set to `op` (its operands are the caller's to set).
    ARENAGRAD_FORCE_INLINE NodeId allocate(double data, Op op, Node*& made) {
      if (claimed_ == 0) return claim(data, op, made);
      const unsigned bit = lowest_bit(claimed_);
      claimed_ &= claimed_ - 1;
      made = first_ + bit;
      fresh(*made, data, op);
      return base_ + bit;
    }
    void end();

   private:
    NodeId claim(double data, Op op, Node*& made);

    Arena& arena_;
    std::uint64_t claimed_ = 0;  // bit i: slot base_ + i is claimed and not handed out yet
    NodeId base_ = 0;            // 64 * word_
    Node* first_ = nullptr;      // the Node of slot base_ (a word's 64 slots share a chunk)
    std::uint64_t taken_ = 0;    // claimed_ as claimed: taken_ & ~claimed_ were handed out
    std::size_t word_ = 0;       // the bitmap word claimed
  };
  // An n-ary operand array with room for `count` operands, not yet owned by a Node: allocated
  // before the Node [A5], handed to it by attach_operands(), which cannot fail.
  static std::unique_ptr<NodeId[]> new_operands(std::size_t count);
  void attach_operands(Node& n, std::unique_ptr<NodeId[]> operands);
  static NodeId* operand_slots(const std::unique_ptr<NodeId[]>& operands) { return operands.get() + 1; }

  // Frees a Node that allocate() returned and nobody acquired ([A1], on a failure path).
  void discard_if_unheld(NodeId id) {
    if (node(id).refs == 0) free_graph(id);
  }

  // The id of a live Node (an error path's lookup: linear in the number of chunks).
  NodeId id_of(const Node& n) const;

  void acquire(NodeId id) { ++node(id).refs; }

  // Records that `user` holds `operand` ([A1]) and keeps the [A4] order count. A Leaf operand
  // never breaks the order: it has nothing to pass on, so when it is swept does not matter.
  // `u` and `o` are the Nodes of `user` and `operand`.
  ARENAGRAD_FORCE_INLINE void add_operand(NodeId user, Node& u, NodeId operand, Node& o) {
    ++o.refs;
    if (operand >= user && o.op != Op::Leaf) mark_out_of_order(u);
  }
  void add_operand(NodeId user, NodeId operand) {
    add_operand(user, node(user), operand, node(operand));
  }
  std::size_t out_of_order_nodes() const { return out_of_order_; }
  ARENAGRAD_FORCE_INLINE void release(NodeId id) { release(id, node(id)); }
  ARENAGRAD_FORCE_INLINE void release(NodeId id, Node& n) {  // `n` is the Node of `id`
    if (--n.refs == 0) free_graph(id);
  }

  // An epoch that no Node's `mark` holds yet; used by walks only (walk.hpp [W1]). Running out
  // of epochs clears every mark; with `another_follows`, that happens now if the next call
  // would do it, so that this epoch's marks survive one more begin_walk().
  std::uint16_t begin_walk(bool another_follows = false);

  // [A7] The one observer of freeing, installed once (value_state.cpp); nullptr: none.
  using FreedObserver = void (*)(NodeId id, std::uint8_t flags);
  void set_freed_observer(FreedObserver observer) { freed_ = observer; }

  // A Leaf held for good by the engine itself (value_state.cpp's tombstone): not counted by
  // live_nodes(), which counts what users' Values keep alive.
  NodeId allocate_internal(double data) {
    const NodeId id = allocate(data);
    acquire(id);
    ++internal_;
    return id;
  }

  std::size_t live_nodes() const { return live_ - internal_; }
  MemoryStats memory_stats() const;
  // Returns trailing chunks that hold no live Node to the system (call outside walks, [W1]).
  void trim();

  // Fault injection for tests: the `n`-th allocate() from now throws std::bad_alloc (0: never).
  void fail_allocation_after(std::size_t n) { fail_countdown_ = n; }

 private:
  static void fresh(Node& n, double data, Op op) {  // a new Node: no holder, no operand
    n.data = data;
    n.grad = 0.0;
    n.handle = nullptr;
    n.refs = 0;
    n.op = op;
    n.flags = 0;
    n.mark = 0;
  }
  static unsigned count_bits(std::uint64_t x) {  // portable popcount (once per Burst word)
    x = x - ((x >> 1) & 0x5555555555555555u);
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return static_cast<unsigned>((x * 0x0101010101010101u) >> 56);
  }
  static unsigned lowest_bit(std::uint64_t x) {  // x != 0
#if defined(_MSC_VER)
    unsigned long index;
    _BitScanForward64(&index, x);
    return static_cast<unsigned>(index);
#else
    return static_cast<unsigned>(__builtin_ctzll(x));
#endif
  }
  // allocate()'s common part: the lowest free slot of bitmap word `w`, which has one.
  ARENAGRAD_FORCE_INLINE NodeId take_slot(std::size_t w, double data, Node*& made) {
    ++live_;  // before the bitmap word's store, which could alias it: one load of each member
    std::uint64_t* const words = free_words_.data();
    const std::uint64_t word = words[w];
    const NodeId id = static_cast<NodeId>(64 * w + lowest_bit(word));
    words[w] = word & (word - 1);
    if (words[w] == 0) free_summary_[w / 64] &= ~(std::uint64_t{1} << (w % 64));
    Node& n = node(id);
    fresh(n, data, Op::Leaf);
    made = &n;
    return id;
  }
  void grow();
  // The lowest word with a free slot, growing the Arena if there is none (and failing when
  // fail_allocation_after() says so); word_from_ is then that word.
  std::size_t next_free_word();
  void free_graph(NodeId id);  // [A2]
  void mark_out_of_order(Node& n) {
    if (!(n.flags & flag::kOutOfOrder)) {
      n.flags |= flag::kOutOfOrder;
      ++out_of_order_;
    }
  }

  std::vector<std::unique_ptr<Node[]>> chunks_;
  // Two-level free bitmap for lowest-free-first allocation [A4]: bit i of free_words_[w] is set
  // when slot 64*w+i is free; bit j of free_summary_[s] is set when free_words_[64*s+j] != 0.
  std::vector<std::uint64_t> free_words_;
  std::vector<std::uint64_t> free_summary_;
  std::uint16_t walk_epoch_ = 0;
  std::size_t word_from_ = 0;  // every free_words_ entry below this index is zero (full)
  std::size_t live_ = 0;
  std::size_t internal_ = 0;  // allocate_internal()
  std::size_t out_of_order_ = 0;
  std::size_t operand_array_bytes_ = 0;
  std::size_t fail_countdown_ = 0;
  FreedObserver freed_ = nullptr;  // [A7]
};

// The process-wide arena [A6]: made when the extension is loaded, before any entry point runs,
// and never destroyed (Values may outlive interpreter teardown).
namespace detail {
extern Arena* const process_arena;
}
inline Arena& arena() { return *detail::process_arena; }

// [A1] transient holds: Nodes this object holds one count on each, released when it dies (on
// any exit, exceptions included) unless take() hands the counts on.
class HeldNodes {
 public:
  explicit HeldNodes(Arena& arena) : arena_(&arena) {}
  HeldNodes(Arena& arena, std::vector<NodeId> counted)  // adopts counts already taken
      : arena_(&arena), ids_(std::move(counted)) {}
  HeldNodes(HeldNodes&& other) noexcept : arena_(other.arena_), ids_(std::move(other.ids_)) {
    other.ids_.clear();
  }
  HeldNodes(const HeldNodes&) = delete;
  HeldNodes& operator=(const HeldNodes&) = delete;
  HeldNodes& operator=(HeldNodes&&) = delete;
  ~HeldNodes() { release_all(); }

  void reserve(std::size_t n) { ids_.reserve(ids_.size() + n); }
  // Takes a count on `id`; after reserve() it cannot throw once the count is taken.
  void hold(NodeId id) {
    arena_->acquire(id);
    ids_.push_back(id);
  }
  // Keeps a count the caller already took (after reserve(): cannot throw).
  void adopt(NodeId id) { ids_.push_back(id); }
  const std::vector<NodeId>& ids() const { return ids_; }
  void release_all() {
    for (NodeId id : ids_) arena_->release(id);
    ids_.clear();
  }
  // Gives back this object's counts and takes over `other`'s.
  void replace_with(HeldNodes& other) {
    release_all();
    ids_.swap(other.ids_);
  }
  std::vector<NodeId> take() { return std::move(ids_); }  // the caller owns the counts

 private:
  Arena* arena_;
  std::vector<NodeId> ids_;
};

}  // namespace arenagrad

#include "graph_reuse.hpp"

#include <vector>

#include "backward.hpp"
#include "tape.hpp"
#include "walk.hpp"

namespace arenagrad {

const tape::Tape* Tapes::find(NodeId root) const {
  if (!(arena_.node(root).flags & flag::kCachedTape)) return nullptr;
  return &tapes_.at(root);
}

const tape::Tape& Tapes::store(NodeId root, tape::Tape tape) {
  tape::Tape& slot = tapes_[root];  // may throw std::bad_alloc: nothing stored
  slot = std::move(tape);
  arena_.node(root).flags |= flag::kCachedTape;
  return slot;
}

std::size_t Tapes::bytes() const {
  std::size_t bytes = 0;
  for (const auto& entry : tapes_) bytes += entry.second.bytes();
  return bytes;
}

Tapes& tapes() {
  static Tapes* const instance = new Tapes(arena());  // never destroyed [A6]
  return *instance;
}

namespace {

// The tape of `root`'s graph, lowered on first use and cached while root lives ([T1]). Built in
// a local vector and stored only when complete: an interrupt or std::bad_alloc half-way caches
// nothing.
const tape::Tape& tape_of(Arena& arena, WalkScope& walk, NodeId root) {
  if (const tape::Tape* tape = tapes().find(root)) return *tape;
  return tapes().store(root, tape::lower(arena, walk, root));
}

}  // namespace

void recompute(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  const tape::Tape& tape = tape_of(arena, walk, root);
  tape::Saved saved{walk.buffer(tape.nodes.size())};  // [W2] values before, for errors
  try {
    tape::forward(arena, tape, saved);
  } catch (...) {
    tape::restore(tape, saved);
    throw;
  }
}

void zero_grad(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  tape::zero_grad(arena, tape_of(arena, walk, root));
}

void backward_replayed(Arena& arena, NodeId root) {
  // The flag of a live root changes only when recompute()/zero_grad() lowers its tape, so a
  // graph without one goes to backward() (which opens its own walk) and one with it keeps it.
  if (!(arena.node(root).flags & flag::kCachedTape)) return backward(arena, root);
  WalkScope walk(arena);  // [W1] before find(): the cache may change while another walk runs
  const tape::Tape& tape = *tapes().find(root);
  arena.node(root).grad = 1.0;
  note_backward({"tape", tape.nodes.size()});
  tape::backward(arena, tape);
}

}  // namespace arenagrad

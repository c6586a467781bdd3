#include "graph_reuse.hpp"

#include <vector>

#include "backward.hpp"
#include "tape.hpp"
#include "walk.hpp"

namespace arenagrad {

const std::vector<NodeId>* Tapes::find(NodeId root) const {
  if (!(arena_.node(root).flags & flag::kCachedTape)) return nullptr;
  return &streams_.at(root);
}

const std::vector<NodeId>& Tapes::store(NodeId root, std::vector<NodeId> stream) {
  std::vector<NodeId>& slot = streams_[root];  // may throw std::bad_alloc: nothing stored
  slot = std::move(stream);
  arena_.node(root).flags |= flag::kCachedTape;
  return slot;
}

std::size_t Tapes::bytes() const {
  std::size_t bytes = 0;
  for (const auto& entry : streams_) bytes += entry.second.capacity() * sizeof(NodeId);
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
const std::vector<NodeId>& tape_of(Arena& arena, WalkScope& walk, NodeId root) {
  if (const std::vector<NodeId>* stream = tapes().find(root)) return *stream;
  return tapes().store(root, tape::lower(arena, walk, root));
}

}  // namespace

void recompute(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  const std::vector<NodeId>& stream = tape_of(arena, walk, root);
  tape::Saved saved{walk.buffer(stream.size())};  // [W2] values before, for errors
  try {
    tape::forward(arena, stream, saved);
  } catch (...) {
    tape::restore(arena, stream, saved);
    throw;
  }
}

void zero_grad(Arena& arena, NodeId root) {
  WalkScope walk(arena);
  tape::zero_grad(arena, tape_of(arena, walk, root));
}

void backward_replayed(Arena& arena, NodeId root) {
  {
    WalkScope walk(arena);  // [W1] first: the cache may change while another thread's walk runs
    if (const std::vector<NodeId>* stream = tapes().find(root)) {
      arena.node(root).grad = 1.0;
      note_backward({"tape", stream->size()});
      tape::backward(arena, *stream);
      return;
    }
  }
  backward(arena, root);
}

}  // namespace arenagrad

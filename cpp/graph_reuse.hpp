// Re-running a graph that was built once: after its leaves change, recompute() gives every node
// the value a rebuild would give, and backward() the grads, by replaying the graph's tape
// (tape.hpp), lowered on the first recompute() or zero_grad() and cached per root. No Node is
// allocated.
#pragma once

#include <unordered_map>
#include <vector>

#include "arena.hpp"
#include "tape.hpp"

namespace arenagrad {

// The tapes of live roots ([T1]: a tape stays valid while its root lives). A root with one is
// flagged flag::kCachedTape; its entry goes when it is freed (arena.hpp [A7]: value_state.cpp's
// observer calls forget()).
class Tapes {
 public:
  explicit Tapes(Arena& arena) : arena_(arena) {}
  Tapes(const Tapes&) = delete;
  Tapes& operator=(const Tapes&) = delete;

  const tape::Tape* find(NodeId root) const;
  // All or nothing: stores a complete tape, or throws std::bad_alloc having stored nothing.
  const tape::Tape& store(NodeId root, tape::Tape tape);
  void forget(NodeId root) { tapes_.erase(root); }
  std::size_t bytes() const;

 private:
  Arena& arena_;
  std::unordered_map<NodeId, tape::Tape> tapes_;
};

// The process-wide cache, over arena() (never destroyed, as the arena [A6]).
Tapes& tapes();

// Forward values of every node under `root`, from the current leaves. On a Python float error
// (ArithmeticFault), std::bad_alloc or an interrupt, every value is restored and the exception
// propagates [A5]. The tape is cached all or nothing.
void recompute(Arena& arena, NodeId root);

// grad = 0 for every node under `root` (itself included): what a rebuilt graph starts from.
void zero_grad(Arena& arena, NodeId root);

// backward(): replays root's tape when it has one (the same numbers, [T2]), else walks.
void backward_replayed(Arena& arena, NodeId root);

}  // namespace arenagrad

// Graph walks (backward, recompute, zero_grad, trim): one at a time, interruptible.
//
// [W1] One walk at a time. Walks share the Nodes' `mark` fields and the walk epoch, so a walk
//      must not start while another is running. Python code can run inside a walk: a signal
//      handler run by poll_interrupt(), or a thread switch while that handler runs. A second walk
//      from the same thread (nested) raises NestedWalk, which the binding maps to RuntimeError,
//      and the outer walk then completes or raises in turn; a walk from another thread waits for
//      the running one to end, with the GIL released (set_wait_hook).
// [W2] Scratch. The buffers a walk needs (stack, order, saved values) are reached only through
//      its WalkScope; by [W1] at most one walk runs at a time, so they are never shared. They
//      keep their capacity between walks (a training loop's recompute() allocates nothing) and
//      are returned to the system by trim().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "arena.hpp"

namespace arenagrad {

// Thrown when a walk starts inside another walk of the same thread [W1].
struct NestedWalk {};

// Thrown by poll_interrupt() when the installed poll asks to stop (Ctrl-C).
struct Interrupted {};

class WalkScope {
 public:
  explicit WalkScope(Arena& arena);  // throws NestedWalk
  ~WalkScope();
  WalkScope(const WalkScope&) = delete;
  WalkScope& operator=(const WalkScope&) = delete;

  // An epoch that no Node's `mark` holds yet (Arena::begin_walk); with `another_follows`, its
  // marks survive the next new_epoch() of this walk.
  std::uint16_t new_epoch(bool another_follows = false) {
    return arena_.begin_walk(another_follows);
  }

  // This walk's scratch [W2], empty on first use within the walk.
  std::vector<NodeId>& stack();
  std::vector<NodeId>& order();
  std::vector<double>& values();
  std::vector<double>& operand_values();
  // Room for `n` doubles, uninitialized (no clearing: for a pass that writes before it reads),
  // the first `kept` of them as they were (growing a table within the walk).
  double* buffer(std::size_t n, std::size_t kept = 0);

  // Returns the scratch buffers' memory to the system; bytes they hold now.
  static void release_scratch();
  static std::size_t scratch_bytes();

 private:
  Arena& arena_;
};

namespace walk {
namespace detail {
extern std::size_t poll_mask;  // interval() - 1
}  // namespace detail
// Long loops poll every interval() iterations (a power of two; 2^20 unless a test lowers it).
inline std::size_t interval() { return detail::poll_mask + 1; }
void set_interval(std::size_t power_of_two);
// True on the iterations where `i` is a multiple of interval().
inline bool due(std::size_t i, std::size_t mask) { return (i & mask) == 0; }
inline std::size_t mask() { return detail::poll_mask; }

// Runs the installed poll (Python's signal check); throws Interrupted if it asks to stop.
void poll_interrupt();

// Hooks installed by the Python layer: the signal check, and a short wait with the GIL released
// (for a thread waiting for another thread's walk [W1]).
void set_poll_hook(bool (*poll)());
void set_wait_hook(void (*wait)());
}  // namespace walk

}  // namespace arenagrad

// Grad mode: whether ops record their operands. It belongs to a thread, as pytorch's
// c10::GradMode does: `no_grad()` in one thread never changes recording in another.
#pragma once

namespace arenagrad::grad_mode {

namespace detail {
// [G1] Every thread's no_grad depth, summed. While it is 0 (the common case) no thread is inside
// no_grad(), and recording() answers without touching thread-local storage.
extern int total_depth;
extern thread_local int depth;  // this thread's nesting of no_grad()
}  // namespace detail

inline bool recording() { return detail::total_depth == 0 || detail::depth == 0; }
// No thread is inside no_grad(): recording() in every thread, known without thread-local storage
// (whose access in a shared library is a call).
inline bool recording_everywhere() { return detail::total_depth == 0; }

// Entered and left in pairs by arenagrad.no_grad() in the calling thread (GIL held, [A6]).
inline void enter_no_grad() {
  ++detail::depth;
  ++detail::total_depth;
}
inline void exit_no_grad() {
  if (detail::depth == 0) return;  // unbalanced exit: nothing of this thread's to undo
  --detail::depth;
  --detail::total_depth;
}

}  // namespace arenagrad::grad_mode

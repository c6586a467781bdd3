// Inlining decisions the compiler's heuristics get wrong where a profile showed it matters:
// FORCE_INLINE for the sweeps' per-node code and the callbacks they pass to for_each_partial
// (each called from every case), and for the Arena's allocate() and add_operand() on the path of
// every operator; NO_INLINE for a sweep whose only caller is large (inlined there, link-time
// optimization spilled the loop's locals to the stack) and for an operator's rare paths.
#pragma once

#if defined(__GNUC__)
#define ARENAGRAD_FORCE_INLINE __attribute__((always_inline))
#define ARENAGRAD_NO_INLINE __attribute__((noinline))
#else
#define ARENAGRAD_FORCE_INLINE
#define ARENAGRAD_NO_INLINE
#endif

#include "grad_mode.hpp"

namespace arenagrad::grad_mode::detail {

int total_depth = 0;
thread_local int depth = 0;

}  // namespace arenagrad::grad_mode::detail

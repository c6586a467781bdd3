// The bare floor of the benchmark (floor.cpp): the graph shapes of arenagrad/bench/graphs.py as
// plain arrays and a minimal reverse sweep, timed in C++. No Python and no engine types here.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace arenagrad_floor {

// ns per node of one backward sweep over a graph of `nodes` nodes, leaves included.
struct Figure {
  std::size_t nodes;
  double median, min, max;
};

// The shape names, in the benchmark's order.
std::vector<std::string> shape_names();

// Builds `shape` at `size` nodes (untimed) and times `repeats` samples of its sweep into `out`.
// Precondition: repeats >= 1. Returns false (and leaves `out`) for an unknown shape.
bool measure(const std::string& shape, std::size_t size, int repeats, Figure& out);

}  // namespace arenagrad_floor

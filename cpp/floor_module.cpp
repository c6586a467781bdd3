// arenagrad._floor: the benchmark's bare floor (floor.cpp) as a module of its own, so that
// `python -m arenagrad bench` prints the engine/floor ratios from an installed wheel, with no
// compiler and no source tree. Independent of the engine: it includes no engine header.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "floor.hpp"

namespace py = pybind11;

namespace {

// {"nodes", "median", "min", "max"} of one shape and size; ValueError for an unknown shape,
// repeats < 1 or a size the 32-bit operand indices cannot hold. The sweeps run without the GIL.
py::dict measure(const std::string& shape, std::uint64_t size, int repeats) {
  if (repeats < 1) throw py::value_error("repeats must be >= 1, got " + std::to_string(repeats));
  if (size > UINT32_MAX) throw py::value_error("size must be < 2**32 nodes");
  arenagrad_floor::Figure figure{};
  bool known;
  {
    py::gil_scoped_release release;
    known = arenagrad_floor::measure(shape, static_cast<std::size_t>(size), repeats, figure);
  }
  if (!known) throw py::value_error("unknown shape '" + shape + "'");
  py::dict out;
  out["nodes"] = figure.nodes;
  out["median"] = figure.median;
  out["min"] = figure.min;
  out["max"] = figure.max;
  return out;
}

const char* compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#elif defined(_MSC_VER)
  return "MSVC " PYBIND11_TOSTRING(_MSC_FULL_VER);
#else
  return "unknown compiler";
#endif
}

}  // namespace

PYBIND11_MODULE(_floor, m) {
  m.doc() = "The benchmark's bare floor: plain-array graphs and a minimal reverse sweep.";
  m.attr("SHAPES") = py::tuple(py::cast(arenagrad_floor::shape_names()));
  m.attr("COMPILER") = compiler();
  m.def("measure", &measure, py::arg("shape"), py::arg("size"), py::arg("repeats"),
        "ns per node of one backward sweep of `shape` built at `size` nodes: a dict with "
        "'nodes', 'median', 'min' and 'max' over `repeats` samples.");
}

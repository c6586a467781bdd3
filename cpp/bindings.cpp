// The _core module: pybind11 for everything that is not a per-scalar op. Value itself is the
// hand-written type of value_type.cpp; here Values cross the boundary as py::handle.
#include <pybind11/pybind11.h>

#include <vector>

#include "arena.hpp"
#include "ops.hpp"
#include "value_type.hpp"

namespace py = pybind11;
using namespace arenagrad;

namespace {

// Reads an iterable of Values and numbers without allocating anything, so that a bad element
// leaves the arena unchanged [A5].
std::vector<Operand> read_operands(const py::iterable& items) {
  std::vector<Operand> operands;
  for (py::handle item : items) {
    if (python::is_value(item.ptr())) {
      operands.push_back(Operand::of(python::id_of(item.ptr())));
      continue;
    }
    double x;
    bool is_int;
    const int read = python::read_number(item.ptr(), x, is_int);
    if (read < 0) throw py::error_already_set();
    if (read == 0)
      throw py::type_error(std::string("expected Values or real numbers, not '") +
                           Py_TYPE(item.ptr())->tp_name + "'");
    operands.push_back(Operand::number(x, is_int));
  }
  return operands;
}

py::object sum_values(const py::iterable& items) {
  std::vector<Operand> operands = read_operands(items);
  Arena& a = arena();
  // Constants become leaves held by `keep` until the Sum node owns them.
  std::vector<NodeId> ids;
  std::vector<py::object> keep;
  for (const Operand& x : operands) {
    if (x.is_constant) {
      keep.push_back(py::reinterpret_steal<py::object>(python::wrap(leaf(a, x.constant))));
      ids.push_back(python::id_of(keep.back().ptr()));
    } else {
      ids.push_back(x.id);
    }
  }
  return py::reinterpret_steal<py::object>(python::wrap(sum(a, ids.data(), ids.size())));
}

py::dict memory_stats() {
  const MemoryStats s = arena().memory_stats();
  py::dict d;
  d["live_nodes"] = s.live_nodes;
  d["capacity"] = s.capacity;
  d["bytes"] = s.bytes;
  d["node_bytes"] = sizeof(Node);
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "arenagrad's C++ engine: the graph-node arena, the operators and the backward pass.";
  if (!python::add_value_type(m.ptr())) throw py::error_already_set();

  m.def("live_nodes", [] { return arena().live_nodes(); },
        "Number of live nodes in the arena (Values and the graph nodes they keep alive).");
  m.def("memory_stats", &memory_stats,
        "Arena figures: live_nodes, capacity (node slots), bytes (storage + scratch), node_bytes.");
  m.def("trim", [] { arena().trim(); },
        "Returns unused trailing arena chunks and scratch buffers to the system.");
  m.def("sum", &sum_values, py::arg("values"),
        "One n-ary node for values[0] + values[1] + ...: the value of Python's sum(values), "
        "each operand getting d/d operand = 1.");
  m.def("_enter_no_grad", [] { ++arena().no_grad_depth; });
  m.def("_exit_no_grad", [] { --arena().no_grad_depth; });
  m.def("_is_grad_enabled", [] { return arena().recording(); });
}

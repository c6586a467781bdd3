// The _core module: pybind11 for everything that is not a per-scalar op. Value itself is the
// hand-written type of value_type.cpp; here Values cross the boundary as py::handle.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "arena.hpp"
#include "grad.hpp"
#include "mlp.hpp"
#include "ops.hpp"
#include "value_type.hpp"

namespace py = pybind11;
using namespace arenagrad;

namespace {

// Reads an iterable of Values and numbers without allocating nodes, so that a bad element
// leaves the arena unchanged [A5]. The Values are appended to `keep`: an iterator's items may
// be temporaries (a generator's `x*x`) whose Nodes must outlive the read.
std::vector<Operand> read_operands(const py::iterable& items, std::vector<py::object>& keep) {
  std::vector<Operand> operands;
  for (py::handle item : items) {
    if (python::is_value(item.ptr())) {
      keep.push_back(py::reinterpret_borrow<py::object>(item));
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
  // `keep` holds every operand (constants become leaves) until the Sum node owns them.
  std::vector<py::object> keep;
  std::vector<Operand> operands = read_operands(items, keep);
  Arena& a = arena();
  std::vector<NodeId> ids;
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

// Nodes for a Network's input: Values as they are, numbers as new constant leaves. Every id
// carries one count taken here, dropped by release_all().
std::vector<NodeId> hold_inputs(const std::vector<Operand>& operands) {
  Arena& a = arena();
  std::vector<NodeId> ids;
  ids.reserve(operands.size());
  for (const Operand& x : operands) {
    const NodeId id = x.is_constant ? leaf(a, x.constant) : x.id;
    a.acquire(id);
    ids.push_back(id);
  }
  return ids;
}

void release_all(const std::vector<NodeId>& ids) {
  for (NodeId id : ids) arena().release(id);
}

// micrograd's input `x`: a list or tuple of floats or Values, a 1-D numpy array, or a single
// Value or number (what a one-neuron Layer returns).
// The Values read are appended to `keep`.
std::vector<Operand> read_input(py::handle x, std::size_t nin, std::vector<py::object>& keep) {
  std::vector<Operand> operands;
  if (python::is_value(x.ptr()) || PyFloat_Check(x.ptr()) || PyLong_Check(x.ptr())) {
    operands = read_operands(py::make_tuple(x), keep);
  } else if (py::isinstance<py::array>(x)) {
    auto array = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!array) throw py::type_error("x must be a numeric numpy array");
    if (array.ndim() != 1)
      throw py::value_error("x must be 1-D, got an array of shape with " +
                            std::to_string(array.ndim()) + " dimensions");
    for (py::ssize_t i = 0; i < array.shape(0); ++i) operands.push_back(Operand::number(array.at(i)));
  } else if (py::isinstance<py::list>(x) || py::isinstance<py::tuple>(x)) {
    operands = read_operands(py::reinterpret_borrow<py::iterable>(x), keep);
  } else {
    throw py::type_error(std::string("x must be a list or tuple of numbers or Values, or a 1-D "
                                     "numpy array, not '") + Py_TYPE(x.ptr())->tp_name + "'");
  }
  if (operands.size() != nin)
    throw py::value_error("expected " + std::to_string(nin) + " inputs, got " +
                          std::to_string(operands.size()));
  return operands;
}

// One sample through the network: a Value when the last layer has one neuron, else a list.
py::object network_call(const Network& net, py::handle x) {
  std::vector<py::object> keep;
  const std::vector<NodeId> inputs = hold_inputs(read_input(x, net.nin(), keep));
  const std::vector<NodeId> outputs = net.forward(inputs);
  py::list values;
  for (NodeId id : outputs) values.append(py::reinterpret_steal<py::object>(python::wrap(id)));
  release_all(outputs);
  release_all(inputs);
  if (outputs.size() == 1) return values[0];
  return std::move(values);
}

std::vector<NodeId> ids_of(const py::sequence& values) {
  std::vector<NodeId> ids;
  for (py::handle v : values) {
    if (!python::is_value(v.ptr()))
      throw py::type_error("parameters must be arenagrad Values");
    ids.push_back(python::id_of(v.ptr()));
  }
  return ids;
}

// layers: a list of (weights: list of per-neuron lists of Values, biases: list of Values, nonlin).
std::unique_ptr<Network> make_network(const py::list& layers) {
  std::vector<DenseLayer> dense;
  for (py::handle item : layers) {
    auto spec = item.cast<py::tuple>();
    DenseLayer layer;
    auto rows = spec[0].cast<py::list>();
    layer.biases = ids_of(spec[1].cast<py::sequence>());
    layer.nonlin = spec[2].cast<bool>();
    layer.nout = rows.size();
    layer.nin = layer.nout ? py::len(rows[0]) : 0;
    for (py::handle row : rows) {
      std::vector<NodeId> w = ids_of(row.cast<py::sequence>());
      if (w.size() != layer.nin) throw py::value_error("ragged weight rows");
      layer.weights.insert(layer.weights.end(), w.begin(), w.end());
    }
    dense.push_back(std::move(layer));
  }
  return std::make_unique<Network>(arena(), std::move(dense));
}

py::array_t<double> network_predict(const Network& net,
                                    py::array_t<double, py::array::c_style | py::array::forcecast> X) {
  if (X.ndim() != 2 || static_cast<std::size_t>(X.shape(1)) != net.nin())
    throw py::value_error("X must have shape (N, " + std::to_string(net.nin()) + ")");
  const std::size_t rows = static_cast<std::size_t>(X.shape(0));
  py::array_t<double> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(net.nout())});
  net.predict(X.data(), rows, out.mutable_data());
  return out;
}

// arenagrad.grad: Values in, Values out (one Value for a Value, a list for an iterable); the
// walk is grad.cpp's. `keep` holds the inputs: a poll during the walk may run Python.
py::object grad_values(py::handle output, py::handle inputs, bool create_graph) {
  if (!python::is_value(output.ptr()))
    throw py::type_error(std::string("grad() output must be an arenagrad Value, not '") +
                         Py_TYPE(output.ptr())->tp_name + "'");
  const bool single = python::is_value(inputs.ptr());
  std::vector<py::object> keep;
  std::vector<NodeId> ids;
  if (!single && !py::isinstance<py::iterable>(inputs))
    throw py::type_error(std::string("grad() inputs must be a Value or an iterable of Values, "
                                     "not '") + Py_TYPE(inputs.ptr())->tp_name + "'");
  const py::iterable items = single ? py::iterable(py::make_tuple(inputs))
                                    : py::reinterpret_borrow<py::iterable>(inputs);
  for (py::handle v : items) {
    if (!python::is_value(v.ptr()))
      throw py::type_error(std::string("grad() inputs must be arenagrad Values, not '") +
                           Py_TYPE(v.ptr())->tp_name + "'");
    keep.push_back(py::reinterpret_borrow<py::object>(v));
    ids.push_back(python::id_of(v.ptr()));
  }
  HeldNodes results = [&] {
    try {
      return grad(arena(), python::id_of(output.ptr()), ids, create_graph);
    } catch (const NotDifferentiable& e) {
      throw py::type_error(e.message);
    } catch (...) {
      python::set_python_error();
      throw py::error_already_set();
    }
  }();
  py::list values;
  for (NodeId id : results.ids()) {
    PyObject* value = python::wrap(id);  // takes its own count; `results` drops ours
    if (!value) throw py::error_already_set();
    values.append(py::reinterpret_steal<py::object>(value));
  }
  if (single) return values[0];
  return std::move(values);
}

py::dict memory_stats() {
  const MemoryStats s = arena().memory_stats();
  py::dict d;
  d["live_nodes"] = s.live_nodes;
  d["capacity"] = s.capacity;
  d["bytes"] = s.bytes;
  d["node_bytes"] = sizeof(Node);
  d["out_of_order_nodes"] = arena().out_of_order_nodes();
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "arenagrad's C++ engine: the graph-node arena, the operators and the backward pass.";
  if (!python::add_value_type(m.ptr())) throw py::error_already_set();

  m.def("live_nodes", [] { return arena().live_nodes(); },
        "Number of live nodes in the arena (Values and the graph nodes they keep alive).");
  m.def("memory_stats", &memory_stats,
        "Arena figures: live_nodes, capacity (node slots), bytes (storage + scratch), node_bytes, "
        "out_of_order_nodes (nodes whose operands were allocated after them; see arena.hpp [A4]).");
  m.def("trim", [] { arena().trim(); },
        "Returns unused trailing arena chunks and scratch buffers to the system.");
  m.def("sum", &sum_values, py::arg("values"),
        "One n-ary node for values[0] + values[1] + ...: the value of Python's sum(values), "
        "each operand getting d/d operand = 1.");
  m.def("grad", &grad_values, py::arg("output"), py::arg("inputs"),
        py::arg("create_graph").noconvert() = false,
        "grad(output, inputs, create_graph=False): d output / d input for each input (a Value, "
        "or an iterable of Values: then a list in the same order), by reverse accumulation from "
        "output. Reads and writes no .grad. Without create_graph the results are leaf Values; "
        "with it, Values whose graphs are made of engine operations, so that grad() or "
        "backward() can differentiate them again (inside no_grad(): leaves, no graph). An input "
        "that output does not reach gets Value(0.0). TypeError for a non-Value, and for a graph "
        "holding a Value built by hand as Value(data, _children, _op) (no engine derivative), "
        "in both modes.");
  m.def("_enter_no_grad", [] { ++arena().no_grad_depth; });
  m.def("_exit_no_grad", [] { --arena().no_grad_depth; });

  py::class_<Network>(m, "Network",
                      "micrograd's Layer stack over parameter Values; forward runs in C++.")
      .def(py::init(&make_network), py::arg("layers"))
      .def("__call__", &network_call, py::arg("x"),
           "Builds one sample's graph, node for node micrograd's; returns a Value or a list.")
      .def("predict", &network_predict, py::arg("X"),
           "Forward over the rows of X (N, nin) with no graph; returns (N, nout).")
      .def_property_readonly("nin", &Network::nin)
      .def_property_readonly("nout", &Network::nout);
  m.def("_is_grad_enabled", [] { return arena().recording(); });
}

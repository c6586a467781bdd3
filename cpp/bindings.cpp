// The _core module: pybind11 for everything that is not a per-scalar op. Value itself is the
// hand-written type of value_type.cpp; here Values cross the boundary as py::handle.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>
#include <vector>

#include "arena.hpp"
#include "backward.hpp"
#include "grad_mode.hpp"
#include "grad.hpp"
#include "grad_python.hpp"
#include "graph_reuse.hpp"
#include "mlp.hpp"
#include "ops.hpp"
#include "python_boundary.hpp"
#include "value_type.hpp"
#include "walk.hpp"

namespace py = pybind11;
using namespace arenagrad;

namespace {

// The handle of `id` (python::wrap), or the Python error it set.
py::object wrap_node(NodeId id) {
  PyObject* value = python::wrap(id);
  if (!value) throw python::PythonError{};
  return py::reinterpret_steal<py::object>(value);
}

// Nodes for operands: Values as they are, numbers as new constant leaves, each held [A1].
void hold_operands(const std::vector<Operand>& operands, HeldNodes& held) {
  Arena& a = arena();
  held.reserve(operands.size());
  for (const Operand& x : operands) held.hold(x.is_constant ? leaf(a, x.constant) : x.id);
}

// Python's sum() adds a leading run of plain numbers its own way before it meets the first
// Value (ints exactly, floats with compensation on CPython 3.12+), then goes on with `+`. That
// run is summed here by Python's own sum() and enters the node as one constant, so that the
// node's value is sum(values)'s, bit for bit; `+` after it is the node's left fold.
Operand python_sum_of_leading_numbers(const python::Items& items, Py_ssize_t count) {
  py::tuple leading(count);
  for (Py_ssize_t i = 0; i < count; ++i) leading[i] = py::reinterpret_borrow<py::object>(items[i]);
  const py::object total = py::module_::import("builtins").attr("sum")(leading);
  double x;
  bool is_int;
  if (python::read_number(total.ptr(), x, is_int) != 1) {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_TypeError, "the sum of the leading numbers is not a real number");
    throw python::PythonError{};
  }
  return Operand::number(x, is_int);
}

py::object sum_values(const py::iterable& values) {
  const python::Items items(values.ptr(), "values must be iterable");  // [P2]
  std::vector<Operand> read = python::read_operands(items);  // every item checked first
  Py_ssize_t leading = 0;
  while (leading < items.size() && !python::is_value(items[leading])) ++leading;
  if (leading >= 2) {  // one number is added as the fold adds it
    read.erase(read.begin(), read.begin() + leading);
    read.insert(read.begin(), python_sum_of_leading_numbers(items, leading));
  }
  HeldNodes operands(arena());  // until the Sum node holds them
  hold_operands(read, operands);
  return wrap_node(sum(arena(), operands.ids().data(), operands.ids().size()));
}

// A numpy array of real numbers: complex input is a TypeError, never silently truncated.
void check_real_array(py::handle x, const char* what) {
  const char kind = py::reinterpret_borrow<py::array>(x).dtype().kind();
  if (kind == 'c')
    throw py::type_error(std::string(what) + " must hold real numbers, not complex");
}

// micrograd's input `x`: a list or tuple of floats or Values, a 1-D numpy array, or a single
// Value or number (what a one-neuron Layer returns). `items` keeps the Values read [P2].
std::vector<Operand> read_input(py::handle x, python::Items& items) {
  std::vector<Operand> operands;
  if (python::is_value(x.ptr()) || PyFloat_Check(x.ptr()) || PyLong_Check(x.ptr())) {
    items = python::Items(py::make_tuple(x).ptr(), "");
    operands = python::read_operands(items);
  } else if (py::isinstance<py::array>(x)) {
    check_real_array(x, "x");
    auto array = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!array) throw py::type_error("x must be a numeric numpy array");
    if (array.ndim() != 1)
      throw py::value_error("x must be 1-D, got an array of shape with " +
                            std::to_string(array.ndim()) + " dimensions");
    for (py::ssize_t i = 0; i < array.shape(0); ++i) operands.push_back(Operand::number(array.at(i)));
  } else if (py::isinstance<py::list>(x) || py::isinstance<py::tuple>(x)) {
    items = python::Items(x.ptr(), "");
    operands = python::read_operands(items);
  } else {
    throw py::type_error(std::string("x must be a list or tuple of numbers or Values, or a 1-D "
                                     "numpy array, not '") + Py_TYPE(x.ptr())->tp_name + "'");
  }
  return operands;
}

// ---- Compiled modules ------------------------------------------------------------------------
// [M1] A CompiledNetwork is a cache of a module's structure, never its state: nn.py builds it
//      from what the module holds and rebuilds it whenever fresh() is false. fresh() checks,
//      before every use, (a) the structure epoch, which nn.Module.__setattr__ advances whenever
//      a `w`, `b`, `nonlin`, `neurons` or `layers` attribute of any module is assigned or
//      deleted, and (b) that every list the network was built from (layers, neurons, each w)
//      still holds the very objects it held. It keeps strong references to those lists and
//      their items, so an object seen at build time cannot be freed and its address reused.

std::vector<NodeId> ids_of(const py::sequence& values) {
  std::vector<NodeId> ids;
  for (py::handle v : values) {
    if (!python::is_value(v.ptr()))
      throw py::type_error("parameters must be arenagrad Values");
    ids.push_back(python::id_of(v.ptr()));
  }
  return ids;
}

std::uint64_t structure_epoch = 1;

struct StaleNetwork {};

class CompiledNetwork {
 public:
  CompiledNetwork() = default;  // never fresh: what a module holds before its first call

  // layers: [[(w, b, nonlin) per neuron] per layer]; watched: the lists/tuples to re-check.
  CompiledNetwork(const py::list& layers, const py::list& watched) : epoch_(structure_epoch) {
    std::vector<DenseLayer> dense;
    for (py::handle neurons : layers) {
      DenseLayer layer;
      for (py::handle neuron : neurons) {
        auto spec = neuron.cast<py::tuple>();
        std::vector<NodeId> w = ids_of(spec[0].cast<py::sequence>());
        if (layer.nout == 0) layer.nin = w.size();
        if (w.size() != layer.nin) throw py::value_error("ragged weight rows");
        layer.weights.insert(layer.weights.end(), w.begin(), w.end());
        layer.biases.push_back(ids_of(py::make_tuple(spec[1]))[0]);
        layer.nonlin.push_back(spec[2].cast<bool>());
        ++layer.nout;
      }
      dense.push_back(std::move(layer));
    }
    for (py::handle seq : watched) {
      if (!PyList_CheckExact(seq.ptr()) && !PyTuple_CheckExact(seq.ptr()))
        throw py::type_error("only lists and tuples can be watched");
      watched_.push_back(py::reinterpret_borrow<py::object>(seq));
      const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
      sizes_.push_back(n);
      for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PySequence_Fast_GET_ITEM(seq.ptr(), i);
        items_.push_back(py::reinterpret_borrow<py::object>(item));
        item_addresses_.push_back(item);
      }
    }
    net_ = std::make_unique<Network>(arena(), std::move(dense));
  }

  bool fresh() const {
    if (!net_ || epoch_ != structure_epoch) return false;
    PyObject* const* expected = item_addresses_.data();
    for (std::size_t s = 0; s < watched_.size(); ++s) {
      PyObject* seq = watched_[s].ptr();
      const Py_ssize_t n = sizes_[s];
      if (PySequence_Fast_GET_SIZE(seq) != n) return false;
      // The addresses compared as bytes: every call of a module reads them all (337 for the
      // demo's MLP), and a loop of pointer compares cost ~5 instructions an item.
      if (n > 0 && std::memcmp(PySequence_Fast_ITEMS(seq), expected,
                                 static_cast<std::size_t>(n) * sizeof(PyObject*)) != 0)
        return false;
      expected += n;
    }
    return true;
  }

  // One sample through the network: a Value when the last layer has one neuron, else a list.
  py::object call(py::handle x) const {
    if (!net_) throw StaleNetwork{};
    python::Items items;
    const std::vector<Operand> operands = read_input(x, items);
    if (!fresh()) throw StaleNetwork{};  // checked after reading x: that can run Python code
    if (operands.size() != net_->nin())
      throw py::value_error("expected " + std::to_string(net_->nin()) + " inputs, got " +
                            std::to_string(operands.size()));
    HeldNodes inputs(arena());
    hold_operands(operands, inputs);
    const HeldNodes outputs(arena(), net_->forward(inputs.ids()));
    py::list values;
    for (NodeId id : outputs.ids()) values.append(wrap_node(id));
    if (outputs.ids().size() == 1) return values[0];
    return std::move(values);
  }

  py::array_t<double> predict(py::handle X_in) const {
    if (!fresh()) throw StaleNetwork{};
    if (py::isinstance<py::array>(X_in)) check_real_array(X_in, "X");
    auto X = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(X_in);
    if (!X) throw py::type_error("X must be a 2-D array of real numbers");
    if (X.ndim() != 2 || static_cast<std::size_t>(X.shape(1)) != net_->nin())
      throw py::value_error("X must have shape (N, " + std::to_string(net_->nin()) + ")");
    const std::size_t rows = static_cast<std::size_t>(X.shape(0));
    py::array_t<double> out(
        {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(net_->nout())});
    net_->predict(X.data(), rows, out.mutable_data());
    return out;
  }

  std::size_t nin() const { return net_ ? net_->nin() : 0; }
  std::size_t nout() const { return net_ ? net_->nout() : 0; }

 private:
  std::unique_ptr<Network> net_;
  std::uint64_t epoch_ = 0;
  std::vector<py::object> watched_;
  std::vector<Py_ssize_t> sizes_;
  std::vector<py::object> items_;  // every watched sequence's items, in order
  std::vector<PyObject*> item_addresses_;  // the same objects' addresses (kept alive by items_)
};

// Test hook: the n-th poll from now runs `fn()` where a signal handler would run [W1]; if it
// raises, the walk stops with that exception. The usual poll comes back after it.
std::size_t poll_countdown = 0;
PyObject* poll_fn = nullptr;  // owned while an injection is pending

bool signal_poll() { return PyErr_CheckSignals() != 0; }

bool injecting_poll() {
  if (--poll_countdown != 0) return signal_poll();
  walk::set_poll_hook(signal_poll);
  PyObject* fn = poll_fn;
  poll_fn = nullptr;
  PyObject* result = PyObject_CallNoArgs(fn);
  Py_DECREF(fn);
  if (!result) return true;
  Py_DECREF(result);
  return signal_poll();
}

void run_in_poll(std::size_t n, py::object fn) {  // n == 0: cancel a pending injection
  Py_CLEAR(poll_fn);
  walk::set_poll_hook(signal_poll);
  if (n == 0) return;
  poll_fn = fn.release().ptr();
  poll_countdown = n;
  walk::set_poll_hook(injecting_poll);
}

py::dict memory_stats() {
  const MemoryStats s = arena().memory_stats();
  py::dict d;
  d["live_nodes"] = s.live_nodes;
  d["capacity"] = s.capacity;
  d["bytes"] = s.bytes + WalkScope::scratch_bytes() + tapes().bytes();
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
  m.def("trim", [] {
          WalkScope walk(arena());  // [W1]: never while a walk reads the chunks or scratch
          arena().trim();
          WalkScope::release_scratch();
        },
        "Returns unused trailing arena chunks and the walks' scratch buffers to the system.");
  m.def("sum", &sum_values, py::arg("values"),
        "One n-ary node for values[0] + values[1] + ...: the value of Python's sum(values), "
        "each operand getting d/d operand = 1.");
  if (!python::add_grad_function(m.ptr())) throw py::error_already_set();
  m.def("_enter_no_grad", &grad_mode::enter_no_grad);
  m.def("_exit_no_grad", &grad_mode::exit_no_grad);

  // The engine's exceptions, for functions bound here (python_boundary.hpp [P1]); StaleNetwork
  // is this file's own.
  python::register_error_translator();
  static py::exception<StaleNetwork> stale(m, "StaleNetwork");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StaleNetwork&) {
      PyErr_SetString(stale.ptr(), "the module's structure changed: rebuild its network");
    }
  });

  // Compiled modules [M1].
  m.def("_structure_changed", [] { ++structure_epoch; },
        "Called by nn.Module when a structural attribute is assigned [M1].");
  m.def("_structure_epoch", [] { return structure_epoch; });
  py::class_<CompiledNetwork>(m, "Network",
                              "A module's forward pass in C++, a cache of its structure [M1].")
      .def(py::init<>())
      .def(py::init<const py::list&, const py::list&>(), py::arg("layers"), py::arg("watched"))
      .def("fresh", &CompiledNetwork::fresh)
      .def("__call__", &CompiledNetwork::call, py::arg("x"),
           "Builds one sample's graph, node for node micrograd's; returns a Value or a list.")
      .def("predict", &CompiledNetwork::predict, py::arg("X"),
           "Forward over the rows of X (N, nin) with no graph; returns (N, nout).")
      .def_property_readonly("nin", &CompiledNetwork::nin)
      .def_property_readonly("nout", &CompiledNetwork::nout);

  // Test hooks: fault injection, walk polling, and the last backward's and grad's routes.
  m.def("_fail_allocation_after", [](std::size_t n) { arena().fail_allocation_after(n); },
        "The n-th node allocation from now raises MemoryError (0: never). For tests.");
  m.def("_run_in_poll", &run_in_poll, py::arg("n"), py::arg("fn") = py::none(),
        "The n-th signal poll of the walks from now calls fn() as a signal handler (n = 0: "
        "cancel). For tests.");
  m.def("_set_poll_interval", [](std::size_t n) {
          if (n == 0 || (n & (n - 1)) != 0) throw py::value_error("n must be a power of two");
          walk::set_interval(n);
        }, py::arg("n"),
        "Walks poll for signals every n nodes (a power of two; default 2**20). For tests.");
  m.def("_last_backward", [] {
    const BackwardReport r = last_backward();
    return py::make_tuple(r.route, r.slots_read);
  }, "(route, slots read) of the last backward(). For tests.");
  m.def("_last_grad_route", &last_grad_route,
        "The route of the last grad() without create_graph: 'scan', 'scan, then topological "
        "order', 'topological order' or 'topological order, hashed'. For tests.");
}

// arenagrad.grad as a vectorcall C function: its fixed cost is a Python call, reading the
// arguments and making the result Values, so that on a small graph it costs what
// `f.backward(); x.grad` costs (through pybind11 it took ~3x the instructions of that, most of
// them in argument conversion and temporary containers).
#include "grad_python.hpp"

#include <array>
#include <cstring>
#include <vector>

#include "arena.hpp"
#include "grad.hpp"
#include "ops.hpp"
#include "python_boundary.hpp"
#include "value_type.hpp"

namespace arenagrad::python {

namespace {

// Room for `count` items, on the stack up to kInline (the common calls: one input, a few).
template <class T>
class SmallBuffer {
 public:
  explicit SmallBuffer(std::size_t count) {
    if (count > kInline) heap_.resize(count);
    data_ = count > kInline ? heap_.data() : inline_.data();
  }
  T* data() { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }

 private:
  static constexpr std::size_t kInline = 16;
  std::array<T, kInline> inline_;
  std::vector<T> heap_;
  T* data_;
};

// The create_graph argument: a bool (numpy's included, as pybind11 took it); no truthiness.
int read_create_graph(PyObject* arg, bool& out) {
  if (!arg) return 0;
  const char* type = Py_TYPE(arg)->tp_name;
  if (PyBool_Check(arg) || !std::strcmp(type, "numpy.bool") || !std::strcmp(type, "numpy.bool_")) {
    const int truth = PyObject_IsTrue(arg);
    if (truth < 0) return -1;
    out = truth == 1;
    return 0;
  }
  PyErr_Format(PyExc_TypeError, "grad() create_graph must be a bool, not '%s'", type);
  return -1;
}

// Python's rules for grad(output, inputs, create_graph=False): positional or keyword, each once.
// Fills `out` (borrowed; create_graph may stay null). Returns false with a TypeError set.
bool read_arguments(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                    PyObject* (&out)[3]) {
  static const char* const kNames[3] = {"output", "inputs", "create_graph"};
  static PyObject* const interned[3] = {PyUnicode_InternFromString(kNames[0]),
                                        PyUnicode_InternFromString(kNames[1]),
                                        PyUnicode_InternFromString(kNames[2])};
  if (nargs > 3) {
    PyErr_Format(PyExc_TypeError,
                 "grad() takes from 2 to 3 positional arguments but %zd were given", nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  const Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < keywords; ++k) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    int at = 0;  // keyword names in a call are interned: compared by identity first
    while (at < 3 && name != interned[at]) ++at;
    if (at == 3) {
      at = 0;
      while (at < 3 && PyUnicode_CompareWithASCIIString(name, kNames[at]) != 0) ++at;
    }
    if (at == 3) {
      PyErr_Format(PyExc_TypeError, "grad() got an unexpected keyword argument '%U'", name);
      return false;
    }
    if (out[at]) {
      PyErr_Format(PyExc_TypeError, "grad() got multiple values for argument '%s'", kNames[at]);
      return false;
    }
    out[at] = args[nargs + k];
  }
  for (int at = 0; at < 2; ++at) {
    if (!out[at]) {
      PyErr_Format(PyExc_TypeError, "grad() missing required argument '%s' (pos %d)",
                   kNames[at], at + 1);
      return false;
    }
  }
  return true;
}

// The handle of the node `node()` gives (a new reference), or nullptr with a Python error set.
template <class MakeNode>
PyObject* handle_of(MakeNode&& node) {
  try {
    return wrap(node());
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

// The results, as grad() returns them: the one Value for a single input, else a list.
// `node_of(i)` is the i-th result's node (it may allocate one, and throw).
template <class NodeOf>
PyObject* results(bool single, std::size_t count, NodeOf&& node_of) {
  if (single) return handle_of([&] { return node_of(0); });
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(count));
  if (!list) return nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    PyObject* value = handle_of([&] { return node_of(i); });
    if (!value) {
      Py_DECREF(list);  // and the Values already in it
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), value);
  }
  return list;
}

PyObject* grad_function(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* arg[3] = {nullptr, nullptr, nullptr};
  if (!read_arguments(args, nargs, kwnames, arg)) return nullptr;
  PyObject* const output = arg[0];
  PyObject* const inputs = arg[1];
  bool create_graph = false;
  if (read_create_graph(arg[2], create_graph) < 0) return nullptr;
  if (!is_value(output)) {
    PyErr_Format(PyExc_TypeError, "grad() output must be an arenagrad Value, not '%s'",
                 Py_TYPE(output)->tp_name);
    return nullptr;
  }
  try {
    // [P2] the items of an iterable are kept until the walk ends: a poll may run Python. The
    // arguments themselves are the caller's for the whole call.
    const bool single = is_value(inputs);
    const Items items = single ? Items() : Items(inputs, "grad() inputs must be a Value or an "
                                                         "iterable of Values, not '%s'");
    const std::size_t count = single ? 1 : static_cast<std::size_t>(items.size());
    SmallBuffer<NodeId> ids(count);
    for (std::size_t i = 0; i < count; ++i) {
      PyObject* item = single ? inputs : items[static_cast<Py_ssize_t>(i)];
      if (!is_value(item)) {
        PyErr_Format(PyExc_TypeError, "grad() inputs must be arenagrad Values, not '%s'",
                     Py_TYPE(item)->tp_name);
        return nullptr;
      }
      ids[i] = id_of(item);
    }
    Arena& a = arena();
    if (grad_builds_graph(create_graph)) {
      const HeldNodes held = grad_graph(a, id_of(output), ids.data(), count);
      return results(single, count, [&](std::size_t i) { return held.ids()[i]; });
    }
    SmallBuffer<double> values(count);
    grad_numbers(a, id_of(output), ids.data(), count, values.data());
    return results(single, count, [&](std::size_t i) { return leaf(a, values[i]); });
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

PyMethodDef grad_def = {
    "grad", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(grad_function)),
    METH_FASTCALL | METH_KEYWORDS,
    "grad(output, inputs, create_graph=False)\n--\n\n"
    "d output / d input for each input (a Value, or an iterable of Values: then a list in the "
    "same order), by reverse accumulation from output. Reads and writes no .grad. Without "
    "create_graph the results are leaf Values; with it, Values whose graphs are made of engine "
    "operations, so that grad() or backward() can differentiate them again (inside no_grad(): "
    "leaves, no graph). An input that output does not reach gets Value(0.0). TypeError for a "
    "non-Value, and for a graph holding a Value built by hand as Value(data, _children, _op) "
    "(no engine derivative), in both modes."};

}  // namespace

bool add_grad_function(PyObject* module) {
  PyObject* name = PyModule_GetNameObject(module);
  if (!name) return false;
  PyObject* function = PyCFunction_NewEx(&grad_def, nullptr, name);
  Py_DECREF(name);
  if (!function) return false;
  if (PyModule_AddObject(module, "grad", function) == 0) return true;  // stolen
  Py_DECREF(function);
  return false;
}

}  // namespace arenagrad::python

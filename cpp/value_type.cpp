// The Value type: its getters and setters, methods, and its creation (PyType_FromSpec).
#include "value_type.hpp"

#include <structmember.h>

#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include "backward.hpp"
#include "graph_reuse.hpp"
#include "ops.hpp"
#include "value_internal.hpp"
#include "walk.hpp"

namespace arenagrad::python {

PyTypeObject* ValueType = nullptr;

namespace {

PyObject* str_data = nullptr;  // interned attribute names: plain setters, no instance state
PyObject* str_grad = nullptr;

template <Op op>
PyObject* unary_method(PyObject* self, PyObject*) {
  try {
    return wrap(unary(arena(), op, id_of(self)));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

// backward(), recompute(), zero_grad(): a walk over self's graph that returns None.
template <void (*walk)(Arena&, NodeId)>
PyObject* graph_method(PyObject* self, PyObject*) {
  try {  // a walk inside a walk (a custom _backward, a signal handler) is NestedWalk [W1]
    walk(arena(), id_of(self));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
  Py_RETURN_NONE;
}

// micrograd's per-node closure for a built-in node: applies its local derivative once.
PyObject* local_backward(PyObject* self, PyObject*) {
  try {
    propagate(arena(), node_of(self));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef local_backward_def = {"_backward", local_backward, METH_NOARGS,
                                  "Applies this node's local derivative once."};

PyMethodDef value_methods[] = {
    {"relu", unary_method<Op::Relu>, METH_NOARGS, "max(0, x), micrograd's ReLU."},
    {"tanh", unary_method<Op::Tanh>, METH_NOARGS, "tanh(x), stable for large |x|."},
    {"exp", unary_method<Op::Exp>, METH_NOARGS, "e**x; OverflowError past ~709.78."},
    {"log", unary_method<Op::Log>, METH_NOARGS, "Natural log; ValueError for x <= 0."},
    {"sigmoid", unary_method<Op::Sigmoid>, METH_NOARGS, "1 / (1 + e**-x), stable."},
    {"backward", graph_method<backward_replayed>, METH_NOARGS,
     "Sets self.grad = 1 and accumulates (+=) d self / d node into every node below it, "
     "in reverse topological order, calling each custom node's _backward once. Iterative."},
    {"recompute", graph_method<recompute>, METH_NOARGS,
     "Re-evaluates every node of this graph from its leaves' current data (same numbers as "
     "rebuilding), by replaying the graph's tape (lowered on the first recompute() or "
     "zero_grad(), kept while self lives; backward() replays it too); allocates no node. "
     "TypeError for a graph with a custom _backward (its forward is unknown)."},
    {"zero_grad", graph_method<zero_grad>, METH_NOARGS,
     "Sets grad = 0 on every node of this graph, itself included (before reusing it)."},
    {nullptr, nullptr, 0, nullptr},
};

// data and grad are plain doubles in the Node; `closure` selects which.
PyObject* get_double(PyObject* self, void* closure) {
  const Node& n = node_of(self);
  return PyFloat_FromDouble(closure ? n.grad : n.data);
}

int set_double(PyObject* self, PyObject* value, void* closure) {
  if (!value) {
    PyErr_SetString(PyExc_TypeError, "cannot delete a Value's data or grad");
    return -1;
  }
  double x;
  bool is_int;
  const int read = read_number(value, x, is_int);
  if (read == 0)
    PyErr_Format(PyExc_TypeError, "%s must be a real number, not '%s'",
                 closure ? "grad" : "data", Py_TYPE(value)->tp_name);
  if (read != 1) return -1;
  Node& n = node_of(self);
  (closure ? n.grad : n.data) = x;
  return 0;
}

PyObject* get_label(PyObject* self, void*) {
  const Annotation* note = annotations().find(id_of(self));
  if (!note) return PyUnicode_FromStringAndSize("", 0);
  return PyUnicode_FromStringAndSize(note->label.data(),
                                     static_cast<Py_ssize_t>(note->label.size()));
}

}  // namespace

int write_label(NodeId id, PyObject* value) {
  if (!value || !PyUnicode_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "label must be a str");
    return -1;
  }
  Py_ssize_t size;
  const char* text = PyUnicode_AsUTF8AndSize(value, &size);  // embedded NULs kept
  if (!text) return -1;
  try {
    if (size > 0 || annotations().find(id))
      annotations().annotate(id).label.assign(text, static_cast<std::size_t>(size));
  } catch (...) {
    set_python_error();
    return -1;
  }
  return 0;
}

namespace {

int set_label(PyObject* self, PyObject* value, void*) { return write_label(id_of(self), value); }

PyObject* get_op(PyObject* self, void*) {
  const NodeId id = id_of(self);
  const Node& n = arena().node(id);
  const Annotation* note = annotations().find(id);
  if (note && !note->op.empty())
    return PyUnicode_FromStringAndSize(note->op.data(), static_cast<Py_ssize_t>(note->op.size()));
  if (n.op == Op::PowConst) {  // micrograd's f'**{k}': '**2', '**-1', '**0.5'
    const Node& k = arena().node(n.operands.pair[1]);
    PyObject* number = (k.flags & flag::kIntConstant) ? PyLong_FromDouble(k.data)
                                                      : PyFloat_FromDouble(k.data);
    if (!number) return nullptr;
    PyObject* name = PyUnicode_FromFormat("**%R", number);
    Py_DECREF(number);
    return name;
  }
  return PyUnicode_FromString(op_name(n.op));
}

PyObject* get_prev(PyObject* self, void*) {
  PyObject* prev = PySet_New(nullptr);
  if (!prev) return nullptr;
  for (NodeId id : visible_operands(node_of(self))) {
    PyObject* operand = wrap(id);
    if (!operand || PySet_Add(prev, operand) < 0) {
      Py_XDECREF(operand);
      Py_DECREF(prev);
      return nullptr;
    }
    Py_DECREF(operand);
  }
  return prev;
}

// `_backward`: the custom closure if one is set, else a callable applying the built-in rule.
PyObject* get_backward(PyObject* self, void*) {
  if (PyObject* fn = as_value(self)->backward) return Py_NewRef(fn);
  return PyCFunction_New(&local_backward_def, self);
}

int set_backward(PyObject* self, PyObject* value, void*) {
  Node& n = node_of(self);
  if (n.op != Op::Custom && n.op != Op::Leaf) {
    PyErr_Format(PyExc_TypeError,
                 "cannot set _backward of a built-in '%s' node (build custom ops with "
                 "Value(data, children, op))", op_name(n.op));
    return -1;
  }
  if (value && !PyCallable_Check(value)) {
    PyErr_Format(PyExc_TypeError, "_backward must be callable, not '%s'", Py_TYPE(value)->tp_name);
    return -1;
  }
  PyValue* v = as_value(self);
  PyObject* old = v->backward;
  v->backward = Py_XNewRef(value);
  if (value && n.op == Op::Custom) n.flags |= flag::kCustomBackward;
  if (!value) n.flags &= static_cast<std::uint8_t>(~flag::kCustomBackward);
  if (value) mark_stateful(self);
  Py_XDECREF(old);
  return 0;
}

PyObject* get_dict(PyObject* self, void*) {
  mark_stateful(self);
  return PyObject_GenericGetDict(self, nullptr);
}

int set_dict(PyObject* self, PyObject* value, void*) {
  mark_stateful(self);
  return PyObject_GenericSetDict(self, value, nullptr);
}

PyGetSetDef value_getset[] = {
    {"data", get_double, set_double, "The forward value (a float).", nullptr},
    {"grad", get_double, set_double, "d root / d self after root.backward() (a float).",
     reinterpret_cast<void*>(1)},
    {"label", get_label, set_label, "A name for graph drawings.", nullptr},
    {"_op", get_op, nullptr, "The op that produced this Value ('' for a leaf).", nullptr},
    {"_prev", get_prev, nullptr, "The set of operand Values.", nullptr},
    {"_backward", get_backward, set_backward,
     "Applies this node's local derivative into its operands' grads; assign a zero-argument "
     "closure to a Value(data, children, op) to define a custom op.", nullptr},
    {"__dict__", get_dict, set_dict, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef value_members[] = {
#if PY_VERSION_HEX < 0x030C0000
    {"__dictoffset__", T_PYSSIZET, offsetof(PyValue, dict), READONLY, nullptr},
#endif
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PyValue, weaklist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyObject* value_repr(PyObject* self) {
  const Node& n = node_of(self);
  PyObject* data = PyFloat_FromDouble(n.data);
  PyObject* grad = PyFloat_FromDouble(n.grad);
  PyObject* repr = data && grad ? PyUnicode_FromFormat("Value(data=%R, grad=%R)", data, grad)
                                : nullptr;
  Py_XDECREF(data);
  Py_XDECREF(grad);
  return repr;
}

// Attribute writes other than data/grad may create the instance dict: the handle then has state.
int value_setattro(PyObject* self, PyObject* name, PyObject* value) {
  if (name == str_data || name == str_grad) return PyObject_GenericSetAttr(self, name, value);
  const int result = PyObject_GenericSetAttr(self, name, value);
  if (result == 0 && value) mark_stateful(self);
  return result;
}

}  // namespace

bool add_value_type(PyObject* module) {
  str_data = PyUnicode_InternFromString("data");
  str_grad = PyUnicode_InternFromString("grad");
  if (!str_data || !str_grad) return false;
  std::vector<PyType_Slot> slots = {
      {Py_tp_doc, const_cast<char*>(
                      "Value(data, _children=(), _op='', label='')\n\n"
                      "A scalar that records how it was computed, micrograd's Value backed by a "
                      "C++ arena.")},
      {Py_tp_repr, reinterpret_cast<void*>(value_repr)},
      {Py_tp_setattro, reinterpret_cast<void*>(value_setattro)},
      {Py_tp_methods, value_methods},
      {Py_tp_getset, value_getset},
      {Py_tp_members, value_members},
  };
  add_number_slots(slots);
  add_lifetime_slots(slots);
  slots.push_back({0, nullptr});
  static std::vector<PyMethodDef> methods;  // value_methods + copy_methods, kept for the type
  PyType_Spec spec{};
  spec.name = "arenagrad.engine.Value";
  spec.basicsize = static_cast<int>(sizeof(PyValue));
  spec.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC
#if PY_VERSION_HEX >= 0x030C0000
               | Py_TPFLAGS_MANAGED_DICT
#endif
      ;
  for (PyMethodDef* m = value_methods; m->ml_name; ++m) methods.push_back(*m);
  for (PyMethodDef* m = copy_methods; m->ml_name; ++m) methods.push_back(*m);
  methods.push_back({nullptr, nullptr, 0, nullptr});
  for (PyType_Slot& s : slots)
    if (s.slot == Py_tp_methods) s.pfunc = methods.data();
  spec.slots = slots.data();
  PyObject* type = PyType_FromSpec(&spec);
  if (!type) return false;
  ValueType = reinterpret_cast<PyTypeObject*>(type);
  install_vectorcall(ValueType);
  install_state_hooks();
  walk::set_poll_hook([] { return PyErr_CheckSignals() != 0; });
  walk::set_wait_hook([] {  // [W1] another thread's walk is running: let it run
    Py_BEGIN_ALLOW_THREADS
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    Py_END_ALLOW_THREADS
  });
  // numpy defers to Value's reflected operators (`np.float64(2) * v`) instead of wrapping v in an
  // object array.
  if (PyObject_SetAttrString(type, "__array_ufunc__", Py_None) < 0) return false;
  Py_INCREF(type);  // ValueType keeps one reference for good
  return PyModule_AddObject(module, "Value", type) == 0;
}

}  // namespace arenagrad::python

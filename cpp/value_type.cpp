#include "value_type.hpp"

#include <structmember.h>

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "backward.hpp"
#include "graph_reuse.hpp"
#include "ops.hpp"
#include "value_internal.hpp"

namespace arenagrad::python {

PyTypeObject* ValueType = nullptr;

namespace {

PyObject* str_data = nullptr;  // interned attribute names: plain setters, no instance state
PyObject* str_grad = nullptr;

PyObject* unary_result(NodeId (*op)(Arena&, Op, NodeId), Op which, NodeId a) {
  try {
    return wrap(op(arena(), which, a));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

template <Op op>
PyObject* unary_method(PyObject* self, PyObject*) {
  return unary_result(unary, op, id_of(self));
}

// backward(), recompute(), zero_grad(): a walk over self's graph that returns None.
template <void (*walk)(Arena&, NodeId)>
PyObject* graph_method(PyObject* self, PyObject*) {
  if (closure_depth() > 0) {
    PyErr_SetString(PyExc_RuntimeError,
                    "backward(), recompute() and zero_grad() cannot run inside a custom "
                    "_backward (the running backward() owns the walk)");
    return nullptr;
  }
  try {
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
    {"backward", graph_method<backward>, METH_NOARGS,
     "Sets self.grad = 1 and accumulates (+=) d self / d node into every node below it, "
     "in reverse topological order, calling each custom node's _backward once. Iterative."},
    {"recompute", graph_method<recompute>, METH_NOARGS,
     "Re-evaluates every node of this graph from its leaves' current data (same numbers as "
     "rebuilding), over a cached topological order; allocates nothing after the first call. "
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
  const Annotation* note = arena().annotation(id_of(self));
  if (!note) return PyUnicode_FromStringAndSize("", 0);
  return PyUnicode_FromStringAndSize(note->label.data(),
                                     static_cast<Py_ssize_t>(note->label.size()));
}

int write_label(NodeId id, PyObject* value) {
  if (!value || !PyUnicode_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "label must be a str");
    return -1;
  }
  Py_ssize_t size;
  const char* text = PyUnicode_AsUTF8AndSize(value, &size);  // embedded NULs kept
  if (!text) return -1;
  try {
    if (size > 0 || arena().annotation(id))
      arena().annotate(id).label.assign(text, static_cast<std::size_t>(size));
  } catch (...) {
    set_python_error();
    return -1;
  }
  return 0;
}

int set_label(PyObject* self, PyObject* value, void*) { return write_label(id_of(self), value); }

PyObject* get_op(PyObject* self, void*) {
  const NodeId id = id_of(self);
  const Node& n = arena().node(id);
  const Annotation* note = arena().annotation(id);
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

#if PY_VERSION_HEX < 0x030C0000
PyMemberDef value_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(PyValue, dict), READONLY, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PyValue, weaklist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};
#endif

// Reads Value(data, _children, _op, label) and records the node, held once for the caller.
bool build(PyObject* args, PyObject* kwargs, NodeId& out) {
  static const char* keywords[] = {"data", "_children", "_op", "label", nullptr};
  PyObject* data;
  PyObject* children = nullptr;
  PyObject* label = nullptr;
  PyObject* op = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OUU:Value", const_cast<char**>(keywords),
                                   &data, &children, &op, &label))
    return false;
  double x;
  bool is_int;
  const int read = read_number(data, x, is_int);
  if (read == 0)
    PyErr_Format(PyExc_TypeError,
                 "Value data must be a real number (int, float, bool or numpy scalar), not '%s'",
                 Py_TYPE(data)->tp_name);
  if (read != 1) return false;
  Py_ssize_t op_size = 0;
  const char* op_text = op ? PyUnicode_AsUTF8AndSize(op, &op_size) : "";
  if (!op_text) return false;
  // `seq` holds the children until the new node does: an iterator's items may be temporaries.
  PyObject* seq = nullptr;
  if (children) {
    seq = PySequence_Fast(children, "_children must be an iterable of Values");
    if (!seq) return false;
  }
  bool ok = true;
  try {
    std::vector<NodeId> ids;
    for (Py_ssize_t i = 0; seq && i < PySequence_Fast_GET_SIZE(seq); ++i) {
      PyObject* child = PySequence_Fast_GET_ITEM(seq, i);
      if (!is_value(child)) {
        PyErr_Format(PyExc_TypeError, "_children must be arenagrad Values, not '%s'",
                     Py_TYPE(child)->tp_name);
        ok = false;
        break;
      }
      ids.push_back(id_of(child));
    }
    if (ok) {
      out = custom(arena(), x, ids.data(), ids.size(),
                   std::string(op_text, static_cast<std::size_t>(op_size)));
      arena().acquire(out);
    }
  } catch (...) {
    set_python_error();
    ok = false;
  }
  Py_XDECREF(seq);
  if (ok && label && write_label(out, label) < 0) {
    arena().release(out);
    ok = false;
  }
  return ok;
}

// Exact Value: the node is built here. A subclass gets a leaf 0.0 here and its node in
// __init__ (Value.__init__), which a subclass's own __init__ calls with super().__init__(data).
PyObject* value_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  NodeId id;
  if (type == ValueType) {
    if (!build(args, kwargs, id)) return nullptr;
  } else {
    try {
      id = leaf(arena(), 0.0);
      arena().acquire(id);
    } catch (...) {
      set_python_error();
      return nullptr;
    }
  }
  PyObject* value = attach_new(type, id);
  arena().release(id);  // the handle's count remains (or, on failure, the node goes)
  return value;
}

// Value.__init__: (re)binds the handle to a node built from the arguments.
int value_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  if (Py_TYPE(self) == ValueType) return 0;  // built by value_new
  NodeId id;
  if (!build(args, kwargs, id)) return -1;
  Arena& a = arena();
  PyValue* v = as_value(self);
  const NodeId old = v->id;
  a.node(id).handle = v;
  v->id = id;  // the count taken by build() is the handle's now
  a.node(old).handle = nullptr;
  a.release(old);
  return 0;
}

// Value(x): the common call, without keyword parsing; anything else through new and init.
PyObject* value_vectorcall(PyObject* type, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (nargs == 1 && !kwnames && type == reinterpret_cast<PyObject*>(ValueType)) {
    double x;
    bool is_int;
    const int read = read_number(args[0], x, is_int);
    if (read == 1) {
      try {
        return attach_new(ValueType, leaf(arena(), x));
      } catch (...) {
        set_python_error();
        return nullptr;
      }
    }
    if (read < 0) return nullptr;
  }
  PyObject* tuple = PyTuple_New(nargs);
  if (!tuple) return nullptr;
  for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
  PyObject* kwargs = nullptr;
  if (kwnames) {
    kwargs = PyDict_New();
    for (Py_ssize_t i = 0; kwargs && i < PyTuple_GET_SIZE(kwnames); ++i)
      if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
        Py_CLEAR(kwargs);
    if (!kwargs) {
      Py_DECREF(tuple);
      return nullptr;
    }
  }
  PyObject* value = PyType_Type.tp_call(type, tuple, kwargs);  // __new__, then __init__
  Py_DECREF(tuple);
  Py_XDECREF(kwargs);
  return value;
}

// The collector found the handle held only by cycles (typically `out` and its closure). If other
// Nodes still hold its Node, it is detached instead of collected [V2]: the finalizer keeps it
// (the collector then spares it and the objects it reaches) before anything is cleared.
void value_finalize(PyObject* self) { detach(self); }

// A handle the finalizer cannot keep (already finalized once, or a subclass with its own
// __del__) must not lose its state while other Nodes hold its Node: its state is then hidden
// from the collector (counted as held from outside) until those Nodes are gone.
int value_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  PyValue* v = as_value(self);
  if (!v->detached && node_of(self).refs > 1 &&
      (PyObject_GC_IsFinalized(self) || Py_TYPE(self)->tp_finalize != value_finalize))
    return 0;
  Py_VISIT(v->backward);
  return visit_dict(self, visit, arg);
}

// Reached only for a handle whose Node nothing else holds (or whose state is hidden, see
// value_traverse): its state goes.
int value_clear(PyObject* self) {
  if (as_value(self)->detached || node_of(self).refs > 1) return 0;
  Py_CLEAR(as_value(self)->backward);
  clear_dict(self);
  return 0;
}

void value_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  PyValue* plain = as_value(self);
  if (type == ValueType && !plain->has_state && !plain->backward && !plain->detached) {
    // The common case, a plain Value with no Python state: nothing to keep, and no recursion
    // guard (freeing a graph is iterative; Python code runs only from stateful handles' state).
#if PY_VERSION_HEX < 0x030C0000
    if (plain->weaklist) PyObject_ClearWeakRefs(self);
#else
    PyObject_ClearWeakRefs(self);
#endif
    const NodeId id = plain->id;
    arena().node(id).handle = nullptr;
    free_plain(self);
    arena().release(id);
    Py_DECREF(type);
    return;
  }
  Py_TRASHCAN_BEGIN(self, value_dealloc)
  PyValue* v = as_value(self);
#if PY_VERSION_HEX < 0x030C0000
  if (v->weaklist) PyObject_ClearWeakRefs(self);
#else
  PyObject_ClearWeakRefs(self);
#endif
  const NodeId id = v->id;
  const bool attached = !v->detached;
  if (attached) {
    stash_on_dealloc(self);
    arena().node(id).handle = nullptr;
  }
  Py_CLEAR(v->backward);
  clear_dict(self);
  type->tp_free(self);
  if (attached) arena().release(id);  // may free a graph, and run Python ([V2] state)
  Py_DECREF(type);
  Py_TRASHCAN_END
}

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

void set_python_error() {
  try {
    throw;
  } catch (const PythonError&) {
    // already set
  } catch (const ArithmeticFault& fault) {
    PyObject* type = fault.kind == ArithmeticFault::Kind::ZeroDivision ? PyExc_ZeroDivisionError
                     : fault.kind == ArithmeticFault::Kind::Overflow   ? PyExc_OverflowError
                                                                       : PyExc_ValueError;
    PyErr_SetString(type, fault.message);
  } catch (const CustomForwardUnknown& custom) {
    const Annotation* note = arena().annotation(custom.id);
    PyErr_Format(PyExc_TypeError,
                 "recompute() cannot re-evaluate the custom op '%s': its forward is Python code "
                 "(only its _backward is known); rebuild the graph instead",
                 note ? note->op.c_str() : "");
  } catch (const Interrupted&) {
    // the poll (PyErr_CheckSignals) has set the Python exception, e.g. KeyboardInterrupt
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyboardInterrupt, "interrupted");
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
}

bool add_value_type(PyObject* module) {
  str_data = PyUnicode_InternFromString("data");
  str_grad = PyUnicode_InternFromString("grad");
  if (!str_data || !str_grad) return false;
  std::vector<PyType_Slot> slots = {
      {Py_tp_doc, const_cast<char*>(
                      "Value(data, _children=(), _op='', label='')\n\n"
                      "A scalar that records how it was computed, micrograd's Value backed by a "
                      "C++ arena.")},
      {Py_tp_new, reinterpret_cast<void*>(value_new)},
      {Py_tp_init, reinterpret_cast<void*>(value_init)},
      {Py_tp_dealloc, reinterpret_cast<void*>(value_dealloc)},
      {Py_tp_traverse, reinterpret_cast<void*>(value_traverse)},
      {Py_tp_clear, reinterpret_cast<void*>(value_clear)},
      {Py_tp_finalize, reinterpret_cast<void*>(value_finalize)},
      {Py_tp_repr, reinterpret_cast<void*>(value_repr)},
      {Py_tp_setattro, reinterpret_cast<void*>(value_setattro)},
      {Py_tp_methods, value_methods},
      {Py_tp_getset, value_getset},
#if PY_VERSION_HEX < 0x030C0000
      {Py_tp_members, value_members},
#endif
  };
  add_number_slots(slots);
  slots.push_back({0, nullptr});
  static std::vector<PyMethodDef> methods;  // value_methods + copy_methods, kept for the type
  PyType_Spec spec{};
  spec.name = "arenagrad.engine.Value";
  spec.basicsize = static_cast<int>(sizeof(PyValue));
  spec.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC
#if PY_VERSION_HEX >= 0x030C0000
               | Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF
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
  ValueType->tp_vectorcall = value_vectorcall;
  install_state_hooks();
  arena().interrupt_poll = [] { return PyErr_CheckSignals() != 0; };
  // numpy defers to Value's reflected operators (`np.float64(2) * v`) instead of wrapping v in an
  // object array.
  if (PyObject_SetAttrString(type, "__array_ufunc__", Py_None) < 0) return false;
  Py_INCREF(type);  // ValueType keeps one reference for good
  return PyModule_AddObject(module, "Value", type) == 0;
}

}  // namespace arenagrad::python

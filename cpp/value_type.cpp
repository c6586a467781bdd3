#include "value_type.hpp"

#include <chrono>
#include <cstring>
#include <thread>
#include <new>
#include <string>
#include <vector>

#include "arena.hpp"
#include "backward.hpp"
#include "graph_reuse.hpp"
#include "ops.hpp"
#include "walk.hpp"

namespace arenagrad::python {

namespace {

Node& node_of(PyObject* obj) { return arena().node(id_of(obj)); }

// numbers.Real, looked up once: numpy registers its scalar types there.
PyObject* real_abc() {
  static PyObject* real = [] {
    PyObject* numbers = PyImport_ImportModule("numbers");
    PyObject* r = numbers ? PyObject_GetAttrString(numbers, "Real") : nullptr;
    Py_XDECREF(numbers);
    return r;
  }();
  return real;
}

// Types already found to be numbers.Real (numpy's scalars), so that the ABC check, which costs
// far more than the op, runs once per type.
constexpr int kKnownRealTypes = 8;
PyTypeObject* known_real_types[kKnownRealTypes] = {};

bool is_known_real(PyTypeObject* type) {
  for (PyTypeObject* t : known_real_types)
    if (t == type) return true;
  return false;
}

void remember_real(PyTypeObject* type) {
  for (PyTypeObject*& t : known_real_types)
    if (!t) {
      Py_INCREF(type);
      t = type;
      return;
    }
}

bool is_numpy_bool(PyTypeObject* type) {
  return std::strcmp(type->tp_name, "numpy.bool") == 0 ||
         std::strcmp(type->tp_name, "numpy.bool_") == 0;
}

// A Value of another engine (micrograd's, arenagrad.reference's): mixing them is a TypeError.
bool is_foreign_value(PyObject* obj) {
  return PyObject_HasAttrString(obj, "_prev") && PyObject_HasAttrString(obj, "data");
}

enum class Read { Ok, NotImplemented, Error };

// An operand of a binary op: a Value, or a real number that becomes a constant.
Read read_operand(PyObject* obj, Operand& out) {
  if (is_value(obj)) {
    out = Operand::of(id_of(obj));
    return Read::Ok;
  }
  double x;
  bool is_int;
  switch (read_number(obj, x, is_int)) {
    case 1: out = Operand::number(x, is_int); return Read::Ok;
    case -1: return Read::Error;
  }
  if (is_foreign_value(obj)) {
    PyErr_Format(PyExc_TypeError, "cannot mix an arenagrad Value with a '%s' from another engine",
                 Py_TYPE(obj)->tp_name);
    return Read::Error;
  }
  return Read::NotImplemented;
}

template <NodeId (*op)(Arena&, Operand, Operand)>
PyObject* binary_slot(PyObject* x, PyObject* y) {
  Operand a, b;
  const Read ra = read_operand(x, a);
  if (ra != Read::Ok) return ra == Read::Error ? nullptr : Py_NewRef(Py_NotImplemented);
  const Read rb = read_operand(y, b);
  if (rb != Read::Ok) return rb == Read::Error ? nullptr : Py_NewRef(Py_NotImplemented);
  try {
    return wrap(op(arena(), a, b));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

// `a ** k` (k a number: micrograd's op), `a ** b` and `2 ** b` (Value exponent).
NodeId power(Arena& arena, Operand a, Operand b) {
  return b.is_constant ? pow_const(arena, a, b) : pow(arena, a, b);
}

PyObject* power_slot(PyObject* x, PyObject* y, PyObject* modulo) {
  if (modulo != Py_None) return Py_NewRef(Py_NotImplemented);
  return binary_slot<power>(x, y);
}

PyObject* negative_slot(PyObject* self) {
  try {
    return wrap(neg(arena(), id_of(self)));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

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
  try {
    walk(arena(), id_of(self));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
  Py_RETURN_NONE;
}

// micrograd's per-node closure: applies this node's local derivative once.
PyObject* local_backward_method(PyObject* self, PyObject*) {
  propagate(arena(), node_of(self));
  Py_RETURN_NONE;
}

PyObject* reduce_method(PyObject* self, PyObject*) {
  const Node& n = node_of(self);
  if (n.op != Op::Leaf) {
    PyErr_SetString(PyExc_TypeError,
                    "only leaf Values pickle (a Value that records a graph does not); "
                    "pickle Value(v.data) or the model's state_dict() instead");
    return nullptr;
  }
  const Annotation* note = arena().annotation(id_of(self));
  return Py_BuildValue("O(d)(ds)", reinterpret_cast<PyObject*>(&ValueType), n.data, n.grad,
                       note ? note->label.c_str() : "");
}

PyObject* setstate_method(PyObject* self, PyObject* state) {
  double grad;
  const char* label;
  if (!PyArg_ParseTuple(state, "ds:__setstate__", &grad, &label)) return nullptr;
  node_of(self).grad = grad;
  if (*label) arena().annotate(id_of(self)).label = label;
  Py_RETURN_NONE;
}

PyMethodDef value_methods[] = {
    {"relu", unary_method<Op::Relu>, METH_NOARGS, "max(0, x), micrograd's ReLU."},
    {"tanh", unary_method<Op::Tanh>, METH_NOARGS, "tanh(x), stable for large |x|."},
    {"exp", unary_method<Op::Exp>, METH_NOARGS, "e**x; OverflowError past ~709.78."},
    {"log", unary_method<Op::Log>, METH_NOARGS, "Natural log; ValueError for x <= 0."},
    {"sigmoid", unary_method<Op::Sigmoid>, METH_NOARGS, "1 / (1 + e**-x), stable."},
    {"backward", graph_method<backward>, METH_NOARGS,
     "Sets self.grad = 1 and accumulates (+=) d self / d node into every node below it, "
     "in reverse topological order. Iterative: any depth."},
    {"recompute", graph_method<recompute>, METH_NOARGS,
     "Re-evaluates every node of this graph from its leaves' current data (same numbers as "
     "rebuilding), over a cached topological order; allocates nothing after the first call."},
    {"zero_grad", graph_method<zero_grad>, METH_NOARGS,
     "Sets grad = 0 on every node of this graph, itself included (before reusing it)."},
    {"_backward", local_backward_method, METH_NOARGS,
     "Applies this node's local derivative once (micrograd's closure)."},
    {"__reduce__", reduce_method, METH_NOARGS, nullptr},
    {"__setstate__", setstate_method, METH_O, nullptr},
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
  return PyUnicode_FromString(note ? note->label.c_str() : "");
}

int set_label(PyObject* self, PyObject* value, void*) {
  if (!value || !PyUnicode_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "label must be a str");
    return -1;
  }
  Py_ssize_t size;
  const char* text = PyUnicode_AsUTF8AndSize(value, &size);
  if (!text) return -1;
  if (size > 0 || arena().annotation(id_of(self)))
    arena().annotate(id_of(self)).label.assign(text, static_cast<std::size_t>(size));
  return 0;
}

PyObject* get_op(PyObject* self, void*) {
  const NodeId id = id_of(self);
  const Node& n = arena().node(id);
  if (n.op == Op::PowConst) {  // micrograd's f'**{k}': '**2', '**-1', '**0.5'
    const Node& k = arena().node(n.operands.pair[1]);
    PyObject* number = (k.flags & flag::kIntConstant) ? PyLong_FromDouble(k.data)
                                                      : PyFloat_FromDouble(k.data);
    if (!number) return nullptr;
    PyObject* name = PyUnicode_FromFormat("**%R", number);
    Py_DECREF(number);
    return name;
  }
  const Annotation* note = arena().annotation(id);
  if (note && !note->op.empty()) return PyUnicode_FromString(note->op.c_str());
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

PyGetSetDef value_getset[] = {
    {"data", get_double, set_double, "The forward value (a float).", nullptr},
    {"grad", get_double, set_double, "d root / d self after root.backward() (a float).",
     reinterpret_cast<void*>(1)},
    {"label", get_label, set_label, "A name for graph drawings.", nullptr},
    {"_op", get_op, nullptr, "The op that produced this Value ('' for a leaf).", nullptr},
    {"_prev", get_prev, nullptr, "The set of operand Values.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyObject* value_new(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"data", "_children", "_op", "label", nullptr};
  PyObject* data;
  PyObject* children = nullptr;
  PyObject* label = nullptr;
  const char* op = "";
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OsU:Value", const_cast<char**>(keywords),
                                   &data, &children, &op, &label))
    return nullptr;
  double x;
  bool is_int;
  const int read = read_number(data, x, is_int);
  if (read == 0)
    PyErr_Format(PyExc_TypeError,
                 "Value data must be a real number (int, float, bool or numpy scalar), not '%s'",
                 Py_TYPE(data)->tp_name);
  if (read != 1) return nullptr;

  // `seq` holds the children until the new node does: an iterator's items may be temporaries.
  std::vector<NodeId> ids;
  PyObject* seq = nullptr;
  if (children) {
    seq = PySequence_Fast(children, "_children must be an iterable of Values");
    if (!seq) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
      PyObject* child = PySequence_Fast_GET_ITEM(seq, i);
      if (!is_value(child)) {
        PyErr_Format(PyExc_TypeError, "_children must be arenagrad Values, not '%s'",
                     Py_TYPE(child)->tp_name);
        Py_DECREF(seq);
        return nullptr;
      }
      ids.push_back(id_of(child));
    }
  }
  PyObject* value;
  try {
    value = wrap(custom(arena(), x, ids.data(), ids.size(), op));
  } catch (...) {
    set_python_error();
    value = nullptr;
  }
  Py_XDECREF(seq);
  if (value && label && set_label(value, label, nullptr) < 0) Py_CLEAR(value);
  return value;
}

// Value(x): the common call, without keyword parsing.
PyObject* value_vectorcall(PyObject* type, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (nargs == 1 && !kwnames) {
    double x;
    bool is_int;
    const int read = read_number(args[0], x, is_int);
    if (read == 1) {
      try {
        return wrap(leaf(arena(), x));
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
  PyObject* value = value_new(reinterpret_cast<PyTypeObject*>(type), tuple, kwargs);
  Py_DECREF(tuple);
  Py_XDECREF(kwargs);
  return value;
}

void value_dealloc(PyObject* self) {
  Arena& a = arena();
  const NodeId id = id_of(self);
  a.node(id).handle = nullptr;
  a.release(id);
  PyObject_Free(self);
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

PyNumberMethods value_as_number = [] {
  PyNumberMethods m{};
  m.nb_add = binary_slot<add>;
  m.nb_subtract = binary_slot<sub>;
  m.nb_multiply = binary_slot<mul>;
  m.nb_true_divide = binary_slot<truediv>;
  m.nb_power = power_slot;
  m.nb_negative = negative_slot;
  return m;
}();

}  // namespace

PyTypeObject ValueType = [] {
  PyTypeObject t{};
  Py_SET_REFCNT(&t, 1);  // what PyVarObject_HEAD_INIT does for a static type
  t.tp_name = "arenagrad.engine.Value";
  t.tp_basicsize = sizeof(PyValue);
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = "Value(data, _children=(), _op='', label='')\n\n"
             "A scalar that records how it was computed, micrograd's Value backed by a C++ arena.";
  t.tp_new = value_new;
  t.tp_vectorcall = value_vectorcall;
  t.tp_dealloc = value_dealloc;
  t.tp_repr = value_repr;
  t.tp_as_number = &value_as_number;
  t.tp_methods = value_methods;
  t.tp_getset = value_getset;
  return t;
}();

PyObject* wrap(NodeId id) {
  Arena& a = arena();
  Node& n = a.node(id);
  if (n.handle) return Py_NewRef(static_cast<PyObject*>(n.handle));
  PyValue* value = PyObject_New(PyValue, &ValueType);
  a.acquire(id);
  if (!value) {
    a.release(id);  // frees a Node that nothing else holds
    return nullptr;
  }
  value->id = id;
  n.handle = value;
  return reinterpret_cast<PyObject*>(value);
}

int read_number(PyObject* obj, double& out, bool& is_int) {
  if (PyFloat_Check(obj)) {
    out = PyFloat_AS_DOUBLE(obj);
    is_int = false;
    return 1;
  }
  if (PyLong_Check(obj)) {
    out = PyLong_AsDouble(obj);
    is_int = true;
    return out == -1.0 && PyErr_Occurred() ? -1 : 1;
  }
  if (is_value(obj) || PyUnicode_Check(obj) || PyComplex_Check(obj)) return 0;
  if (is_numpy_bool(Py_TYPE(obj))) {  // a numpy scalar that numbers.Real does not cover
    const int truth = PyObject_IsTrue(obj);
    out = truth;
    is_int = true;
    return truth < 0 ? -1 : 1;
  }
  if (!is_known_real(Py_TYPE(obj))) {
    PyObject* real = real_abc();
    if (!real) return -1;
    const int is_real = PyObject_IsInstance(obj, real);
    if (is_real <= 0) return is_real;
    remember_real(Py_TYPE(obj));
  }
  out = PyFloat_AsDouble(obj);
  if (out == -1.0 && PyErr_Occurred()) return -1;
  is_int = PyIndex_Check(obj);
  return 1;
}

void set_python_error() {
  try {
    throw;
  } catch (const ArithmeticFault& fault) {
    PyObject* type = fault.kind == ArithmeticFault::Kind::ZeroDivision ? PyExc_ZeroDivisionError
                     : fault.kind == ArithmeticFault::Kind::Overflow   ? PyExc_OverflowError
                                                                       : PyExc_ValueError;
    PyErr_SetString(type, fault.message);
  } catch (const NestedWalk&) {
    PyErr_SetString(PyExc_RuntimeError,
                    "a graph walk (backward, zero_grad, recompute, trim) cannot start inside "
                    "another one in the same thread, e.g. from a signal handler");
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
  if (PyType_Ready(&ValueType) < 0) return false;
  walk::set_poll_hook([] { return PyErr_CheckSignals() != 0; });
  walk::set_wait_hook([] {  // [W1] another thread's walk is running: let it run
    Py_BEGIN_ALLOW_THREADS
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    Py_END_ALLOW_THREADS
  });
  // numpy defers to Value's reflected operators (`np.float64(2) * v`) instead of wrapping v in an
  // object array.
  if (PyDict_SetItemString(ValueType.tp_dict, "__array_ufunc__", Py_None) < 0) return false;
  PyType_Modified(&ValueType);
  Py_INCREF(&ValueType);
  return PyModule_AddObject(module, "Value", reinterpret_cast<PyObject*>(&ValueType)) == 0;
}

}  // namespace arenagrad::python

// Value's construction (Value(...), __init__, the vectorcall fast path) and destruction
// (dealloc, and the collector's finalize/traverse/clear), value_type.hpp [V1] [V2].
#include <string>
#include <vector>

#include "ops.hpp"
#include "value_internal.hpp"

namespace arenagrad::python {

namespace {

// Reads Value(data, _children, _op, label) and records the node, held once for the caller.
bool build(PyObject* args, PyObject* kwargs, NodeId& out) {
  static const char* keywords[] = {"data", "_children", "_op", "label", nullptr};
  PyObject* data;
  PyObject* child_values = nullptr;
  PyObject* label = nullptr;
  PyObject* op = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OUU:Value", const_cast<char**>(keywords),
                                   &data, &child_values, &op, &label))
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
  try {
    // `children` holds them until the new node does [P2]: an iterator's items may be temporaries.
    const Items children =
        child_values ? Items(child_values, "_children must be an iterable of Values") : Items();
    std::vector<NodeId> ids;
    for (Py_ssize_t i = 0; i < children.size(); ++i) {
      if (!is_value(children[i])) {
        PyErr_Format(PyExc_TypeError, "_children must be arenagrad Values, not '%s'",
                     Py_TYPE(children[i])->tp_name);
        return false;
      }
      ids.push_back(id_of(children[i]));
    }
    out = custom(arena(), x, ids.data(), ids.size(),
                 std::string(op_text, static_cast<std::size_t>(op_size)));
    arena().acquire(out);
  } catch (...) {
    set_python_error();
    return false;
  }
  if (label && write_label(out, label) < 0) {
    arena().release(out);
    return false;
  }
  return true;
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
  if (as_value(self)->detached) {  // [V2]: it owns no count to give up
    PyErr_SetString(PyExc_TypeError, "cannot re-initialize a Value inside its own _backward");
    return -1;
  }
  NodeId id;
  if (!build(args, kwargs, id)) return -1;
  Arena& a = arena();
  PyValue* v = as_value(self);
  const NodeId old = v->id;
  Node& n = a.node(id);
  n.handle = v;
  bind(v, id, n);  // the count taken by build() is the handle's now
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

// Weak references die with the handle, even when its Node and state live on ([V2]).
void clear_weakrefs(PyObject* self) {
  if (as_value(self)->weaklist) PyObject_ClearWeakRefs(self);
}

void value_dealloc(PyObject* self);

// tp_dealloc for every handle but a plain Value ([V3]): its state may outlive it ([V2]).
ARENAGRAD_NO_INLINE void dealloc_with_state(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, value_dealloc)
  PyValue* v = as_value(self);
  clear_weakrefs(self);
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

// value_dealloc's two cases that need a call before its end: weak references to clear (their
// callbacks run Python code) and a full free list (one object there is freed to make room).
// Both are dealt with here, out of line, and value_dealloc then runs again on a plain Value
// with neither (no Python code runs in between).
ARENAGRAD_NO_INLINE void make_recyclable(PyObject* self) {
  clear_weakrefs(self);
  make_room_in_free_list();
  value_dealloc(self);
}

void value_dealloc(PyObject* self) {
  PyValue* plain = as_value(self);
  if (Py_TYPE(self) != ValueType || plain->has_state || plain->backward || plain->detached)
    return dealloc_with_state(self);
  if (plain->weaklist || !free_list_has_room()) return make_recyclable(self);
  // The common case, a plain Value with no Python state: nothing to keep, nothing to untrack
  // (the collector never tracks it, [V3]), and no recursion guard (freeing a graph is
  // iterative; Python code runs only from stateful handles' state). Its only calls come last
  // and need nothing kept across them (ValueType is a global), so no register is saved.
  const NodeId id = plain->id;
  Node& n = node_of(self);
  n.handle = nullptr;
  free_plain(self);
  arena().release(id, n);
  Py_DECREF(ValueType);  // the module holds the type too: never its last count
}


}  // namespace

void add_lifetime_slots(std::vector<PyType_Slot>& slots) {
  slots.push_back({Py_tp_new, reinterpret_cast<void*>(value_new)});
  slots.push_back({Py_tp_init, reinterpret_cast<void*>(value_init)});
  slots.push_back({Py_tp_dealloc, reinterpret_cast<void*>(value_dealloc)});
  slots.push_back({Py_tp_traverse, reinterpret_cast<void*>(value_traverse)});
  slots.push_back({Py_tp_clear, reinterpret_cast<void*>(value_clear)});
  slots.push_back({Py_tp_finalize, reinterpret_cast<void*>(value_finalize)});
}

void install_vectorcall(PyTypeObject* type) { type->tp_vectorcall = value_vectorcall; }

}  // namespace arenagrad::python

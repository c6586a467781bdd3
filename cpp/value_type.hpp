// arenagrad.engine.Value: a CPython heap type over the arena. Its number slots, methods and
// getters go straight to the arena (a pybind11 class costs ~10x more per scalar op). It is as
// open as micrograd's class: subclasses, attributes on the type and on instances, weak
// references, a settable `_backward` (custom ops), copies.
//
// Files: value_type.cpp (the type: getters, setters, methods, creation), value_number.cpp (the
// operators), value_lifetime.cpp (construction, destruction), value_state.cpp (Python state that
// outlives a handle, custom backward), value_copy.cpp (copy, deepcopy, pickle); numbers and
// errors cross the boundary through python_boundary.hpp.
#pragma once

#include <Python.h>

#include "node.hpp"

namespace arenagrad::python {

// A Python handle on one Node.
// [V1] An attached handle owns one count on its Node ([A1]) and Node::handle points back to it
//      (borrowed), so a Node has at most one handle and `_prev` returns the very objects that
//      built it.
// [V2] Python state (the `_backward` closure, the instance dict, a subclass type) belongs to the
//      Node: when the handle goes while other Nodes still hold the Node, the state moves to a
//      side table (value_state.cpp) and wrap() puts it back on the next handle. A handle whose
//      only holders are cycles through its own state (the lecture's `out` and its closure) is
//      *detached* by the collector's finalizer instead of dying: it gives up its count and is
//      kept by the side table until the Node is freed (which then clears its state), so the
//      Node's lifetime is its users' and the closure still finds the very `out` it captured.
//      Where the finalizer cannot run (it runs once per object; a subclass may define __del__)
//      tp_traverse hides the state from the collector while other Nodes hold the Node.
//      Weak references follow the Python object: they die with a handle even when its Node and
//      state live on.
// [V3] Plain Values (exact type, no state) are untracked by the collector and recycled through
//      a free list, so a scalar op costs what it cost before the type was opened. A plain
//      Value is never tracked (attach_new() untracks what tp_alloc tracked; only
//      mark_stateful() tracks one, and it sets `has_state`): tp_dealloc skips untracking it.
struct PyValue {
  PyObject_HEAD
  NodeId id;          // set with `node` by bind() only
  bool detached;      // [V2]: no count on `id`, kept by the side table
  bool has_state;     // an instance dict may exist (set on first attribute write / __dict__)
  PyObject* backward;  // the custom `_backward` closure, or nullptr (built-in derivative)
#if PY_VERSION_HEX < 0x030C0000
  PyObject* dict;      // tp_dictoffset (3.12+: Py_TPFLAGS_MANAGED_DICT)
#endif
  // tp_weaklistoffset on every version (not 3.12's managed list): a plain Value's dealloc then
  // tests this field instead of calling PyObject_ClearWeakRefs.
  PyObject* weaklist;
  // &arena().node(id), kept so that the operator and dealloc paths skip the chunk lookup. Valid
  // as long as `id` is: `id` names a live Node at all times ([V1], [V2]: a Node freed under a
  // detached handle is replaced by rehome()), and a live Node never moves (arena.hpp [A3]).
  Node* node;
};

// The one way to (re)name a handle's Node.
inline void bind(PyValue* v, NodeId id, Node& n) {
  v->id = id;
  v->node = &n;
}

extern PyTypeObject* ValueType;

// Exact Values take the pointer compare; subclass instances the subtype check.
// Only heap types can derive from Value, so numbers never reach the MRO walk.
inline bool is_value(PyObject* obj) {
  PyTypeObject* type = Py_TYPE(obj);
  return type == ValueType ||
         ((type->tp_flags & Py_TPFLAGS_HEAPTYPE) && PyType_IsSubtype(type, ValueType));
}
inline NodeId id_of(PyObject* obj) { return reinterpret_cast<PyValue*>(obj)->id; }

// A new reference to the handle of `id`, creating it (or restoring it, [V2]) if the Node has none.
PyObject* wrap(NodeId id);

// Creates the type and adds it to `module` as `Value`. Returns false with a Python error set.
bool add_value_type(PyObject* module);

}  // namespace arenagrad::python

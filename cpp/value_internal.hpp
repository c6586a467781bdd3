// Shared by the value_*.cpp files only (value_type.hpp is the interface to the rest).
#pragma once

#include <cstdlib>
#include <vector>

#include "annotations.hpp"
#include "arena.hpp"
#include "python_boundary.hpp"
#include "value_type.hpp"

namespace arenagrad::python {

inline PyValue* as_value(PyObject* obj) { return reinterpret_cast<PyValue*>(obj); }
inline Node& node_of(PyObject* obj) {
  PyValue* v = as_value(obj);
#ifdef ARENAGRAD_CHECKED  // the sanitizer build: the cached address is the id's (value_type.hpp)
  if (v->node != &arena().node(v->id)) std::abort();
#endif
  return *v->node;
}

// value_number.cpp: the number slots (nb_add, ...), appended to the type's slot list.
void add_number_slots(std::vector<PyType_Slot>& slots);

// value_type.cpp: sets `id`'s label from a str (embedded NULs kept). -1 with a Python error.
int write_label(NodeId id, PyObject* value);

// value_lifetime.cpp: tp_new, tp_init, tp_dealloc, tp_traverse, tp_clear, tp_finalize; and
// Value(x)'s vectorcall fast path.
void add_lifetime_slots(std::vector<PyType_Slot>& slots);
void install_vectorcall(PyTypeObject* type);

// value_state.cpp
// A new handle of `type` (Value or a subclass) attached to `id` ([V1]); nullptr with
// MemoryError set (a Node nothing else holds is then freed).
PyObject* attach_new(PyTypeObject* type, NodeId id);
// attach_new(ValueType, id) for a Node `n` of `id` that has no handle: a plain Value, taken
// from the free list when it holds one.
PyObject* attach_plain(NodeId id, Node& n);
// The free list of plain Value objects, reused by attach_new()/attach_plain(). free_plain()
// keeps a plain Value object (exact type, untracked, no state, weak references cleared) there;
// it needs free_list_has_room(), which make_room_in_free_list() makes.
bool free_list_has_room();
void free_plain(PyObject* self);
void make_room_in_free_list();
// Marks `self` as carrying Python state and lets the garbage collector see it.
void mark_stateful(PyObject* self);
// The instance dict as a new reference (nullptr if none), cleared from the object.
PyObject* take_dict(PyObject* self);
// Gives `self` the instance dict `dict` (borrowed). Returns -1 with a Python error set.
int put_dict(PyObject* self, PyObject* dict);
int visit_dict(PyObject* self, visitproc visit, void* arg);
void clear_dict(PyObject* self);
// tp_dealloc's part: stash the state of a dying attached handle whose Node others hold [V2].
void stash_on_dealloc(PyObject* self);
// tp_finalize's part: detach a handle whose Node others hold [V2]; true if it did.
bool detach(PyObject* self);
// The `_backward` closure that backward() would call for this Node, or nullptr (borrowed).
PyObject* closure_of(const Node& n);
// Installs the Arena's freed-node observer (arena.hpp [A7]) and CustomBackward's call.
void install_state_hooks();

// value_copy.cpp: __copy__, __deepcopy__, __reduce__, __setstate__.
extern PyMethodDef copy_methods[];

}  // namespace arenagrad::python

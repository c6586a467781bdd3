// Python state that outlives a handle (value_type.hpp [V2]), and the custom `_backward` call.
#include <limits>
#include <new>
#include <unordered_map>

#include "graph_reuse.hpp"
#include "ops.hpp"
#include "value_internal.hpp"

namespace arenagrad::python {

namespace {

// What a Node keeps while it has no attached handle: either a detached handle (kept whole, so
// that `_prev` gives back the very object its closure captured), or the state of a handle that
// died: its type, closure and dict. Every pointer is a strong reference.
struct Stash {
  PyObject* handle;
  PyTypeObject* type;
  PyObject* backward;
  PyObject* dict;
};

// Keyed by the Node's address: stable while it is live ([A3]), and all that propagate() has.
// A Node has an entry iff it carries flag::kPythonState.
std::unordered_map<const Node*, Stash>& stashes() {
  static auto* const table = new std::unordered_map<const Node*, Stash>();  // never destroyed
  return *table;
}

bool has_dict(PyObject* self) {
#if PY_VERSION_HEX < 0x030C0000
  return as_value(self)->dict != nullptr;
#else
  return as_value(self)->has_state;
#endif
}

bool has_python_state(PyObject* self) {
  return Py_TYPE(self) != ValueType || as_value(self)->backward || has_dict(self);
}

// A leaf held for good, for rehome() when memory is exhausted.
NodeId tombstone = 0;

// A node freed while a detached handle still has other holders (a closure that leaked `out`):
// the handle gets a leaf of its own with the same numbers, so that it never names a free slot.
void rehome(PyValue* v, const Node& dying) {
  Arena& a = arena();
  v->detached = false;
  try {
    const NodeId id = a.allocate(dying.data);
    Node& n = a.node(id);
    n.grad = dying.grad;
    n.handle = v;
    a.acquire(id);
    bind(v, id, n);
  } catch (const std::bad_alloc&) {
    a.acquire(tombstone);  // shared, never freed: it reads NaN instead of a freed slot
    bind(v, tombstone, a.node(tombstone));
  }
}

// The Node `id` is being freed (from node_freed, arena.hpp [A7]).
void drop_state(NodeId id) {
  Node& n = arena().node(id);
  auto it = stashes().find(&n);
  if (it == stashes().end()) return;
  const Stash s = it->second;
  stashes().erase(it);
  n.flags &= static_cast<std::uint8_t>(~flag::kPythonState);
  if (s.handle) {
    // Detached: its remaining holders are cycles through its own state; break them.
    PyValue* v = as_value(s.handle);
    Py_CLEAR(v->backward);
    clear_dict(s.handle);
    if (Py_REFCNT(s.handle) > 1) rehome(v, n);
    Py_DECREF(s.handle);
  } else {
    Py_XDECREF(s.backward);
    Py_XDECREF(s.dict);
    Py_DECREF(reinterpret_cast<PyObject*>(s.type));
  }
}

// CustomBackward's call: micrograd's `v._backward()` for a custom node.
void call_custom_backward(const Node& n) {
  PyObject* fn = closure_of(n);
  if (!fn) return;
  Py_INCREF(fn);  // the closure may replace itself
  PyObject* result = PyObject_CallNoArgs(fn);
  Py_DECREF(fn);
  if (!result) throw PythonError{};
  Py_DECREF(result);
}

// The Arena's one observer [A7]: what the engine keeps outside the Arena for a dying Node goes.
void node_freed(NodeId id, std::uint8_t flags) {
  if (flags & flag::kAnnotated) annotations().forget(id);
  if (flags & flag::kCachedTape) tapes().forget(id);
  if (flags & flag::kPythonState) drop_state(id);  // may run Python, re-entering free_graph
}

}  // namespace

PyObject* closure_of(const Node& n) {
  if (n.handle) return as_value(static_cast<PyObject*>(n.handle))->backward;
  if (!(n.flags & flag::kPythonState)) return nullptr;
  const Stash& s = stashes().at(&n);
  return s.handle ? as_value(s.handle)->backward : s.backward;
}

void mark_stateful(PyObject* self) {
  as_value(self)->has_state = true;
  if (!PyObject_GC_IsTracked(self)) PyObject_GC_Track(self);
}

PyObject* take_dict(PyObject* self) {
#if PY_VERSION_HEX < 0x030C0000
  PyObject* dict = as_value(self)->dict;
  as_value(self)->dict = nullptr;
  return dict;
#else
  if (!as_value(self)->has_state) return nullptr;
  PyObject* dict = PyObject_GenericGetDict(self, nullptr);
  if (!dict) PyErr_Clear();
  clear_dict(self);
  return dict;
#endif
}

int put_dict(PyObject* self, PyObject* dict) {
  mark_stateful(self);
  return PyObject_GenericSetDict(self, dict, nullptr);
}

int visit_dict(PyObject* self, visitproc visit, void* arg) {
#if PY_VERSION_HEX >= 0x030D0000
  return PyObject_VisitManagedDict(self, visit, arg);
#elif PY_VERSION_HEX >= 0x030C0000
  return _PyObject_VisitManagedDict(self, visit, arg);
#else
  Py_VISIT(as_value(self)->dict);
  return 0;
#endif
}

void clear_dict(PyObject* self) {
#if PY_VERSION_HEX >= 0x030D0000
  PyObject_ClearManagedDict(self);
#elif PY_VERSION_HEX >= 0x030C0000
  _PyObject_ClearManagedDict(self);
#else
  Py_CLEAR(as_value(self)->dict);
#endif
}

namespace {

// Plain Value objects kept for reuse, as CPython keeps floats and lists: a scalar op then costs
// no allocation and no collector bookkeeping. Each is untracked, holds no reference and no state.
constexpr int kFreeListMax = 256;
PyValue* free_list[kFreeListMax];
int free_count = 0;

}  // namespace

bool free_list_has_room() { return free_count < kFreeListMax; }

void free_plain(PyObject* self) { free_list[free_count++] = as_value(self); }

void make_room_in_free_list() {
  if (!free_list_has_room()) PyObject_GC_Del(free_list[--free_count]);
}

namespace {

// Makes `v` the attached handle of `n` (of `id`), with no state: attach_plain's and
// attach_new's common part, before the object's reference count is set.
void attach(PyValue* v, NodeId id, Node& n) {
  bind(v, id, n);
  v->detached = false;
  v->has_state = false;
  ++n.refs;  // [A1]: the handle's count (Arena::acquire)
  n.handle = v;
}

}  // namespace

PyObject* attach_plain(NodeId id, Node& n) {
  if (free_count == 0) return attach_new(ValueType, id);
  PyValue* v = free_list[--free_count];
  attach(v, id, n);
  PyObject* object = reinterpret_cast<PyObject*>(v);
#if PY_VERSION_HEX < 0x030E0000
  // What PyObject_Init does, without setting the type it already has (the list holds plain
  // Values only) and testing the type's flags: as CPython's own free lists do (3.10-3.13 declare
  // _Py_NewReference in cpython/object.h; it keeps tracemalloc's and 3.13's reference tracer's
  // hooks).
  Py_INCREF(ValueType);
  _Py_NewReference(object);  // refcount 1
  return object;
#else
  return PyObject_Init(object, ValueType);  // refcount 1, a count on the type
#endif
}

PyObject* attach_new(PyTypeObject* type, NodeId id) {
  if (type == ValueType && free_count > 0) return attach_plain(id, arena().node(id));
  PyValue* v;
#if PY_VERSION_HEX < 0x030C0000
  if (type == ValueType) {  // no zeroing of a whole object, not tracked
    v = PyObject_GC_New(PyValue, type);
    if (v) {
      v->backward = nullptr;
      v->dict = nullptr;
      v->weaklist = nullptr;
    }
  } else
#endif
  {
    v = reinterpret_cast<PyValue*>(type->tp_alloc(type, 0));  // zeroed, tracked
    if (v && type == ValueType) PyObject_GC_UnTrack(v);  // tracked once it has state
  }
  Arena& a = arena();
  if (!v) {
    if (a.node(id).refs == 0) {  // a new Node that nothing holds
      a.acquire(id);
      a.release(id);
    }
    return nullptr;
  }
  attach(v, id, a.node(id));
  return reinterpret_cast<PyObject*>(v);
}

void stash_on_dealloc(PyObject* self) {
  Node& n = node_of(self);
  if (n.refs <= 1 || !has_python_state(self)) return;
  PyValue* v = as_value(self);
  PyTypeObject* type = Py_TYPE(self);
  try {
    stashes().emplace(&n, Stash{nullptr, type, v->backward, nullptr});
  } catch (const std::bad_alloc&) {
    return;  // no room to keep it: the state goes with the handle
  }
  Py_INCREF(type);
  v->backward = nullptr;  // moved
  stashes().at(&n).dict = take_dict(self);
  n.flags |= flag::kPythonState;
}

bool detach(PyObject* self) {
  PyValue* v = as_value(self);
  if (v->detached) return true;
  Node& n = node_of(self);
  if (n.refs <= 1) return false;
  try {
    stashes().emplace(&n, Stash{self, nullptr, nullptr, nullptr});
  } catch (const std::bad_alloc&) {
    return true;  // keep the cycle alive rather than lose the closure
  }
  Py_INCREF(self);
  n.flags |= flag::kPythonState;
  n.handle = nullptr;
  v->detached = true;
  arena().release(v->id);  // refs > 1: the Node stays, held by its users
  return true;
}

namespace {

// wrap()'s slow path: the Node carries Python state [V2].
PyObject* restore(NodeId id) {
  Arena& a = arena();
  Node& n = a.node(id);
  auto it = stashes().find(&n);
  Stash s = it->second;
  if (s.handle) {  // re-attach the very object
    stashes().erase(it);
    n.flags &= static_cast<std::uint8_t>(~flag::kPythonState);
    PyValue* v = as_value(s.handle);
    v->detached = false;
    a.acquire(id);
    n.handle = v;
    return s.handle;  // the stash's reference
  }
  PyObject* value = attach_new(s.type, id);  // may run the collector: `it` may be stale
  if (!value) return nullptr;  // the stash stays for the next try
  stashes().erase(&n);
  n.flags &= static_cast<std::uint8_t>(~flag::kPythonState);
  as_value(value)->backward = s.backward;
  mark_stateful(value);
  if (s.dict) {
    if (put_dict(value, s.dict) < 0) PyErr_Clear();  // a dict always fits its own slot
    Py_DECREF(s.dict);
  }
  Py_DECREF(reinterpret_cast<PyObject*>(s.type));
  return value;
}

}  // namespace

PyObject* wrap(NodeId id) {
  Node& n = arena().node(id);
  if (n.handle) return Py_NewRef(static_cast<PyObject*>(n.handle));
  if (n.flags & flag::kPythonState) return restore(id);
  return attach_new(ValueType, id);
}

void install_state_hooks() {
  tombstone = arena().allocate_internal(std::numeric_limits<double>::quiet_NaN());
  arena().set_freed_observer(node_freed);
  CustomBackward::install(call_custom_backward);
}

}  // namespace arenagrad::python

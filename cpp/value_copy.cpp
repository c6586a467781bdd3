// copy.copy, copy.deepcopy and pickling of a Value.
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "backward.hpp"
#include "value_internal.hpp"
#include "walk.hpp"

namespace arenagrad::python {

namespace {

// Handles and node counts a copy holds while it works; dropped on every exit.
struct Holds {
  std::vector<NodeId> nodes;
  std::vector<PyObject*> objects;
  ~Holds() {
    for (PyObject* obj : objects) Py_DECREF(obj);
    for (NodeId id : nodes) arena().release(id);
  }
};

// A new Node with `n`'s data, grad, op, annotation and int-constant mark, over `operands`.
NodeId clone_node(const Node& n, NodeId self, const NodeId* operands, std::size_t count,
                  Holds& holds) {
  Arena& a = arena();
  if (holds.nodes.size() == holds.nodes.capacity())  // room first: push_back cannot throw below
    holds.nodes.reserve(2 * holds.nodes.size() + 16);  // geometric: reserve(size + 1) was O(n^2)
  std::unique_ptr<NodeId[]> many = is_nary(n.op) ? Arena::new_operands(count) : nullptr;
  const NodeId id = a.allocate(n.data);  // [A5]: the last allocation before the Node is held
  a.acquire(id);
  holds.nodes.push_back(id);
  Node& c = a.node(id);  // [A3]: stays valid across the allocations below
  c.grad = n.grad;
  c.flags = n.flags & (flag::kIntConstant | flag::kCustomBackward);
  NodeId* slots = c.operands.pair;
  if (n.op != Op::Leaf) {
    if (many) {
      slots = Arena::operand_slots(many);
      a.attach_operands(c, std::move(many));
    }
    c.op = n.op;
    for (std::size_t i = 0; i < count; ++i) {
      slots[i] = operands[i];
      a.add_operand(id, operands[i]);
    }
  }
  if (const Annotation* note = annotations().find(self))  // `id` is held: this may throw
    annotations().annotate(id) = *note;
  return id;
}

// The handle of `id` if it has one or stashed state (restored: value_state.cpp), else nullptr.
PyObject* handle_of(NodeId id, bool& failed) {
  const Node& n = arena().node(id);
  if (!n.handle && !(n.flags & flag::kPythonState)) return nullptr;
  PyObject* h = wrap(id);
  failed = !h;
  return h;
}

// The copy of handle `h` (its type, closure, deep-copied dict) on node `id`, put in `memo`.
PyObject* copy_handle(PyObject* h, NodeId id, PyObject* memo) {
  PyObject* copy = attach_new(Py_TYPE(h), id);
  if (!copy) return nullptr;
  if (PyObject* fn = as_value(h)->backward) {  // micrograd's deepcopy keeps functions as they are
    as_value(copy)->backward = Py_NewRef(fn);
    mark_stateful(copy);
  }
  PyObject* key = PyLong_FromVoidPtr(h);
  bool ok = key && PyDict_SetItem(memo, key, copy) == 0;
  Py_XDECREF(key);
  // As copy._keep_alive: the memo keeps `h`, so that its id names no other object while the
  // memo is in use (`h` may be a handle wrap() just re-created for this copy).
  PyObject* memo_key = ok ? PyLong_FromVoidPtr(memo) : nullptr;
  PyObject* keep = memo_key ? PyDict_GetItemWithError(memo, memo_key) : nullptr;
  if (memo_key && !keep && !PyErr_Occurred()) {
    PyObject* list = PyList_New(0);
    if (list && PyDict_SetItem(memo, memo_key, list) == 0) keep = list;
    Py_XDECREF(list);  // the memo holds it
  }
  ok = keep && PyList_Check(keep) && PyList_Append(keep, h) == 0;
  Py_XDECREF(memo_key);
  if (ok && as_value(h)->has_state) {
    PyObject* dict = PyObject_GenericGetDict(h, nullptr);
    PyObject* copy_module = dict ? PyImport_ImportModule("copy") : nullptr;
    PyObject* dict_copy =
        copy_module ? PyObject_CallMethod(copy_module, "deepcopy", "OO", dict, memo) : nullptr;
    ok = dict_copy && put_dict(copy, dict_copy) == 0;
    Py_XDECREF(dict_copy);
    Py_XDECREF(copy_module);
    Py_XDECREF(dict);
  }
  if (!ok) Py_CLEAR(copy);
  return copy;
}

// The memo's copy of `h`, or nullptr (borrowed).
PyObject* memo_copy(PyObject* memo, PyObject* h) {
  PyObject* key = PyLong_FromVoidPtr(h);
  if (!key) return nullptr;
  PyObject* found = PyDict_GetItemWithError(memo, key);
  Py_DECREF(key);
  return found && is_value(found) ? found : nullptr;
}

// Copies the graph under `root` node by node in topological order (operands first): no
// recursion, any depth. Nodes whose handle the memo already copied are shared, as deepcopy does.
PyObject* deep_copy(NodeId root, PyObject* memo) {
  Arena& a = arena();
  Holds holds;
  std::vector<NodeId> order;
  {
    WalkScope walk(a);  // [W1]; the copying below runs Python code (wrap, the memo): no walk
    topological_order(a, walk, root, order);
  }
  std::unordered_map<NodeId, NodeId> copies;
  std::vector<NodeId> operands;
  for (NodeId id : order) {
    bool failed = false;
    PyObject* h = handle_of(id, failed);
    if (failed) return nullptr;
    if (h) holds.objects.push_back(h);
    if (h) {
      PyObject* known = memo_copy(memo, h);
      if (!known && PyErr_Occurred()) return nullptr;
      if (known) {
        copies[id] = id_of(known);
        continue;
      }
    }
    const Node& n = a.node(id);
    operands.clear();
    for (NodeId o : visible_operands(n)) operands.push_back(copies.at(o));
    if (n.op == Op::PowConst) {  // the hidden exponent constant is the node's own
      const NodeId k = n.operands.pair[1];
      operands.push_back(clone_node(a.node(k), k, nullptr, 0, holds));
    }
    const NodeId copy = clone_node(a.node(id), id, operands.data(), operands.size(), holds);
    copies[id] = copy;
    if (h) {
      PyObject* hc = copy_handle(h, copy, memo);
      if (!hc) return nullptr;
      holds.objects.push_back(hc);
    }
  }
  return wrap(copies.at(root));
}

PyObject* deepcopy_method(PyObject* self, PyObject* memo) {
  if (!PyDict_Check(memo)) {
    PyErr_SetString(PyExc_TypeError, "__deepcopy__ expects the memo dict");
    return nullptr;
  }
  try {
    return deep_copy(id_of(self), memo);
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

// copy.copy: a leaf with the same data, grad and label (and a shallow copy of the attributes).
PyObject* copy_method(PyObject* self, PyObject*) {
  PyObject* copy;
  try {
    Arena& a = arena();
    const Node& n = node_of(self);
    Holds holds;  // the new leaf until its handle holds it
    const NodeId id = a.allocate(n.data);
    a.acquire(id);
    holds.nodes.push_back(id);
    a.node(id).grad = n.grad;
    const Annotation* note = annotations().find(id_of(self));
    if (note && !note->label.empty()) annotations().annotate(id).label = note->label;
    copy = attach_new(Py_TYPE(self), id);
  } catch (...) {
    set_python_error();
    return nullptr;
  }
  if (copy && as_value(self)->has_state) {
    PyObject* dict = PyObject_GenericGetDict(self, nullptr);
    PyObject* dict_copy = dict ? PyDict_Copy(dict) : nullptr;
    if (!dict_copy || put_dict(copy, dict_copy) < 0) Py_CLEAR(copy);
    Py_XDECREF(dict_copy);
    Py_XDECREF(dict);
  }
  return copy;
}

PyObject* text(const std::string& s) {
  return PyUnicode_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

// Leaves pickle as (type, data) + state (grad, label, _op[, attributes[, data]]). A subclass is
// rebuilt through copyreg.__newobj__ (no __init__ call), its data carried in the state.
PyObject* reduce_method(PyObject* self, PyObject*) {
  const Node& n = node_of(self);
  if (n.op != Op::Leaf) {
    PyErr_SetString(PyExc_TypeError,
                    "only leaf Values pickle (a Value that records a graph does not); "
                    "pickle Value(v.data) or the model's state_dict() instead");
    return nullptr;
  }
  const Annotation* note = annotations().find(id_of(self));
  static const std::string empty;
  PyObject* label = text(note ? note->label : empty);
  PyObject* op = text(note ? note->op : empty);
  PyObject* dict = as_value(self)->has_state ? PyObject_GenericGetDict(self, nullptr)
                                             : Py_NewRef(Py_None);
  PyObject* result = nullptr;
  if (label && op && dict) {
    PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(self));
    if (Py_TYPE(self) == ValueType) {
      result = Py_BuildValue("O(d)(dOOO)", type, n.data, n.grad, label, op, dict);
    } else {
      PyObject* copyreg = PyImport_ImportModule("copyreg");
      PyObject* newobj = copyreg ? PyObject_GetAttrString(copyreg, "__newobj__") : nullptr;
      if (newobj)
        result = Py_BuildValue("O(O)(dOOOd)", newobj, type, n.grad, label, op, dict, n.data);
      Py_XDECREF(newobj);
      Py_XDECREF(copyreg);
    }
  }
  Py_XDECREF(label);
  Py_XDECREF(op);
  Py_XDECREF(dict);
  return result;
}

PyObject* setstate_method(PyObject* self, PyObject* state) {
  double grad;
  double data = 0.0;
  PyObject* label;
  PyObject* op = nullptr;
  PyObject* dict = Py_None;
  if (!PyArg_ParseTuple(state, "dU|UOd:__setstate__", &grad, &label, &op, &dict, &data))
    return nullptr;
  Py_ssize_t label_size, op_size = 0;
  const char* label_text = PyUnicode_AsUTF8AndSize(label, &label_size);
  const char* op_text = op ? PyUnicode_AsUTF8AndSize(op, &op_size) : "";
  if (!label_text || !op_text) return nullptr;
  if (dict != Py_None && put_dict(self, dict) < 0) return nullptr;
  const NodeId id = id_of(self);
  try {
    if (label_size > 0) annotations().annotate(id).label.assign(label_text, label_size);
    if (op_size > 0 && arena().node(id).op == Op::Leaf)
      annotations().annotate(id).op.assign(op_text, op_size);
  } catch (...) {
    set_python_error();
    return nullptr;
  }
  Node& n = arena().node(id);
  n.grad = grad;
  if (PyTuple_GET_SIZE(state) >= 5) n.data = data;
  Py_RETURN_NONE;
}

}  // namespace

PyMethodDef copy_methods[] = {
    {"__copy__", copy_method, METH_NOARGS, "A leaf with the same data, grad and label."},
    {"__deepcopy__", deepcopy_method, METH_O,
     "A copy of the whole graph (new nodes); custom nodes keep their _backward closure."},
    {"__reduce__", reduce_method, METH_NOARGS, nullptr},
    {"__setstate__", setstate_method, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace arenagrad::python

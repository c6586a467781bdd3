// arenagrad.engine.Value: a hand-written CPython type over the arena. Its number slots, methods
// and getters go straight to the arena (a pybind11 class costs ~10x more per scalar op).
#pragma once

#include <Python.h>

#include "node.hpp"

namespace arenagrad::python {

// A Python handle on one Node. It owns one count on it ([A1]), and the Node points back to it
// through Node::handle (borrowed), so a Node has at most one handle and `_prev` returns the very
// objects that built it.
struct PyValue {
  PyObject_HEAD
  NodeId id;
};

extern PyTypeObject ValueType;

inline bool is_value(PyObject* obj) { return Py_TYPE(obj) == &ValueType; }
inline NodeId id_of(PyObject* obj) { return reinterpret_cast<PyValue*>(obj)->id; }

// A new reference to the handle of `id`, creating it if the Node has none.
PyObject* wrap(NodeId id);

// Reads a real number (int, float, bool, numpy scalar). Returns 1 and sets `out` on success;
// 0 with no Python error set if `obj` is no real number; -1 with a Python error set.
int read_number(PyObject* obj, double& out, bool& is_int);

// Readies the type and adds it to `module` as `Value`. Returns false with a Python error set.
bool add_value_type(PyObject* module);

// Inside a catch block: turns the exception in flight into the matching Python exception
// (ArithmeticFault -> ZeroDivisionError/OverflowError/ValueError, bad_alloc -> MemoryError).
void set_python_error();

}  // namespace arenagrad::python

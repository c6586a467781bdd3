// The boundary between Python and the engine, one for the Value type (value_*.cpp) and the
// pybind11 bindings (bindings.cpp) alike: reading numbers and operands, holding the temporaries
// they name, and turning the engine's errors into Python exceptions.
//
// [P1] Errors. The engine throws plain structs, not std::exception (ArithmeticFault, NestedWalk,
//      Interrupted, CustomForwardUnknown, NotDifferentiable), std::bad_alloc, and PythonError
//      when a Python exception is already set. One mapping turns them into Python exceptions:
//      set_python_error() in the Value type's C slots, and the same function registered as
//      pybind11's translator, so that bound functions throw and let it map.
// [P2] Temporaries. A Value read from an iterable may be a temporary (a generator's `x*x`) whose
//      Node lives only while its handle does. Items keeps every item of the iterable (in a
//      sequence it owns) until it dies, so that the Nodes read from it outlive the op using them.
// [P3] Operands. A Value is read as its Node, a real number (int, float, bool, numpy scalar) as
//      a constant; a Value of another engine (micrograd's, arenagrad.reference's) is a TypeError
//      everywhere (README "What is stricter or more"); anything else is NotImplemented for an
//      operator and a TypeError for an element of an iterable.
#pragma once

#include <Python.h>

#include <vector>

#include "ops.hpp"
#include "value_type.hpp"

namespace arenagrad::python {

// Thrown through C++ frames when a Python exception is already set (a custom `_backward`
// inside backward(), a failed conversion); the mapping [P1] leaves it as it is.
struct PythonError {};

// Reads a real number. Returns 1 and sets `out` on success; 0 with no Python error set if `obj`
// is no real number; -1 with a Python error set.
int read_number(PyObject* obj, double& out, bool& is_int);

// An operand of an operator [P3]: Ok, NotANumber (no error set: the slot returns
// NotImplemented), or Error (a Python error set).
enum class Read { Ok, NotANumber, Error };
Read read_other_operand(PyObject* obj, Operand& out);  // neither a Value nor a float
// Inline: every operator reads two operands, most often Values and floats.
inline Read read_operand(PyObject* obj, Operand& out) {
  if (is_value(obj)) {
    out = Operand::of(id_of(obj));
    return Read::Ok;
  }
  if (PyFloat_CheckExact(obj)) {
    out = Operand::number(PyFloat_AS_DOUBLE(obj));
    return Read::Ok;
  }
  return read_other_operand(obj, out);
}

// [P2] The items of an iterable, kept alive while this object lives.
class Items {
 public:
  Items() = default;  // no items
  // Throws PythonError when `iterable` cannot be iterated: a TypeError whose message is the
  // format `not_iterable`, its one %s (if any) the iterable's type name.
  Items(PyObject* iterable, const char* not_iterable);
  Items(Items&& other) noexcept : seq_(other.seq_) { other.seq_ = nullptr; }
  Items& operator=(Items&& other) noexcept;
  Items(const Items&) = delete;
  Items& operator=(const Items&) = delete;
  ~Items() { Py_XDECREF(seq_); }

  Py_ssize_t size() const { return seq_ ? PyTuple_GET_SIZE(seq_) : 0; }
  PyObject* operator[](Py_ssize_t i) const { return PyTuple_GET_ITEM(seq_, i); }  // borrowed

 private:
  PyObject* seq_ = nullptr;  // a tuple of the items, owned
};

// Every item as an operand [P3], none allocated (a bad item leaves the arena unchanged, [A5]).
// Throws PythonError: TypeError for an item that is neither a Value nor a real number.
std::vector<Operand> read_operands(const Items& items);

// Inside a catch block: sets the Python exception for the exception in flight [P1]
// (ArithmeticFault -> ZeroDivisionError/OverflowError/ValueError, bad_alloc -> MemoryError, ...).
void set_python_error();

// Registers [P1]'s mapping as a pybind11 exception translator (for the engine's error types;
// pybind11's own, and std::exception, are left to pybind11).
void register_error_translator();

}  // namespace arenagrad::python

#include "python_boundary.hpp"

#include <pybind11/pybind11.h>

#include <cstring>
#include <exception>
#include <new>

#include "annotations.hpp"
#include "grad.hpp"
#include "graph_reuse.hpp"
#include "walk.hpp"

namespace arenagrad::python {

namespace {

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

// Types already found to be real numbers other than float and int (numpy's scalars): their
// objects skip the checks (subtype walks, name compares, the ABC) that cost far more than the op.
struct KnownReal {
  PyTypeObject* type;
  bool is_float;  // a float subclass (numpy.float64): its value is read as a float's
};
constexpr int kKnownRealTypes = 8;
KnownReal known_real_types[kKnownRealTypes] = {};

const KnownReal* known_real(PyTypeObject* type) {
  for (const KnownReal& known : known_real_types)
    if (known.type == type) return &known;
  return nullptr;
}

void remember_real(PyTypeObject* type, bool is_float) {
  for (KnownReal& known : known_real_types)
    if (!known.type) {
      Py_INCREF(type);
      known = {type, is_float};
      return;
    }
}

// A float or a float subclass (numpy.float64): its value as a float's, never its __float__.
int read_float(PyObject* obj, double& out, bool& is_int) {
  out = PyFloat_AS_DOUBLE(obj);
  is_int = false;
  return 1;
}

// A real number that is not a float: its __float__, and whether it is an int (__index__).
int read_real(PyObject* obj, double& out, bool& is_int) {
  out = PyFloat_AsDouble(obj);
  if (out == -1.0 && PyErr_Occurred()) return -1;
  is_int = PyIndex_Check(obj);
  return 1;
}

bool is_numpy_bool(PyTypeObject* type) {
  return std::strcmp(type->tp_name, "numpy.bool") == 0 ||
         std::strcmp(type->tp_name, "numpy.bool_") == 0;
}

// A Value of another engine [P3]: it has micrograd's `_prev` and `data`.
bool is_foreign_value(PyObject* obj) {
  return PyObject_HasAttrString(obj, "_prev") && PyObject_HasAttrString(obj, "data");
}

[[noreturn]] void throw_type_error(const char* format, PyObject* obj) {
  PyErr_Format(PyExc_TypeError, format, Py_TYPE(obj)->tp_name);
  throw PythonError{};
}

// [P1] Sets the Python exception for an engine error and returns true; returns false, setting
// nothing, for any other exception.
bool set_engine_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const PythonError&) {
    // already set
  } catch (const ArithmeticFault& fault) {
    PyObject* type = fault.kind == ArithmeticFault::Kind::ZeroDivision ? PyExc_ZeroDivisionError
                     : fault.kind == ArithmeticFault::Kind::Overflow   ? PyExc_OverflowError
                                                                       : PyExc_ValueError;
    PyErr_SetString(type, fault.message);
  } catch (const NestedWalk&) {
    PyErr_SetString(PyExc_RuntimeError,
                    "a graph walk (backward, zero_grad, recompute, trim, deepcopy) cannot start "
                    "inside another one in the same thread, e.g. from a signal handler or a "
                    "custom _backward");
  } catch (const CustomForwardUnknown& custom) {
    PyErr_Format(PyExc_TypeError,
                 "recompute() cannot re-evaluate the custom op '%s': its forward is Python code "
                 "(only its _backward is known); rebuild the graph instead",
                 annotations().op_text(custom.id).c_str());
  } catch (const NotDifferentiable& e) {
    PyErr_SetString(PyExc_TypeError, e.message.c_str());
  } catch (const Interrupted&) {
    // the poll (PyErr_CheckSignals) has set the Python exception, e.g. KeyboardInterrupt
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyboardInterrupt, "interrupted");
  } catch (...) {
    return false;
  }
  return true;
}

}  // namespace

int read_number(PyObject* obj, double& out, bool& is_int) {
  PyTypeObject* const type = Py_TYPE(obj);
  if (type == &PyFloat_Type) return read_float(obj, out, is_int);
  if (PyLong_Check(obj)) {
    out = PyLong_AsDouble(obj);
    is_int = true;
    return out == -1.0 && PyErr_Occurred() ? -1 : 1;
  }
  if (const KnownReal* known = known_real(type))
    return known->is_float ? read_float(obj, out, is_int) : read_real(obj, out, is_int);
  if (PyFloat_Check(obj)) {
    remember_real(type, true);
    return read_float(obj, out, is_int);
  }
  if (is_value(obj) || PyUnicode_Check(obj) || PyComplex_Check(obj)) return 0;
  if (is_numpy_bool(type)) {  // a numpy scalar that numbers.Real does not cover
    const int truth = PyObject_IsTrue(obj);
    out = truth;
    is_int = true;
    return truth < 0 ? -1 : 1;
  }
  PyObject* real = real_abc();
  if (!real) return -1;
  const int is_real = PyObject_IsInstance(obj, real);
  if (is_real <= 0) return is_real;
  remember_real(type, false);
  return read_real(obj, out, is_int);
}

Read read_other_operand(PyObject* obj, Operand& out) {
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
  return Read::NotANumber;
}

Items::Items(PyObject* iterable, const char* not_iterable) {
  // A tuple, never a list: reading a number may run Python code (numbers.Real's __float__)
  // that could change a list while it is read.
  PyObject* source = nullptr;
  if (PyTuple_CheckExact(iterable) || PyList_CheckExact(iterable)) {
    source = Py_NewRef(iterable);
  } else if (!(source = PyObject_GetIter(iterable))) {
    if (PyErr_ExceptionMatches(PyExc_TypeError))
      PyErr_Format(PyExc_TypeError, not_iterable, Py_TYPE(iterable)->tp_name);
    throw PythonError{};
  }
  seq_ = PySequence_Tuple(source);
  Py_DECREF(source);
  if (!seq_) throw PythonError{};
}

Items& Items::operator=(Items&& other) noexcept {
  if (this != &other) {
    Py_XDECREF(seq_);
    seq_ = other.seq_;
    other.seq_ = nullptr;
  }
  return *this;
}

std::vector<Operand> read_operands(const Items& items) {
  std::vector<Operand> operands;
  operands.reserve(static_cast<std::size_t>(items.size()));
  for (Py_ssize_t i = 0; i < items.size(); ++i) {
    Operand x;
    switch (read_operand(items[i], x)) {
      case Read::Ok: operands.push_back(x); break;
      case Read::Error: throw PythonError{};
      case Read::NotANumber:
        throw_type_error("expected Values or real numbers, not '%s'", items[i]);
    }
  }
  return operands;
}

void set_python_error() {
  if (set_engine_error(std::current_exception())) return;
  try {
    throw;
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

void register_error_translator() {
  pybind11::register_exception_translator([](std::exception_ptr error) {
    if (error && !set_engine_error(error)) std::rethrow_exception(error);
  });
}

}  // namespace arenagrad::python

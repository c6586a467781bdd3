// Value's number slots (+ - * / ** and unary -), over python_boundary.hpp's operands [P3]. Every
// operator returns a plain Value, as micrograd's do, whatever the operands' types.
#include <cmath>

#include "ops.hpp"
#include "value_internal.hpp"

namespace arenagrad::python {

namespace {

// `x + y` and `x * y` of two Values of the exact type (the lecture's `acc + w*x`), when the
// Arena has a slot at hand and ops record in every thread: the Node add()/mul() record (same
// value, same operands, in the same order), each Node looked up once, and a plain Value for it.
// Its only calls are at its end (attach_plain's, or attach_new when no handle is free for
// reuse), so that it saves few registers. Other cases take operands_slot().
template <Op kOp>
ARENAGRAD_FORCE_INLINE inline PyObject* two_values(Arena& a, PyObject* x, PyObject* y) {
  const NodeId ix = id_of(x), iy = id_of(y);
  Node& nx = node_of(x);
  Node& ny = node_of(y);
  const double value = kOp == Op::Add ? nx.data + ny.data : nx.data * ny.data;
  Node* made;
  const NodeId id = a.allocate_at_hand(value, made);
  made->op = kOp;
  link_binary(a, id, *made, ix, nx, iy, ny);
  return attach_plain(id, *made);
}

template <NodeId (*op)(Arena&, Operand, Operand)>
ARENAGRAD_NO_INLINE PyObject* operands_slot(PyObject* x, PyObject* y) {
  Operand a, b;
  const Read ra = read_operand(x, a);
  if (ra != Read::Ok) return ra == Read::Error ? nullptr : Py_NewRef(Py_NotImplemented);
  const Read rb = read_operand(y, b);
  if (rb != Read::Ok) return rb == Read::Error ? nullptr : Py_NewRef(Py_NotImplemented);
  try {
    return attach_new(ValueType, op(arena(), a, b));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

// An operator slot: two Values of the exact type take two_values() for + and *, inline, when
// its conditions hold; everything else takes operands_slot(), out of line (inlined here, the
// registers it uses were saved on every call).
template <NodeId (*op)(Arena&, Operand, Operand), Op kFast = Op::Leaf>
PyObject* binary_slot(PyObject* x, PyObject* y) {
  Arena& a = arena();
  if (kFast != Op::Leaf && Py_TYPE(x) == ValueType && Py_TYPE(y) == ValueType &&
      a.has_slot_at_hand() && grad_mode::recording_everywhere())
    return two_values<kFast>(a, x, y);
  return operands_slot<op>(x, y);
}

// `a ** k` (k a number: micrograd's op), `a ** b` and `2 ** b` (Value exponent).
NodeId power(Arena& arena, Operand a, Operand b) {
  return b.is_constant ? pow_const(arena, a, b) : pow(arena, a, b);
}

// `a ** k` for an int k beyond 2**53, which a double does not hold: Python's derivative uses
// float(k - 1) of the exact int, and `_op` spells k exactly. The hidden constant keeps both
// (ops.hpp's PowConst reads k-1 from its grad field).
int make_big_exponent_exact(PyObject* result, PyObject* k) {
  Node& out = node_of(result);
  if (out.op != Op::PowConst) return 0;  // no_grad(): a plain leaf
  PyObject* one = PyLong_FromLong(1);
  PyObject* km1 = one ? PyNumber_Subtract(k, one) : nullptr;
  Py_XDECREF(one);
  const double k_minus_1 = km1 ? PyLong_AsDouble(km1) : -1.0;
  Py_XDECREF(km1);
  if (k_minus_1 == -1.0 && PyErr_Occurred()) return -1;
  PyObject* name = PyUnicode_FromFormat("**%R", k);
  if (!name) return -1;
  Py_ssize_t size;
  const char* text = PyUnicode_AsUTF8AndSize(name, &size);
  try {
    if (text) annotations().annotate(id_of(result)).op.assign(text, static_cast<std::size_t>(size));
  } catch (...) {
    set_python_error();
    text = nullptr;
  }
  Py_DECREF(name);
  if (!text) return -1;
  arena().node(out.operands.pair[1]).grad = k_minus_1;
  return 0;
}

PyObject* power_slot(PyObject* x, PyObject* y, PyObject* modulo) {
  if (modulo != Py_None) return Py_NewRef(Py_NotImplemented);
  PyObject* result = binary_slot<power>(x, y);
  if (result && PyLong_Check(y) && is_value(x)) {
    const double k = PyLong_AsDouble(y);  // already read once: cannot fail here
    if (std::fabs(k) >= 9007199254740992.0 && make_big_exponent_exact(result, y) < 0)
      Py_CLEAR(result);
  }
  return result;
}

PyObject* negative_slot(PyObject* self) {
  try {
    return attach_new(ValueType, neg(arena(), id_of(self)));
  } catch (...) {
    set_python_error();
    return nullptr;
  }
}

}  // namespace

void add_number_slots(std::vector<PyType_Slot>& slots) {
  slots.push_back({Py_nb_add, reinterpret_cast<void*>(binary_slot<add, Op::Add>)});
  slots.push_back({Py_nb_subtract, reinterpret_cast<void*>(binary_slot<sub>)});
  slots.push_back({Py_nb_multiply, reinterpret_cast<void*>(binary_slot<mul, Op::Mul>)});
  slots.push_back({Py_nb_true_divide, reinterpret_cast<void*>(binary_slot<truediv>)});
  slots.push_back({Py_nb_power, reinterpret_cast<void*>(power_slot)});
  slots.push_back({Py_nb_negative, reinterpret_cast<void*>(negative_slot)});
}

}  // namespace arenagrad::python

// arenagrad.grad's Python entry (grad_python.cpp): a C function on the _core module.
#pragma once

#include <Python.h>

namespace arenagrad::python {

// Adds `grad` to `module`. Returns false with a Python error set.
bool add_grad_function(PyObject* module);

}  // namespace arenagrad::python

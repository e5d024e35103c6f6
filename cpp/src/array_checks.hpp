// Argument checks shared by the binding files (_core and _cuda): arrays must already be float32,
// C-contiguous, of the right rank and non-empty. Nothing is converted silently (a copy would also
// falsify timings).
#pragma once
#include <pybind11/numpy.h>

#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {

inline const float* require_f32(const pybind11::array& a, int ndim, const char* name) {
  if (!a.dtype().equal(pybind11::dtype::of<float>()))
    throw DTypeError(std::string(name) + " must be float32, got dtype " + std::string(pybind11::str(a.dtype())));
  if (a.ndim() != ndim)
    throw ShapeError(std::string(name) + " must have " + std::to_string(ndim) + " dimension(s), got " +
                     std::to_string(a.ndim()));
  if (!(a.flags() & pybind11::array::c_style))
    throw DTypeError(std::string(name) + " must be C-contiguous (pass np.ascontiguousarray(...))");
  if (a.size() == 0) throw ShapeError(std::string(name) + " is empty");
  return static_cast<const float*>(a.data());
}

}  // namespace batchcore

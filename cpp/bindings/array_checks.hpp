// Argument checks shared by the binding files (_core and _cuda): arrays must already be float32,
// C-contiguous, of the right rank and non-empty. Nothing is converted silently (a copy would also
// falsify timings). Array parameters are taken as plain Python objects and checked here, so that what is
// not a numpy array at all (a list, None) meets the same DTypeError as the Python layer raises, not
// pybind11's TypeError.
#pragma once
#include <pybind11/numpy.h>

#include <string>
#include <vector>

#include "batchcore/errors.hpp"

namespace batchcore {

inline pybind11::array f32_array(const pybind11::handle& obj, int ndim, const char* name) {
  if (!pybind11::isinstance<pybind11::array>(obj))
    throw DTypeError(std::string(name) + " must be a numpy float32 array, got " +
                     std::string(pybind11::str(pybind11::type::handle_of(obj).attr("__name__"))));
  const auto a = pybind11::reinterpret_borrow<pybind11::array>(obj);
  if (!a.dtype().equal(pybind11::dtype::of<float>()))
    throw DTypeError(std::string(name) + " must be float32, got dtype " + std::string(pybind11::str(a.dtype())));
  if (a.ndim() != ndim)
    throw ShapeError(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " + std::to_string(a.ndim()) +
                     "-D");
  if (!(a.flags() & pybind11::array::c_style))
    throw DTypeError(std::string(name) + " must be C-contiguous (pass np.ascontiguousarray(...))");
  if (a.size() == 0) throw ShapeError(std::string(name) + " is empty");
  return a;
}

inline const float* f32_data(const pybind11::array& a) { return static_cast<const float*>(a.data()); }

// Rows of `width` floats: what every forward pass's input must be, whichever backend runs it (the Python
// layer calls this too, through _core.check_rows).
inline pybind11::array f32_rows(const pybind11::handle& obj, int64_t width, const char* name) {
  pybind11::array x = f32_array(obj, 2, name);
  if (x.shape(1) != width)
    throw ShapeError(std::string(name) + " has " + std::to_string(x.shape(1)) + " columns, the model takes " +
                     std::to_string(width));
  return x;
}

// A batch of samples of shape `dims`: (M, *dims) float32, C-contiguous, non-empty.
inline pybind11::array f32_samples(const pybind11::handle& obj, const std::vector<int64_t>& dims, const char* name) {
  if (pybind11::isinstance<pybind11::array>(obj)) {
    const auto a = pybind11::reinterpret_borrow<pybind11::array>(obj);
    if (a.ndim() != pybind11::ssize_t(dims.size() + 1))
      throw ShapeError(std::string(name) + " must be " + std::to_string(dims.size() + 1) + "-D (the batch, then " +
                       std::to_string(dims.size()) + " sample dimensions), got " + std::to_string(a.ndim()) + "-D");
  }
  pybind11::array x = f32_array(obj, int(dims.size() + 1), name);
  for (size_t d = 0; d < dims.size(); ++d)
    if (x.shape(pybind11::ssize_t(d + 1)) != dims[d])
      throw ShapeError(std::string(name) + " samples have " + std::to_string(x.shape(pybind11::ssize_t(d + 1))) +
                       " entries along dimension " + std::to_string(d) + ", the model takes " + std::to_string(dims[d]));
  return x;
}

}  // namespace batchcore

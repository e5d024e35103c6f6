// The core's exception hierarchy. Bindings translate each class to the Python exception of the same name.
#pragma once
#include <stdexcept>
#include <string>

namespace batchcore {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error { using Error::Error; };            // wrong or empty shapes, K = 0
struct DTypeError : Error { using Error::Error; };            // not float32, not C-contiguous
struct NonFiniteError : Error { using Error::Error; };        // NaN or Inf where finite values are required
struct OrderError : Error { using Error::Error; };            // unknown or malformed order / precision / policy
struct UnsupportedLayerError : Error { using Error::Error; };
struct DeviceUnavailableError : Error { using Error::Error; };
struct OutOfMemoryError : Error { using Error::Error; };
struct ArgumentError : Error { using Error::Error; };         // a setting outside its documented range

}  // namespace batchcore

// The one list of the core's exception classes and their Python names, read by both extensions: _core
// registers a Python class for each (BatchcoreError first, as their base), _cuda raises _core's classes
// for the same C++ types. A class added to errors.hpp and not here would reach Python as BatchcoreError.
#pragma once
#include "batchcore/errors.hpp"

namespace batchcore {

template <class E>
struct ErrorClass {
  using type = E;
};

// Calls visit(ErrorClass<E>{}, "PythonName") for every subclass E of Error.
template <class Visit>
void for_each_error_class(Visit&& visit) {
  visit(ErrorClass<ShapeError>{}, "ShapeError");
  visit(ErrorClass<DTypeError>{}, "DTypeError");
  visit(ErrorClass<NonFiniteError>{}, "NonFiniteError");
  visit(ErrorClass<OrderError>{}, "OrderError");
  visit(ErrorClass<UnsupportedLayerError>{}, "UnsupportedLayerError");
  visit(ErrorClass<DeviceUnavailableError>{}, "DeviceUnavailableError");
  visit(ErrorClass<OutOfMemoryError>{}, "OutOfMemoryError");
  visit(ErrorClass<ArgumentError>{}, "ArgumentError");
}

// The Python name of e's class: its entry in the table, else "BatchcoreError".
inline const char* python_error_name(const Error& e) {
  const char* name = "BatchcoreError";
  for_each_error_class([&](auto cls, const char* n) {
    if (dynamic_cast<const typename decltype(cls)::type*>(&e)) name = n;
  });
  return name;
}

}  // namespace batchcore

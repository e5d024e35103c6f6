// The CUDA core's plain C++ interface: no CUDA types, so host-compiled code (the bindings) can include it.
// Errors are batchcore exceptions (errors.hpp): DeviceUnavailableError when no GPU or driver is usable,
// OutOfMemoryError when a device allocation fails.
#pragma once
#include <cstdint>
#include <string>

#include "batchcore/order.hpp"

namespace batchcore::cuda {

int device_count();                 // 0 when no driver or no GPU (never throws)
std::string device_name(int device);
std::string runtime_version();      // e.g. "13.0"
int driver_version();               // e.g. 13000 (0 without a driver)
int64_t l2_cache_bytes(int device);
double default_clock_ghz(int device);  // cudaDevAttrClockRate

// The device's ceilings (probes.cu): fp32 fma peak of a register-resident kernel on every SM, in GFLOP/s;
// device-to-device copy bandwidth over buffers >= 8x the L2, in GB/s counting the read and the write.
double probe_fma_peak_gflops(int device);
double probe_copy_gbytes_per_s(int device);

// y (M x N) = x (M x K) W^T (W: N x K) + b, one thread per output element, each element computed by
// dot_ordered() of dot.hpp: the CPU definition, compiled for the GPU. Host pointers in and out.
void linear_reference(const float* x, const float* W, const float* b, float* y, int64_t M, int64_t N,
                      int64_t K, Order order, Precision precision, int device);

}  // namespace batchcore::cuda

#include "batchcore/cache_sizes.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

namespace batchcore {
namespace {

// "48K", "1024K", "32M" or a plain byte count; 0 when unreadable.
int64_t parse_size(const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || value <= 0) return 0;
  switch (*end) {
    case 'K': return int64_t(value) << 10;
    case 'M': return int64_t(value) << 20;
    case 'G': return int64_t(value) << 30;
    default: return int64_t(value);
  }
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool read_sysfs(CacheSizes& c) {
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string level = read_line(dir + "level"), type = read_line(dir + "type");
    if (level.empty()) break;
    const int64_t size = parse_size(read_line(dir + "size"));
    if (level == "1" && type == "Data") c.l1d_bytes = size;
    else if (level == "2" && type != "Instruction") c.l2_bytes = size;
    else if (level == "3" && type != "Instruction") c.l3_bytes = size;
  }
  return c.l1d_bytes > 0 && c.l2_bytes > 0;
}

bool read_sysconf(CacheSizes& c) {
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
  c.l1d_bytes = std::max<long>(0, sysconf(_SC_LEVEL1_DCACHE_SIZE));
  c.l2_bytes = std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));
  c.l3_bytes = std::max<long>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
  return c.l1d_bytes > 0 && c.l2_bytes > 0;
#else
  return false;
#endif
}

CacheSizes read_cache_sizes() {
  CacheSizes c{0, 0, 0, 0, "sysfs"};
  if (!read_sysfs(c)) {
    c = CacheSizes{0, 0, 0, 0, "sysconf"};
    if (!read_sysconf(c)) c = CacheSizes{int64_t(48) << 10, int64_t(1) << 20, 0, 0, "default"};
  }
  c.blocking_l2_bytes = std::clamp(c.l2_bytes, kMinBlockingL2, kMaxBlockingL2);
  if (const char* forced = std::getenv("BATCHCORE_L2_BYTES")) {
    const int64_t bytes = parse_size(forced);
    if (bytes > 0) {
      c.blocking_l2_bytes = bytes;
      c.source = "BATCHCORE_L2_BYTES";
    }
  }
  return c;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes = read_cache_sizes();
  return sizes;
}

}  // namespace batchcore

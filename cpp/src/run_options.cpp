#include "batchcore/run_options.hpp"

#include "batchcore/thread_pool.hpp"

namespace batchcore {

RunOptions parse_run_options(Order order, const std::string& precision, const std::string& policy,
                             std::optional<int> threads, const std::string& simd) {
  RunOptions o;
  o.order = order;
  o.precision = parse_precision(precision);
  o.policy = parse_policy(policy);
  o.threads = threads ? *threads : default_thread_count();
  check_thread_count(o.threads);
  o.simd = parse_simd_level(simd);
  return o;
}

}  // namespace batchcore

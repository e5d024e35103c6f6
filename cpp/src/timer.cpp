#include "batchcore/timer.hpp"

#include <numeric>
#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {

void check_policy(const TimerPolicy& p) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw ArgumentError("timer: " + what);
  };
  require(p.warmup_s >= 0 && std::isfinite(p.warmup_s), "warmup_s must be a finite number >= 0");
  require(p.warmup_calls >= 1, "warmup_calls must be >= 1");
  require(p.target > 0 && std::isfinite(p.target), "target (relative CI half-width) must be > 0");
  require(p.confidence > 0 && p.confidence < 1, "confidence must lie strictly between 0 and 1");
  require(p.min_samples >= 1, "min_samples must be >= 1");
  require(p.min_time_s >= 0 && std::isfinite(p.min_time_s), "min_time_s must be a finite number >= 0");
  require(p.timeout_s > 0 && std::isfinite(p.timeout_s), "timeout_s must be a finite number > 0");
  require(p.max_samples >= p.min_samples, "max_samples must be >= min_samples");
  require(p.max_samples <= kMaxSamples, "max_samples must be <= 10,000,000");
  require(p.overhead_frac >= kMinOverheadFrac && p.overhead_frac < 1,
          "overhead_frac must lie in [1e-7, 1) (a block of calls is clock_read / overhead_frac long)");
  require(p.warmup_s <= p.timeout_s, "warmup_s must not exceed timeout_s (the warm-up ends at the timeout)");
  require(p.min_time_s <= p.timeout_s, "min_time_s must not exceed timeout_s (the target could never be met)");
}

int64_t calls_per_block(double call_s, double min_block_s, double max_block_s) {
  const double block_s = std::min(min_block_s, max_block_s);
  if (!(call_s > 0) || !(call_s < block_s)) return 1;
  const double calls = std::ceil(block_s / call_s);
  constexpr double kMaxCalls = double(int64_t(1) << 40);
  return calls < kMaxCalls ? int64_t(calls) : int64_t(1) << 40;
}

double quantile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return NAN;
  const double pos = p * double(sorted.size() - 1);
  const size_t i = size_t(pos);
  if (i + 1 >= sorted.size()) return sorted.back();
  const double f = pos - double(i);
  return sorted[i] + f * (sorted[i + 1] - sorted[i]);
}

MedianCI median_ci(const std::vector<double>& sorted, double confidence) {
  MedianCI ci;
  const int64_t n = int64_t(sorted.size());
  if (n == 0) {
    ci.low = ci.high = NAN;
    return ci;
  }
  ci.low = sorted.front();
  ci.high = sorted.back();
  // j = the first k at which the binomial CDF passes alpha/2 (pmf summed in log space: n may be large).
  const double tail = (1.0 - confidence) / 2.0;
  const double log_norm = std::lgamma(double(n) + 1.0) - double(n) * std::log(2.0);
  double cdf = 0.0;
  int64_t j = 0;
  for (int64_t k = 0; k <= n / 2; ++k) {
    cdf += std::exp(log_norm - std::lgamma(double(k) + 1.0) - std::lgamma(double(n - k) + 1.0));
    if (cdf > tail) {
      j = k;
      break;
    }
  }
  if (j < 1) return ci;  // too few samples for this confidence
  ci.low = sorted[size_t(j - 1)];
  ci.high = sorted[size_t(n - j)];
  const double med = quantile_sorted(sorted, 0.5);
  const double half = std::max(med - ci.low, ci.high - med);
  ci.rel_halfwidth = med > 0 ? half / med : (half == 0 ? 0.0 : INFINITY);
  return ci;
}

void summarize(TimingSummary& s, double confidence) {
  std::vector<double> sorted = s.samples_ns;
  std::sort(sorted.begin(), sorted.end());
  const double n = double(sorted.size());
  s.median = quantile_sorted(sorted, 0.5);
  s.q1 = quantile_sorted(sorted, 0.25);
  s.q3 = quantile_sorted(sorted, 0.75);
  s.p90 = quantile_sorted(sorted, 0.90);
  s.p99 = quantile_sorted(sorted, 0.99);
  s.min = sorted.empty() ? NAN : sorted.front();
  s.max = sorted.empty() ? NAN : sorted.back();
  s.mean = sorted.empty() ? NAN : std::accumulate(sorted.begin(), sorted.end(), 0.0) / n;
  s.ci = median_ci(sorted, confidence);
}

StopReason stop_reason(int64_t n, double elapsed_s, double rel_halfwidth, const TimerPolicy& p) {
  if (n >= p.max_samples) return StopReason::max_samples;
  if (n >= p.min_samples && elapsed_s >= p.min_time_s && rel_halfwidth <= p.target) return StopReason::target_met;
  if (elapsed_s >= p.timeout_s) return StopReason::timeout;
  return StopReason::none;
}

TimingSummary replay_timer(const TimerPolicy& p, const std::vector<double>& call_ns, double clock_read_ns,
                           const std::vector<bool>& rejected) {
  if (call_ns.empty()) throw ArgumentError("timer replay: no planted call durations");
  struct FakeClock {
    double t = 0, read_s = 0;
    double now_s() { return t += read_s; }
  } clock{0.0, clock_read_ns * 1e-9};
  size_t next_call = 0, next_sample = 0;
  auto call = [&] { clock.t += call_ns[next_call++ % call_ns.size()] * 1e-9; };
  auto sampler = [&](int64_t calls) {
    const double a = clock.now_s();
    for (int64_t i = 0; i < calls; ++i) call();
    const bool reject = !rejected.empty() && rejected[next_sample % rejected.size()];
    ++next_sample;
    return Sample{(clock.now_s() - a) * 1e9, reject};
  };
  return run_timer(p, clock, call, sampler);
}

}  // namespace batchcore

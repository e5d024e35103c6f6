// The measurement policy, apart from what is measured (as in nvbench): a time-based warm-up, samples
// until the 95 % confidence interval of the median is narrow enough (or a timeout), and the summary
// statistics every result carries. The loop is a template over the clock and the sampler, so that the
// CPU path (a monotonic clock around blocks of calls), the CUDA path (events) and the tests (a fake
// clock replaying planted durations) share one stopping rule.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

namespace batchcore {

struct TimerPolicy {
  double warmup_s = 0.025;      // untimed calls for at least this long ...
  int warmup_calls = 1;         // ... and at least this many
  double target = 0.01;         // stop when the CI's relative half-width (see MedianCI) is <= target ...
  double confidence = 0.95;
  int min_samples = 10;         // ... with at least this many samples ...
  double min_time_s = 0.5;      // ... and this much time spent sampling,
  double timeout_s = 15.0;      // or stop here, target not met
  int64_t max_samples = 100000; // or here (memory bound, at most kMaxSamples), target judged on what was taken
  // A CPU sample is a block of calls long enough that reading the clock costs < overhead_frac of it.
  double overhead_frac = 1e-4;
};

// The smallest overhead_frac accepted: with a 30 ns clock read, blocks of 0.3 s.
constexpr double kMinOverheadFrac = 1e-7;
// The most samples a measurement may keep (8 bytes each).
constexpr int64_t kMaxSamples = 10000000;

// Throws ArgumentError naming the first setting outside its range (or settings that contradict each
// other: a warm-up or a minimum sampling time longer than the timeout).
void check_policy(const TimerPolicy& p);

// Calls per sample: enough that a block lasts min_block_s given one call's duration, at most a block of
// max_block_s (so that one sample never outlasts the timeout), computed in double and clamped before the
// conversion (a float-to-integer overflow would be undefined).
int64_t calls_per_block(double call_s, double min_block_s, double max_block_s);
void check_policy(const TimerPolicy& p);

// Order-statistic confidence interval of the median: [x_(j), x_(n+1-j)] of the sorted samples (1-based)
// with j the largest index such that P(Binomial(n, 1/2) <= j - 1) <= (1 - confidence) / 2. Exact for
// any continuous distribution; none exists below 6 samples at 95 % (then low = min, high = max and
// rel_halfwidth = infinity).
struct MedianCI {
  double low = 0, high = 0;
  double rel_halfwidth = INFINITY;  // max(median - low, high - median) / median
};

struct TimingSummary {
  std::vector<double> samples_ns;  // per call: block time / calls_per_sample, in the order taken
  int64_t calls_per_sample = 1;
  int64_t discarded = 0;            // samples the sampler rejected (e.g. a GPU below 75 % of its clock)
  bool target_met = false;
  bool timed_out = false;
  double warmup_s = 0, sampling_s = 0;
  double clock_overhead_ns = 0;     // cost of one clock read, measured before sampling
  // Statistics of samples_ns (quantiles interpolate linearly between order statistics, as numpy's default).
  double median = 0, mean = 0, min = 0, max = 0, q1 = 0, q3 = 0, p90 = 0, p99 = 0;
  MedianCI ci;
};

// The p-quantile (0 <= p <= 1) of sorted values: linear interpolation at position p * (n - 1).
double quantile_sorted(const std::vector<double>& sorted, double p);
MedianCI median_ci(const std::vector<double>& sorted, double confidence);
// Fills the statistics of s from s.samples_ns.
void summarize(TimingSummary& s, double confidence);

// The stopping rule after a sample: n samples, `elapsed_s` spent sampling, `rel_halfwidth` of the CI.
enum class StopReason { none, target_met, timeout, max_samples };
StopReason stop_reason(int64_t n, double elapsed_s, double rel_halfwidth, const TimerPolicy& p);

// One sample: its duration for the whole block, or rejected (counted, not kept).
struct Sample {
  double ns = 0;
  bool rejected = false;
};

struct SteadyClock {
  double now_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
};

// Runs the policy (checked first: ArgumentError). call() is one untimed call (warm-up); sample(calls) takes one sample of `calls`
// calls and measures it (the CPU sampler reads `clock` around the block, the CUDA one records events).
// The CI is re-evaluated after each of the first samples, then every n/32 samples (sorting costs
// n log n; this keeps the total near-linear while stopping within ~3 % of the earliest possible sample).
template <class Clock, class Call, class Sampler>
TimingSummary run_timer(const TimerPolicy& p, Clock& clock, Call&& call, Sampler&& sample) {
  check_policy(p);
  TimingSummary s;
  // The clock's own cost: the median of a few back-to-back reads.
  {
    std::vector<double> reads;
    for (int i = 0; i < 33; ++i) {
      const double a = clock.now_s(), b = clock.now_s();
      reads.push_back((b - a) * 1e9);
    }
    std::sort(reads.begin(), reads.end());
    s.clock_overhead_ns = quantile_sorted(reads, 0.5);
  }
  // Warm-up: at least warmup_calls calls and warmup_s seconds, ended by the timeout in any case; the
  // last call's duration (or the mean, when the clock did not see it) gives the block size.
  const double w0 = clock.now_s();
  int64_t calls = 0;
  double last_call_s = 0;
  for (;;) {
    const double c0 = clock.now_s();
    call();
    const double c1 = clock.now_s();
    last_call_s = c1 - c0;
    ++calls;
    if ((calls >= p.warmup_calls && c1 - w0 >= p.warmup_s) || c1 - w0 >= p.timeout_s) break;
  }
  s.warmup_s = clock.now_s() - w0;
  if (!(last_call_s > 0)) last_call_s = s.warmup_s / double(calls);
  s.calls_per_sample = calls_per_block(last_call_s, s.clock_overhead_ns * 1e-9 / p.overhead_frac,
                                       p.timeout_s / double(p.min_samples));

  const double t0 = clock.now_s();
  int64_t next_check = 1;
  std::vector<double> sorted;
  for (;;) {
    const Sample x = sample(s.calls_per_sample);
    if (x.rejected) ++s.discarded;
    else s.samples_ns.push_back(x.ns / double(s.calls_per_sample));
    const int64_t n = int64_t(s.samples_ns.size());
    const double elapsed = clock.now_s() - t0;
    double width = INFINITY;
    if (n >= p.min_samples && n >= next_check) {
      sorted = s.samples_ns;
      std::sort(sorted.begin(), sorted.end());
      width = median_ci(sorted, p.confidence).rel_halfwidth;
      next_check = n + (n / 32 > 1 ? n / 32 : 1);
    }
    const StopReason why = stop_reason(n, elapsed, width, p);
    if (why != StopReason::none) {
      s.sampling_s = elapsed;
      s.timed_out = why == StopReason::timeout;
      break;
    }
  }
  summarize(s, p.confidence);
  s.target_met = int64_t(s.samples_ns.size()) >= p.min_samples && s.ci.rel_halfwidth <= p.target;
  return s;
}

// The CPU sampler: the clock read around a block of calls.
template <class Clock, class Call>
TimingSummary time_on_clock(const TimerPolicy& p, Clock& clock, Call&& call) {
  auto sampler = [&](int64_t calls) {
    const double a = clock.now_s();
    for (int64_t i = 0; i < calls; ++i) call();
    return Sample{(clock.now_s() - a) * 1e9, false};
  };
  return run_timer(p, clock, call, sampler);
}

// The policy on a planted stream: a fake clock that advances by call_ns[i] (cyclically) at each call and
// by clock_read_ns at each read; sample j is rejected when rejected[j] (cyclically; empty: none).
// Lets tests check the stopping rule, the statistics and the discard count exactly.
TimingSummary replay_timer(const TimerPolicy& p, const std::vector<double>& call_ns, double clock_read_ns,
                           const std::vector<bool>& rejected);

}  // namespace batchcore

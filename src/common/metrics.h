// Process metrics rendered in the Prometheus text exposition format (version 0.0.4).
//
// Metrics are created once (usually at startup) through the Registry and then updated with
// relaxed atomics on hot paths; lookups by label go through a small mutex-protected map, so
// hot paths should keep the returned pointer. Pointers stay valid for the Registry's lifetime.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vlake {

class Counter {
 public:
  void Add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  void Set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Fixed-bucket histogram of seconds. Buckets are upper bounds, ascending.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double seconds);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound (non-cumulative)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

class MetricsRegistry {
 public:
  // `labels` is the rendered label set without braces, e.g. `op="GetObject",code="200"`.
  Counter* GetCounter(const std::string& name, const std::string& help, const std::string& labels);
  Gauge* GetGauge(const std::string& name, const std::string& help, const std::string& labels);
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::string& labels);
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Default latency buckets: 100us .. 60s.
std::vector<double> DefaultLatencyBounds();

}  // namespace vlake

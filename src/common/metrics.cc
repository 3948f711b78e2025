#include "common/metrics.h"

#include <cstdio>

#include "common/status.h"

namespace vlake {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

double Histogram::sum() const { return static_cast<double>(sum_ns_.load()) / 1e9; }

std::vector<double> DefaultLatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, const char* type) {
  Family& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  VLAKE_CHECK(f.type == type);
  return f;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, help, "gauge").gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(DefaultLatencyBounds());
  return slot.get();
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  char num[64];
  auto braced = [](const std::string& labels) {
    return labels.empty() ? std::string() : "{" + labels + "}";
  };
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      std::snprintf(num, sizeof(num), " %llu\n", static_cast<unsigned long long>(c->value()));
      out += name + braced(labels) + num;
    }
    for (const auto& [labels, g] : f.gauges) {
      std::snprintf(num, sizeof(num), " %lld\n", static_cast<long long>(g->value()));
      out += name + braced(labels) + num;
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      std::string sep = labels.empty() ? "" : ",";
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        cumulative += h->bucket(i);
        std::snprintf(num, sizeof(num), "%g\"} %llu\n", h->bounds()[i],
                      static_cast<unsigned long long>(cumulative));
        out += name + "_bucket{" + labels + sep + "le=\"" + num;
      }
      std::snprintf(num, sizeof(num), " %llu\n", static_cast<unsigned long long>(h->count()));
      out += name + "_bucket{" + labels + sep + "le=\"+Inf\"}" + num;
      std::snprintf(num, sizeof(num), " %.6f\n", h->sum());
      out += name + "_sum" + braced(labels) + num;
      std::snprintf(num, sizeof(num), " %llu\n", static_cast<unsigned long long>(h->count()));
      out += name + "_count" + braced(labels) + num;
    }
  }
  return out;
}

}  // namespace vlake

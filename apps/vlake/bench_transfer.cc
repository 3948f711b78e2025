// `vlake bench transfer`: object GET/PUT throughput and CPU cost over three paths against one
// storage node — the HTTP body into a user buffer, the direct path over UCX shared memory, and
// the direct path over UCX tcp — plus single-thread memcpy bandwidth measured in the same run.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "common/encoding.h"
#include "vlake/client.h"

namespace vlake::app {
namespace {

constexpr char kHelp[] = R"(Usage: vlake bench transfer [flags]

Measures GET and PUT of each size with 1 and N concurrent streams over the HTTP body, the
direct path over UCX shared memory, and the direct path over UCX tcp. Each stream moves the
whole object per request, into / out of its own registered region (the HTTP path copies the
body into that same kind of buffer). Prints a table, then one JSON object as the last line.

  --endpoint URL      storage node (default http://127.0.0.1:9000; https:// too)
  --ca-bundle FILE    PEM certificates to trust for https:// (default $VLAKE_CA_BUNDLE)
  --sizes LIST        object sizes (default 1M,16M,256M,1G; K/M/G suffixes)
  --streams LIST      concurrent streams (default 1,4)
  --paths LIST        http,shm,tcp (default all three)
  --min-seconds S     minimum time per case (default 1.5)
  --server-pid PID    include the server's CPU seconds (from /proc)
  --bucket B          bucket (default vlake-bench-transfer)
Credentials: VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
)";

using Clock = std::chrono::steady_clock;

struct Case {
  std::string op, path;
  uint64_t size = 0;
  int streams = 0;
  double gbps = 0, client_cpu_s = 0, server_cpu_s = 0, cpu_s_per_gib = 0;
  uint64_t bytes = 0;
  std::string error;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t c = s.find(',', pos);
    std::string item = s.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    if (!item.empty()) out.push_back(item);
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return out;
}

std::string SizeName(uint64_t n) {
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) return std::to_string(n >> 30) + "GiB";
  if (n >= (1ull << 20) && n % (1ull << 20) == 0) return std::to_string(n >> 20) + "MiB";
  return std::to_string(n) + "B";
}

// Single-thread memcpy of 256 MiB buffers (page-faulted in first), best of 5.
double MemcpyGbps() {
  size_t n = 256ull << 20;
  std::unique_ptr<char[]> a(new char[n]), b(new char[n]);
  std::memset(a.get(), 1, n);
  std::memset(b.get(), 2, n);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    std::memcpy(b.get(), a.get(), n);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n) / s / 1e9);
    a[i] = b[n - 1 - i];  // keep the copies observable
  }
  return best;
}

struct Bench {
  client::ClientOptions base;
  std::string bucket = "vlake-bench-transfer";
  int server_pid = 0;
  double min_seconds = 1.5;

  std::unique_ptr<client::Client> ClientFor(const std::string& path) {
    client::ClientOptions o = base;
    o.parallel_threshold_bytes = 1ull << 40;  // one request per transfer: streams are explicit
    o.direct = path == "http" ? client::DirectMode::kOff : client::DirectMode::kRequire;
    o.direct_transports = path == "http" ? "" : path;
    auto c = client::Client::Create(o);
    if (!c.ok()) {
      std::fprintf(stderr, "bench transfer: %s\n", c.error().ToString().c_str());
      std::exit(1);
    }
    return std::move(*c);
  }

  Case Run(client::Client& c, const std::string& op, const std::string& path, uint64_t size,
           int streams, std::vector<std::unique_ptr<client::Region>>& regions) {
    Case k{op, path, size, streams};
    std::string key = "obj-" + std::to_string(size);
    std::vector<uint64_t> moved(streams, 0);
    std::vector<std::string> errors(streams);
    // Warm-up: one transfer per stream (endpoints, rkeys, page faults of fresh regions).
    auto one = [&](int s) -> Status {
      const client::Region& r = *regions[s];
      if (op == "get") {
        VLAKE_ASSIGN_OR_RETURN(client::GetResult g, c.GetInto(bucket, key, r));
        if (g.bytes != size) return Error(Code::kInternal, "short GET");
        if (path != "http" && !g.direct) return Error(Code::kInternal, "GET was not direct");
      } else {
        std::string k2 = key + "-put-" + std::to_string(s);
        VLAKE_ASSIGN_OR_RETURN(client::PutResult p,
                               path == "http" ? c.Put(bucket, k2, std::string_view(r.data(), size))
                                              : c.PutFrom(bucket, k2, r, size));
        if (path != "http" && !p.direct) return Error(Code::kInternal, "PUT was not direct");
      }
      return Status::Ok();
    };
    for (int s = 0; s < streams; ++s) {
      if (Status st = one(s); !st.ok()) {
        k.error = st.ToString();
        return k;
      }
    }
    double cpu0 = CpuSecondsOfSelf(), srv0 = CpuSecondsOfPid(server_pid);
    auto t0 = Clock::now();
    auto deadline = t0 + std::chrono::duration<double>(min_seconds);
    std::vector<std::thread> threads;
    for (int s = 0; s < streams; ++s) {
      threads.emplace_back([&, s] {
        int done = 0;
        while (done < 2 || Clock::now() < deadline) {
          if (Status st = one(s); !st.ok()) {
            errors[s] = st.ToString();
            return;
          }
          moved[s] += size;
          ++done;
        }
      });
    }
    for (auto& t : threads) t.join();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    k.client_cpu_s = CpuSecondsOfSelf() - cpu0;
    k.server_cpu_s = CpuSecondsOfPid(server_pid) - srv0;
    for (int s = 0; s < streams; ++s) {
      k.bytes += moved[s];
      if (!errors[s].empty()) k.error = errors[s];
    }
    k.gbps = static_cast<double>(k.bytes) / secs / 1e9;
    double gib = static_cast<double>(k.bytes) / static_cast<double>(1ull << 30);
    k.cpu_s_per_gib = gib > 0 ? (k.client_cpu_s + k.server_cpu_s) / gib : 0;
    return k;
  }
};

const Case* Find(const std::vector<Case>& cases, const std::string& op, const std::string& path,
                 uint64_t size, int streams) {
  for (const auto& k : cases) {
    if (k.op == op && k.path == path && k.size == size && k.streams == streams) return &k;
  }
  return nullptr;
}

}  // namespace

int RunBenchTransfer(int argc, char** argv) {
  Bench bench;
  std::vector<uint64_t> sizes = {1ull << 20, 16ull << 20, 256ull << 20, 1ull << 30};
  std::vector<int> stream_counts = {1, 4};
  std::vector<std::string> paths = {"http", "shm", "tcp"};
  if (const char* v = std::getenv("VLAKE_ACCESS_KEY"))
    bench.base.access_key = v;
  else if (const char* a = std::getenv("AWS_ACCESS_KEY_ID"))
    bench.base.access_key = a;
  if (const char* v = std::getenv("VLAKE_SECRET_KEY"))
    bench.base.secret_key = v;
  else if (const char* a = std::getenv("AWS_SECRET_ACCESS_KEY"))
    bench.base.secret_key = a;
  if (const char* v = std::getenv("VLAKE_CA_BUNDLE")) bench.base.ca_file = v;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench transfer: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--endpoint") {
      bench.base.endpoint = val();
    } else if (a == "--ca-bundle") {
      bench.base.ca_file = val();
    } else if (a == "--sizes") {
      sizes.clear();
      for (const auto& s : Split(val())) {
        auto n = ParseSize(s);
        if (!n || *n == 0) {
          std::fprintf(stderr, "bench transfer: bad size %s\n", s.c_str());
          return 2;
        }
        sizes.push_back(*n);
      }
    } else if (a == "--streams") {
      stream_counts.clear();
      for (const auto& s : Split(val())) stream_counts.push_back(std::max(1, std::atoi(s.c_str())));
    } else if (a == "--paths") {
      paths = Split(val());
    } else if (a == "--min-seconds") {
      bench.min_seconds = std::atof(val().c_str());
    } else if (a == "--server-pid") {
      bench.server_pid = std::atoi(val().c_str());
    } else if (a == "--bucket") {
      bench.bucket = val();
    } else {
      std::fprintf(stderr, "bench transfer: unknown flag %s\n\n%s", a.c_str(), kHelp);
      return 2;
    }
  }
  double memcpy_gbps = MemcpyGbps();
  std::printf("memcpy (1 thread): %.2f GB/s\n", memcpy_gbps);
  int max_streams = *std::max_element(stream_counts.begin(), stream_counts.end());
  uint64_t max_size = *std::max_element(sizes.begin(), sizes.end());

  std::vector<Case> cases;
  {
    auto setup = bench.ClientFor("http");
    Status st = setup->CreateBucket(bench.bucket);
    if (!st.ok() && st.code() != Code::kBucketAlreadyOwnedByYou) {
      std::fprintf(stderr, "bench transfer: %s\n", st.ToString().c_str());
      return 1;
    }
    std::string data;
    FillObject(1, 0, &data, max_size);
    for (uint64_t size : sizes) {
      auto put = setup->Put(bench.bucket, "obj-" + std::to_string(size),
                            std::string_view(data.data(), size));
      if (!put.ok()) {
        std::fprintf(stderr, "bench transfer: setup: %s\n", put.error().ToString().c_str());
        return 1;
      }
    }
  }
  // The server writes without fsync here; flush its dirty pages now so that writeback does not
  // run during (and slow down) whichever cases happen to come first.
  sync();
  std::printf("%-4s %-5s %8s %7s %9s %11s %11s %10s\n", "op", "path", "size", "streams", "GB/s",
              "client cpu", "server cpu", "cpu s/GiB");
  for (const auto& path : paths) {
    auto c = bench.ClientFor(path);
    // Regions sized for the largest object, one per stream, registered once and reused.
    std::vector<std::unique_ptr<client::Region>> regions;
    for (int s = 0; s < max_streams; ++s) {
      auto r = c->AllocateRegion(max_size);
      if (!r.ok()) {
        std::fprintf(stderr, "bench transfer: %s\n", r.error().ToString().c_str());
        return 1;
      }
      std::memset((*r)->data(), 0x5a, max_size);
      regions.push_back(std::move(*r));
    }
    for (const char* op : {"get", "put"}) {
      for (uint64_t size : sizes) {
        for (int streams : stream_counts) {
          Case k = bench.Run(*c, op, path, size, streams, regions);
          std::printf("%-4s %-5s %8s %7d %9.2f %11.2f %11.2f %10.3f %s\n", op, path.c_str(),
                      SizeName(size).c_str(), streams, k.gbps, k.client_cpu_s, k.server_cpu_s,
                      k.cpu_s_per_gib, k.error.c_str());
          std::fflush(stdout);
          cases.push_back(std::move(k));
        }
      }
    }
  }
  // The headline figures: 256 MiB (or the largest size below it), 1 stream.
  uint64_t ref = sizes.front();
  for (uint64_t s : sizes) {
    if (s <= (256ull << 20)) ref = std::max(ref, s);
  }
  auto gbps = [&](const char* op, const char* path) {
    const Case* k = Find(cases, op, path, ref, 1);
    return k && k->error.empty() ? k->gbps : 0.0;
  };
  auto cpu = [&](const char* op, const char* path) {
    const Case* k = Find(cases, op, path, ref, 1);
    return k && k->error.empty() ? k->cpu_s_per_gib : 0.0;
  };
  double http_get = gbps("get", "http"), shm_get = gbps("get", "shm");
  double http_cpu = cpu("get", "http"), shm_cpu = cpu("get", "shm");
  std::string all = "[";
  for (const auto& k : cases) {
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "%s{\"op\":\"%s\",\"path\":\"%s\",\"size\":%llu,\"streams\":%d,\"gbps\":%.3f,"
                  "\"client_cpu_s\":%.3f,\"server_cpu_s\":%.3f,\"cpu_s_per_gib\":%.4f,\"ok\":%s}",
                  all.size() > 1 ? "," : "", k.op.c_str(), k.path.c_str(),
                  static_cast<unsigned long long>(k.size), k.streams, k.gbps, k.client_cpu_s,
                  k.server_cpu_s, k.cpu_s_per_gib, k.error.empty() ? "true" : "false");
    all += buf;
  }
  all += "]";
  std::printf(
      "{\"bench\":\"transfer\",\"reference_size\":%llu,\"memcpy_gbps\":%.3f,"
      "\"http_get_gbps\":%.3f,\"direct_shm_get_gbps\":%.3f,\"direct_tcp_get_gbps\":%.3f,"
      "\"http_put_gbps\":%.3f,\"direct_shm_put_gbps\":%.3f,\"direct_tcp_put_gbps\":%.3f,"
      "\"http_cpu_s_per_gib\":%.4f,\"direct_shm_cpu_s_per_gib\":%.4f,"
      "\"direct_tcp_cpu_s_per_gib\":%.4f,\"shm_get_vs_http\":%.3f,\"shm_get_vs_memcpy\":%.3f,"
      "\"shm_cpu_vs_http\":%.3f,\"server_cpu_measured\":%s,\"cases\":%s}\n",
      static_cast<unsigned long long>(ref), memcpy_gbps, http_get, shm_get, gbps("get", "tcp"),
      gbps("put", "http"), gbps("put", "shm"), gbps("put", "tcp"), http_cpu, shm_cpu,
      cpu("get", "tcp"), http_get > 0 ? shm_get / http_get : 0, shm_get / memcpy_gbps,
      http_cpu > 0 ? shm_cpu / http_cpu : 0, bench.server_pid > 0 ? "true" : "false", all.c_str());
  return 0;
}

}  // namespace vlake::app

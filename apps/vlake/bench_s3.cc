// `vlake bench s3`: a closed-loop load generator for S3 endpoints (vlake's own or any other),
// and for plain HTTP file servers (nginx) with --no-sign, so both run through the same client.
//
// Object bytes are a deterministic pseudo-random stream of (seed, object index), so
// `--op fill-dir` can lay the very same bytes out as files for a file server to serve.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "http/client.h"
#include "http/tls.h"
#include "s3/sigv4.h"

namespace vlake::app {
namespace {

constexpr char kBenchHelp[] =
    R"(Usage: vlake bench s3 [flags]

Closed-loop load generator. Prints one JSON object per run on stdout.

  --endpoint URL        http://HOST:PORT or https://HOST:PORT (default http://127.0.0.1:9000)
  --ca-bundle FILE      PEM certificates to trust for https:// (default $VLAKE_CA_BUNDLE,
                        else the system's store)
  --access-key K        (default $VLAKE_ACCESS_KEY / $AWS_ACCESS_KEY_ID)
  --secret-key S        (default $VLAKE_SECRET_KEY / $AWS_SECRET_ACCESS_KEY)
  --no-sign             send unsigned requests (plain HTTP servers such as nginx)
  --bucket B            bucket, created when missing for put (default vlake-bench)
  --prefix P            object key prefix (default obj-); keys are P0, P1, ...
  --op OP               put | get | fill-dir (write the objects' bytes as files under --dir)
  --dir DIR             output folder for fill-dir (files DIR/B/P<i>)
  --size N              object size; suffixes K, M, G are KiB, MiB, GiB (default 4K)
  --objects N           distinct objects (default 16)
  --concurrency N       parallel connections (default 4)
  --duration S          seconds to run (default 10); put stops after --objects if --once
  --once                put each object exactly once, then stop
  --server-pid PID      report the server's CPU seconds over the run (from /proc)
  --seed N              data seed (default 1)

Signed GETs of one object are reused by a worker within the second they were signed in (the
server verifies each in full); PUTs are signed per request with UNSIGNED-PAYLOAD.
)";

struct BenchConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 9000;
  bool https = false;
  std::string ca_file;
  std::shared_ptr<const http::TlsContext> tls;  // built from the two above
  std::string access_key, secret_key;
  bool sign = true;
  std::string bucket = "vlake-bench";
  std::string prefix = "obj-";
  std::string op = "get";
  std::string dir;
  uint64_t size = 4096;
  int objects = 16;
  int concurrency = 4;
  double duration_s = 10;
  bool once = false;
  int server_pid = 0;
  uint64_t seed = 1;
};

struct Request {
  std::string method, path;
  std::vector<http::Header> headers;
};

Request MakeRequest(const BenchConfig& cfg, std::string method, std::string path,
                    std::string_view payload_hash) {
  Request r{std::move(method), std::move(path), {}};
  r.headers.push_back({"host", cfg.host + ":" + std::to_string(cfg.port)});
  if (cfg.sign) {
    s3::SignParams p;
    p.method = r.method;
    p.raw_path = r.path;
    p.payload_hash = payload_hash;
    p.now_unix_s = UnixSeconds();
    s3::SignRequest(p, {cfg.access_key, cfg.secret_key}, &r.headers);
  }
  return r;
}

std::string ObjectPath(const BenchConfig& cfg, int i) {
  return "/" + cfg.bucket + "/" +
         UriEncode(cfg.prefix + std::to_string(i), SlashEncoding::kKeepSlash);
}

struct WorkerStats {
  std::vector<double> latencies_ms;
  uint64_t ops = 0, bytes = 0, errors = 0;
  std::string first_error;
};

int RunLoad(const BenchConfig& cfg) {
  std::vector<std::string> payloads;
  if (cfg.op == "put") {
    // Pre-generate the objects so data generation is not part of the measurement.
    payloads.resize(static_cast<size_t>(std::min(cfg.objects, cfg.concurrency * 2)));
    for (size_t i = 0; i < payloads.size(); ++i) {
      FillObject(cfg.seed, static_cast<int>(i), &payloads[i], cfg.size);
    }
    if (cfg.sign) {  // make sure the bucket exists
      http::HttpConnection conn(cfg.host, cfg.port, 60'000, cfg.tls);
      Request r = MakeRequest(cfg, "PUT", "/" + cfg.bucket, s3::kEmptySha256Hex);
      auto resp = conn.Send(r.method, r.path, r.headers, "");
      if (!resp.ok()) {
        std::fprintf(stderr, "bench: %s\n", resp.error().ToString().c_str());
        return 1;
      }
      if (resp->status != 200 && resp->body.find("BucketAlreadyOwnedByYou") == std::string::npos) {
        std::fprintf(stderr, "bench: cannot create bucket %s: HTTP %d %s\n", cfg.bucket.c_str(),
                     resp->status, resp->body.c_str());
        return 1;
      }
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<int> next_once{0};
  std::vector<WorkerStats> stats(static_cast<size_t>(cfg.concurrency));
  double cpu0 = CpuSecondsOfSelf(), server0 = CpuSecondsOfPid(cfg.server_pid);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < cfg.concurrency; ++w) {
    threads.emplace_back([&, w] {
      WorkerStats& st = stats[static_cast<size_t>(w)];
      http::HttpConnection conn(cfg.host, cfg.port, 60'000, cfg.tls);
      uint64_t rng = static_cast<uint64_t>(w) * 7919 + 17;
      struct SignedGet {
        int64_t unix_s = -1;
        Request request;
      };
      std::vector<SignedGet> signed_gets(static_cast<size_t>(cfg.objects));
      int iter = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        int index;
        if (cfg.once) {
          index = next_once.fetch_add(1);
          if (index >= cfg.objects) break;
        } else if (cfg.op == "put") {
          index = w + cfg.concurrency * (iter % std::max(1, cfg.objects / cfg.concurrency));
        } else {
          rng = rng * 6364136223846793005ull + 1442695040888963407ull;
          index = static_cast<int>((rng >> 33) % static_cast<uint64_t>(cfg.objects));
        }
        ++iter;
        auto start = std::chrono::steady_clock::now();
        Result<http::ClientResponse> resp = Status(Code::kInternal, "unset");
        uint64_t got = 0;
        if (cfg.op == "put") {
          const std::string& body = payloads[static_cast<size_t>(index) % payloads.size()];
          Request r = MakeRequest(cfg, "PUT", ObjectPath(cfg, index), s3::kUnsignedPayload);
          resp = conn.Send(r.method, r.path, r.headers, body);
          got = body.size();
        } else {
          // A signed GET stays valid for the rest of its second, so each worker re-sends it
          // instead of signing again: on a 2-core machine shared with the server, per-request
          // client signing would otherwise be measured as server slowness. The server still
          // verifies every signature in full.
          int64_t now = UnixSeconds();
          SignedGet& cached = signed_gets[static_cast<size_t>(index)];
          if (cached.unix_s != now || !cfg.sign) {
            cached.request = MakeRequest(cfg, "GET", ObjectPath(cfg, index), s3::kEmptySha256Hex);
            cached.unix_s = now;
          }
          const Request& r = cached.request;
          resp =
              conn.Send(r.method, r.path, r.headers, "", [&](const char*, size_t n) { got += n; });
        }
        double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (!resp.ok() || resp->status / 100 != 2 || (cfg.op == "get" && got != cfg.size)) {
          if (st.errors++ == 0) {
            st.first_error =
                resp.ok() ? "HTTP " + std::to_string(resp->status) + " " + resp->body.substr(0, 200)
                          : resp.error().ToString();
          }
          if (st.errors > 100) break;
          continue;
        }
        st.ops++;
        st.bytes += got;
        st.latencies_ms.push_back(ms);
      }
    });
  }
  if (!cfg.once) {
    std::this_thread::sleep_for(std::chrono::duration<double>(cfg.duration_s));
    stop = true;
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = CpuSecondsOfSelf() - cpu0;
  double server_cpu = CpuSecondsOfPid(cfg.server_pid) - server0;
  std::vector<double> all;
  uint64_t ops = 0, bytes = 0, errors = 0;
  std::string first_error;
  for (auto& s : stats) {
    all.insert(all.end(), s.latencies_ms.begin(), s.latencies_ms.end());
    ops += s.ops;
    bytes += s.bytes;
    errors += s.errors;
    if (first_error.empty()) first_error = s.first_error;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf(
      "{\"op\":\"%s\",\"size_bytes\":%llu,\"concurrency\":%d,\"ops\":%llu,\"errors\":%llu,"
      "\"seconds\":%.3f,\"ops_per_s\":%.1f,\"gbps\":%.4f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"client_cpu_s\":%.3f,\"server_cpu_s\":%.3f}\n",
      cfg.op.c_str(), static_cast<unsigned long long>(cfg.size), cfg.concurrency,
      static_cast<unsigned long long>(ops), static_cast<unsigned long long>(errors), secs,
      static_cast<double>(ops) / secs, static_cast<double>(bytes) / secs / 1e9, pct(0.5), pct(0.99),
      cpu, server_cpu);
  if (errors)
    std::fprintf(stderr, "bench: %llu errors; first: %s\n", static_cast<unsigned long long>(errors),
                 first_error.c_str());
  return ops == 0 ? 1 : 0;
}

int FillDir(const BenchConfig& cfg) {
  std::string dir = cfg.dir + "/" + cfg.bucket;
  ::mkdir(cfg.dir.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::string data;
  for (int i = 0; i < cfg.objects; ++i) {
    FillObject(cfg.seed, i % std::max(1, std::min(cfg.objects, cfg.concurrency * 2)), &data,
               cfg.size);
    std::ofstream out(dir + "/" + cfg.prefix + std::to_string(i), std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) {
      std::fprintf(stderr, "bench: cannot write %s\n", dir.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int RunBench(int argc, char** argv) {
  if (argc >= 1 && std::strcmp(argv[0], "transfer") == 0) return RunBenchTransfer(argc, argv);
  if (argc >= 1 && std::strcmp(argv[0], "index") == 0) return RunBenchIndex(argc - 1, argv + 1);
  if (argc >= 1 && std::strcmp(argv[0], "gpu") == 0) return RunBenchGpu(argc - 1, argv + 1);
  if (argc >= 1 && std::strcmp(argv[0], "milvus") == 0) return RunBenchMilvus(argc - 1, argv + 1);
  if (argc < 1 || std::strcmp(argv[0], "s3") != 0) {
    std::fputs(kBenchHelp, argc >= 1 && !std::strcmp(argv[0], "--help") ? stdout : stderr);
    return argc >= 1 && !std::strcmp(argv[0], "--help") ? 0 : 2;
  }
  BenchConfig cfg;
  EnvCredentials(&cfg.access_key, &cfg.secret_key);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto num = [&](const std::string& s) -> uint64_t {
      auto v = ParseSize(s);
      if (!v) {
        std::fprintf(stderr, "bench: bad number for %s: %s\n", a.c_str(), s.c_str());
        std::exit(2);
      }
      return *v;
    };
    if (a == "--help") {
      std::fputs(kBenchHelp, stdout);
      return 0;
    } else if (a == "--endpoint") {
      std::string url = val();
      cfg.https = url.starts_with("https://");
      if (cfg.https) {
        url = url.substr(8);
      } else if (url.starts_with("http://")) {
        url = url.substr(7);
      }
      while (!url.empty() && url.back() == '/') url.pop_back();
      size_t colon = url.rfind(':');
      if (colon == std::string::npos) {
        cfg.host = url;
        cfg.port = cfg.https ? 443 : 80;
      } else {
        cfg.host = url.substr(0, colon);
        cfg.port = static_cast<uint16_t>(num(url.substr(colon + 1)));
      }
    } else if (a == "--ca-bundle") {
      cfg.ca_file = val();
    } else if (a == "--access-key")
      cfg.access_key = val();
    else if (a == "--secret-key")
      cfg.secret_key = val();
    else if (a == "--no-sign")
      cfg.sign = false;
    else if (a == "--bucket")
      cfg.bucket = val();
    else if (a == "--prefix")
      cfg.prefix = val();
    else if (a == "--op")
      cfg.op = val();
    else if (a == "--dir")
      cfg.dir = val();
    else if (a == "--size")
      cfg.size = num(val());
    else if (a == "--objects")
      cfg.objects = static_cast<int>(num(val()));
    else if (a == "--concurrency")
      cfg.concurrency = static_cast<int>(num(val()));
    else if (a == "--duration")
      cfg.duration_s = std::stod(val());
    else if (a == "--once")
      cfg.once = true;
    else if (a == "--server-pid")
      cfg.server_pid = static_cast<int>(num(val()));
    else if (a == "--seed")
      cfg.seed = num(val());
    else {
      std::fprintf(stderr, "bench: unknown flag %s\n%s", a.c_str(), kBenchHelp);
      return 2;
    }
  }
  if (cfg.https) {
    if (cfg.ca_file.empty()) {
      if (const char* v = std::getenv("VLAKE_CA_BUNDLE")) cfg.ca_file = v;
    }
    auto tls = http::TlsContext::ForClient(cfg.ca_file, http::PeerVerification::kVerify);
    if (!tls.ok()) {
      std::fprintf(stderr, "bench: %s\n", tls.error().message().c_str());
      return 2;
    }
    cfg.tls = std::move(*tls);
  }
  if (cfg.objects < 1 || cfg.concurrency < 1) {
    std::fprintf(stderr, "bench: --objects and --concurrency must be >= 1\n");
    return 2;
  }
  if (cfg.op == "fill-dir") {
    if (cfg.dir.empty()) {
      std::fprintf(stderr, "bench: fill-dir needs --dir\n");
      return 2;
    }
    return FillDir(cfg);
  }
  if (cfg.op != "put" && cfg.op != "get") {
    std::fprintf(stderr, "bench: --op must be put, get or fill-dir\n");
    return 2;
  }
  if (cfg.sign && (cfg.access_key.empty() || cfg.secret_key.empty())) {
    std::fprintf(stderr, "bench: credentials needed (--access-key/--secret-key) or --no-sign\n");
    return 2;
  }
  return RunLoad(cfg);
}

}  // namespace vlake::app

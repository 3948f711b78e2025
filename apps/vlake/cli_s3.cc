// `vlake cp|ls|rm|mb`: an S3 command-line client on the client SDK, with --direct for the
// direct data path of a vlake storage node.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/credentials.h"
#include "apps/vlake/commands.h"
#include "common/encoding.h"
#include "common/fd.h"
#include "s3/users.h"
#include "vlake/client.h"

namespace vlake::app {
namespace {

constexpr char kCliHelp[] = R"(Usage:
  vlake cp SRC DST [flags]     copy a local file to s3://BUCKET/KEY or back
  vlake ls [s3://BUCKET[/PREFIX]] [flags]
                               list buckets, or objects and prefixes under PREFIX
  vlake rm s3://BUCKET/KEY     delete an object
  vlake mb s3://BUCKET         create a bucket

Flags:
  --endpoint URL        S3 endpoint, http:// or https:// (env VLAKE_ENDPOINT,
                        AWS_ENDPOINT_URL; default http://127.0.0.1:9000)
  --ca-bundle FILE      PEM certificates to trust for https:// (env VLAKE_CA_BUNDLE,
                        AWS_CA_BUNDLE; default the system's store); the server's
                        certificate and host name are always verified
  --direct              move object bytes over the direct data path (x-amz-rdma-token):
                        the storage node writes into / reads from this process's memory;
                        falls back to the HTTP body when the server declines
  --require-direct      like --direct, but fail instead of falling back
  --transports TLS      UCX transports for --direct: shm, tcp, or a UCX_TLS list
  --streams N           parallel ranges / parts (default 4)
  --part-size BYTES     multipart part size (default 64 MiB)
  --quiet               no progress bar (it is shown only when stdout is a terminal)

Credentials: VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
else the first user of --data DIR/credentials.json (default ./vlake-data, what `vlake serve`
generates).
)";

struct CliConfig {
  client::ClientOptions client;
  std::string data_dir = "./vlake-data";
  bool quiet = false;
  std::vector<std::string> args;
};

bool ParseS3Url(const std::string& url, std::string* bucket, std::string* key) {
  if (!url.starts_with("s3://")) return false;
  std::string rest = url.substr(5);
  size_t slash = rest.find('/');
  *bucket = rest.substr(0, slash);
  *key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  return !bucket->empty();
}

class Progress {
 public:
  Progress(uint64_t total, bool enabled) : total_(total), enabled_(enabled && isatty(1)) {}
  void Update(uint64_t done) {
    if (!enabled_) return;
    double secs = Seconds();
    double pct = total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100;
    int bar = static_cast<int>(pct / 4);
    std::printf("\r[%-25s] %5.1f%%  %.2f GB/s", std::string(bar, '#').c_str(), pct,
                secs > 0 ? static_cast<double>(done) / secs / 1e9 : 0.0);
    std::fflush(stdout);
  }
  void Done(uint64_t done) {
    Update(done);
    if (enabled_) std::printf("\n");
  }
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "vlake: %s: %s\n", what.c_str(), st.ToString().c_str());
  return 1;
}

Status ReadFull(int fd, char* buf, uint64_t n, uint64_t offset) {
  for (uint64_t got = 0; got < n;) {
    ssize_t r = pread(fd, buf + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("read", errno);
    if (r == 0) return Error(Code::kIoError, "file shrank while reading");
    got += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const char* buf, uint64_t n, uint64_t offset) {
  for (uint64_t put = 0; put < n;) {
    ssize_t r = pwrite(fd, buf + put, n - put, static_cast<off_t>(offset + put));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("write", errno);
    put += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

bool Direct(const CliConfig& cfg) { return cfg.client.direct != client::DirectMode::kOff; }

int Upload(client::Client& c, const CliConfig& cfg, const std::string& path,
           const std::string& bucket, std::string key) {
  if (key.empty() || key.ends_with("/")) key += path.substr(path.rfind('/') + 1);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Fail("open " + path, ErrnoStatus("open", errno));
  struct stat st;
  fstat(fd.get(), &st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t part = cfg.client.part_size_bytes;
  int streams = cfg.client.parallel_streams;
  uint64_t window = size <= part ? std::max<uint64_t>(size, 1) : part * streams;
  std::unique_ptr<client::Region> region;
  std::string buffer;
  char* mem = nullptr;
  if (Direct(cfg)) {
    auto r = c.AllocateRegion(std::min(window, std::max<uint64_t>(size, 1)));
    if (!r.ok()) return Fail("register memory", r.error());
    region = std::move(*r);
    mem = region->data();
  } else {
    buffer.resize(std::min(window, std::max<uint64_t>(size, 1)));
    mem = buffer.data();
  }
  Progress progress(size, !cfg.quiet);
  bool direct_used = false;
  if (size <= part) {
    if (Status s = ReadFull(fd.get(), mem, size, 0); !s.ok()) return Fail("read " + path, s);
    auto r = region ? c.PutFrom(bucket, key, *region, size)
                    : c.Put(bucket, key, std::string_view(mem, size));
    if (!r.ok()) return Fail("upload", r.error());
    direct_used = r->direct;
  } else {
    auto id = c.CreateMultipartUpload(bucket, key);
    if (!id.ok()) return Fail("upload", id.error());
    std::vector<client::CompletedPart> parts;
    direct_used = true;
    for (uint64_t base = 0; base < size; base += window) {
      uint64_t n = std::min(window, size - base);
      if (Status s = ReadFull(fd.get(), mem, n, base); !s.ok()) return Fail("read " + path, s);
      int count = static_cast<int>((n + part - 1) / part);
      std::vector<Result<client::PutResult>> results(count, Error(Code::kInternal, ""));
      std::vector<std::thread> threads;
      for (int i = 0; i < count; ++i) {
        threads.emplace_back([&, i] {
          uint64_t off = static_cast<uint64_t>(i) * part;
          uint64_t len = std::min(part, n - off);
          int number = static_cast<int>(base / part) + i + 1;
          results[i] =
              region ? c.UploadPartFrom(bucket, key, *id, number, *region, len, off)
                     : c.UploadPart(bucket, key, *id, number, std::string_view(mem + off, len));
        });
      }
      for (auto& t : threads) t.join();
      for (int i = 0; i < count; ++i) {
        if (!results[i].ok()) {
          (void)c.AbortMultipartUpload(bucket, key, *id);
          return Fail("upload part", results[i].error());
        }
        parts.push_back({static_cast<int>(base / part) + i + 1, results[i]->etag});
        direct_used = direct_used && results[i]->direct;
      }
      progress.Update(base + n);
    }
    auto done = c.CompleteMultipartUpload(bucket, key, *id, parts);
    if (!done.ok()) return Fail("complete upload", done.error());
  }
  progress.Done(size);
  std::fprintf(stderr, "upload: %s -> s3://%s/%s (%llu bytes, %s, %.3f s)\n", path.c_str(),
               bucket.c_str(), key.c_str(), static_cast<unsigned long long>(size),
               direct_used ? "direct" : "http", progress.Seconds());
  return 0;
}

int Download(client::Client& c, const CliConfig& cfg, const std::string& bucket,
             const std::string& key, std::string path) {
  if (path.ends_with("/") || path == ".") {
    path.push_back('/');  // two appends: GCC 12 -O3 flags "/" + string with a false -Wrestrict
    path.append(key, key.rfind('/') + 1);
  }
  auto info = c.Head(bucket, key);
  if (!info.ok()) return Fail("s3://" + bucket + "/" + key, info.error());
  uint64_t size = info->size;
  std::string tmp = path + ".vlake-partial";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Fail("create " + tmp, ErrnoStatus("open", errno));
  Progress progress(size, !cfg.quiet);
  bool direct_used = false;
  if (Direct(cfg)) {
    uint64_t window = std::max<uint64_t>(
        1, std::min(size, cfg.client.part_size_bytes * cfg.client.parallel_streams));
    auto region = c.AllocateRegion(window);
    if (!region.ok()) return Fail("register memory", region.error());
    direct_used = true;
    for (uint64_t base = 0; base < size || (size == 0 && base == 0); base += window) {
      uint64_t n = std::min(window, size - base);
      auto got = c.GetInto(bucket, key, **region,
                           size == 0 ? std::nullopt : std::optional<client::ByteRange>({base, n}));
      if (!got.ok()) return Fail("download", got.error());
      if (got->bytes != n) return Fail("download", Error(Code::kIoError, "short transfer"));
      direct_used = direct_used && got->direct;
      if (Status s = WriteFull(fd.get(), (*region)->data(), n, base); !s.ok()) {
        return Fail("write " + tmp, s);
      }
      progress.Update(base + n);
      if (size == 0) break;
    }
  } else {
    uint64_t done = 0;
    auto got = c.GetToSink(bucket, key, [&](const char* p, size_t n) -> Status {
      VLAKE_RETURN_IF_ERROR(WriteFull(fd.get(), p, n, done));
      done += n;
      progress.Update(done);
      return Status::Ok();
    });
    if (!got.ok()) return Fail("download", got.error());
    if (done != size) return Fail("download", Error(Code::kIoError, "short body"));
  }
  if (fsync(fd.get()) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    return Fail("finish " + path, ErrnoStatus("rename", errno));
  }
  progress.Done(size);
  std::fprintf(stderr, "download: s3://%s/%s -> %s (%llu bytes, %s, %.3f s)\n", bucket.c_str(),
               key.c_str(), path.c_str(), static_cast<unsigned long long>(size),
               direct_used ? "direct" : "http", progress.Seconds());
  return 0;
}

int Ls(client::Client& c, const CliConfig& cfg) {
  if (cfg.args.empty()) {
    auto buckets = c.ListBuckets();
    if (!buckets.ok()) return Fail("ls", buckets.error());
    for (const auto& b : *buckets) std::printf("s3://%s\n", b.c_str());
    return 0;
  }
  std::string bucket, prefix;
  if (!ParseS3Url(cfg.args[0], &bucket, &prefix)) {
    std::fprintf(stderr, "vlake ls: expected s3://BUCKET[/PREFIX]\n");
    return 2;
  }
  std::string token;
  do {
    auto page = c.List(bucket, prefix, "/", token);
    if (!page.ok()) return Fail("ls", page.error());
    for (const auto& p : page->common_prefixes) std::printf("%28s PRE %s\n", "", p.c_str());
    for (const auto& o : page->objects) {
      std::printf("%s %12llu %s\n", o.last_modified.c_str(),
                  static_cast<unsigned long long>(o.size), o.key.c_str());
    }
    token = page->next_continuation_token;
  } while (!token.empty());
  return 0;
}

}  // namespace

int RunS3Cli(const std::string& cmd, int argc, char** argv) {
  CliConfig cfg;
  if (const char* v = std::getenv("VLAKE_ENDPOINT")) {
    cfg.client.endpoint = v;
  } else if (const char* a = std::getenv("AWS_ENDPOINT_URL")) {
    cfg.client.endpoint = a;
  }
  if (const char* v = std::getenv("VLAKE_CA_BUNDLE")) {
    cfg.client.ca_file = v;
  } else if (const char* a = std::getenv("AWS_CA_BUNDLE")) {
    cfg.client.ca_file = a;
  }
  cfg.client.direct = client::DirectMode::kOff;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vlake %s: %s needs a value\n", cmd.c_str(), a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kCliHelp, stdout);
      return 0;
    } else if (a == "--endpoint") {
      cfg.client.endpoint = val();
    } else if (a == "--ca-bundle") {
      cfg.client.ca_file = val();
    } else if (a == "--direct") {
      cfg.client.direct = client::DirectMode::kAuto;
    } else if (a == "--require-direct") {
      cfg.client.direct = client::DirectMode::kRequire;
    } else if (a == "--transports") {
      cfg.client.direct_transports = val();
    } else if (a == "--streams") {
      cfg.client.parallel_streams = std::max(1, std::atoi(val().c_str()));
    } else if (a == "--part-size") {
      auto n = ParseUint64(val());
      if (!n || *n < (5u << 20)) {
        std::fprintf(stderr, "vlake %s: --part-size must be at least 5 MiB\n", cmd.c_str());
        return 2;
      }
      cfg.client.part_size_bytes = *n;
    } else if (a == "--data") {
      cfg.data_dir = val();
    } else if (a == "--quiet" || a == "-q") {
      cfg.quiet = true;
    } else if (a.starts_with("--")) {
      std::fprintf(stderr, "vlake %s: unknown flag %s\n\n%s", cmd.c_str(), a.c_str(), kCliHelp);
      return 2;
    } else {
      cfg.args.push_back(a);
    }
  }
  cfg.client.parallel_threshold_bytes = cfg.client.part_size_bytes;
  if (!CliCredentials(cfg.data_dir, &cfg.client.access_key, &cfg.client.secret_key)) {
    std::fprintf(stderr,
                 "vlake %s: no credentials: set VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY or point "
                 "--data at a folder with credentials.json\n",
                 cmd.c_str());
    return 2;
  }
  auto c = client::Client::Create(cfg.client);
  if (!c.ok()) return Fail(cmd, c.error());
  client::Client& cl = **c;

  std::string bucket, key;
  if (cmd == "ls") return Ls(cl, cfg);
  if (cmd == "mb" || cmd == "rm") {
    if (cfg.args.size() != 1 || !ParseS3Url(cfg.args[0], &bucket, &key) ||
        (cmd == "rm" && key.empty())) {
      std::fputs(kCliHelp, stderr);
      return 2;
    }
    Status st = cmd == "mb" ? cl.CreateBucket(bucket) : cl.Delete(bucket, key);
    if (!st.ok()) return Fail(cmd, st);
    std::printf("%s: %s\n", cmd == "mb" ? "make_bucket" : "delete", cfg.args[0].c_str());
    return 0;
  }
  if (cmd == "cp") {
    if (cfg.args.size() != 2) {
      std::fputs(kCliHelp, stderr);
      return 2;
    }
    const std::string& src = cfg.args[0];
    const std::string& dst = cfg.args[1];
    if (ParseS3Url(dst, &bucket, &key) && !src.starts_with("s3://")) {
      return Upload(cl, cfg, src, bucket, key);
    }
    if (ParseS3Url(src, &bucket, &key) && !dst.starts_with("s3://") && !key.empty()) {
      return Download(cl, cfg, bucket, key, dst);
    }
    std::fprintf(stderr, "vlake cp: copy between a local file and s3://BUCKET/KEY\n");
    return 2;
  }
  std::fputs(kCliHelp, stderr);
  return 2;
}

}  // namespace vlake::app

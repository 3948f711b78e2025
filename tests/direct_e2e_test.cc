// The direct data path end to end: a real `vlake serve` process, the client SDK over UCX shared
// memory and tcp, and hand-made requests for the protocol's edges.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/testing.h"
#include "http/client.h"
#include "rdma/token.h"
#include "rdma/ucx_address.h"
#include "rdma/ucx_client.h"
#include "s3/sigv4.h"
#include "vlake/client.h"

namespace vlake {
namespace {

constexpr char kAccess[] = "directtestkey";
constexpr char kSecret[] = "directtestsecret";

// A storage node child process on 127.0.0.1:<free port>, stopped by PID.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra = {}) {
    const char* bin = std::getenv("VLAKE_BIN");
    if (!bin) bin = "vlake";
    int out[2];
    if (pipe(out) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      std::string log = dir_.path() + "/server.log";
      FILE* f = std::fopen(log.c_str(), "w");
      if (f) dup2(fileno(f), 2);
      setenv("VLAKE_ACCESS_KEY", kAccess, 1);
      setenv("VLAKE_SECRET_KEY", kSecret, 1);
      std::vector<std::string> args = {bin,
                                       "serve",
                                       "--listen",
                                       "127.0.0.1:0",
                                       "--data",
                                       dir_.path() + "/data",
                                       "--no-vectordb"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin, argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    std::regex endpoint(R"(endpoint:\s+http://127\.0\.0\.1:(\d+))");
    std::smatch m;
    while (!std::regex_search(text, m, endpoint)) {
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    if (std::regex_search(text, m, endpoint)) port_ = std::stoi(m[1]);
    // Keep draining stdout in the background so the server never blocks on it.
    drain_ = std::thread([fd = out[0]] {
      char b[4096];
      while (read(fd, b, sizeof(b)) > 0) {
      }
      close(fd);
    });
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (drain_.joinable()) drain_.join();
  }
  bool alive() const { return pid_ > 0 && kill(pid_, 0) == 0; }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream f(dir_.path() + "/server.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  const std::string& dir() const { return dir_.path(); }

 private:
  testing::TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::thread drain_;
};

client::ClientOptions Options(const ServerProcess& s, const std::string& transports) {
  client::ClientOptions o;
  o.endpoint = s.endpoint();
  o.access_key = kAccess;
  o.secret_key = kSecret;
  o.direct = client::DirectMode::kRequire;
  o.direct_transports = transports;
  return o;
}

std::unique_ptr<client::Client> NewClient(const client::ClientOptions& o) {
  auto c = client::Client::Create(o);
  if (!c.ok()) std::abort();
  return std::move(*c);
}

// Signs and sends one request with the given extra headers (raw protocol tests).
struct Raw {
  std::string method = "GET";
  std::string path;
  std::string query;
  std::vector<http::Header> headers;
  std::string body;
  std::string_view payload_hash = s3::kUnsignedPayload;
  bool sign_token = true;  // include x-amz-rdma-token in SignedHeaders
};

std::vector<http::Header> SignRaw(const ServerProcess& s, const Raw& r) {
  std::vector<http::Header> headers = {{"host", "127.0.0.1:" + std::to_string(s.port())}};
  std::vector<http::Header> unsigned_extra;
  for (const auto& h : r.headers) {
    if (!r.sign_token && h.name == rdma::kTokenHeader) {
      unsigned_extra.push_back(h);
    } else {
      headers.push_back(h);
    }
  }
  s3::SignParams p;
  p.method = r.method;
  p.raw_path = r.path;
  p.raw_query = r.query;
  p.payload_hash = r.payload_hash;
  p.now_unix_s = UnixSeconds();
  s3::SignRequest(p, {kAccess, kSecret}, &headers);
  headers.insert(headers.end(), unsigned_extra.begin(), unsigned_extra.end());
  return headers;
}

http::ClientResponse SendRaw(const ServerProcess& s, const Raw& r,
                             std::vector<http::Header>* signed_out = nullptr) {
  http::HttpConnection conn("127.0.0.1", static_cast<uint16_t>(s.port()));
  auto headers = SignRaw(s, r);
  if (signed_out) *signed_out = headers;
  auto resp = conn.Send(r.method, r.path + (r.query.empty() ? "" : "?" + r.query), headers, r.body);
  EXPECT_OK(resp);
  return resp.ok() ? *resp : http::ClientResponse{};
}

std::string HeaderOr(const http::ClientResponse& r, std::string_view name) {
  const std::string* v = r.FindHeader(name);
  return v ? *v : "";
}

std::string ErrorCode(const http::ClientResponse& r) {
  std::smatch m;
  std::regex code("<Code>([^<]*)</Code>");
  return std::regex_search(r.body, m, code) ? std::string(m[1]) : "";
}

// One storage node process per test suite (each instantiation of Base gets its own).
template <typename Base>
class WithServer : public Base {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};
template <typename Base>
ServerProcess* WithServer<Base>::server_ = nullptr;

class DirectE2eTest : public WithServer<::testing::TestWithParam<const char*>> {
 protected:
  void SetUp() override {
    ASSERT_GT(server_->port(), 0) << server_->log();
    client_ = NewClient(Options(*server_, GetParam()));
    Status st = client_->CreateBucket("direct");
    ASSERT_TRUE(st.ok() || st.code() == Code::kBucketAlreadyOwnedByYou) << st.ToString();
  }
  std::unique_ptr<client::Client> client_;
};

TEST_P(DirectE2eTest, PutAndGetAreByteExactForEverySize) {
  for (uint64_t size :
       {uint64_t{0}, uint64_t{1}, uint64_t{4096}, uint64_t{(5 << 20) + 1}, uint64_t{64 << 20}}) {
    SCOPED_TRACE(size);
    std::string data = testing::RandomData(size, size + 1);
    auto src = client_->AllocateRegion(std::max<uint64_t>(size, 1));
    ASSERT_OK(src);
    std::memcpy((*src)->data(), data.data(), size);
    std::string key = std::string(GetParam()) + "/obj-" + std::to_string(size);
    auto put = client_->PutFrom("direct", key, **src, size);
    ASSERT_OK(put);
    EXPECT_TRUE(put->direct);
    // What the server stored, read back over plain HTTP.
    auto body = client_->Get("direct", key);
    ASSERT_OK(body);
    ASSERT_TRUE(*body == data);
    if (size <= (64u << 20) && put->etag.find('-') == std::string::npos) {
      EXPECT_EQ(put->etag, HexEncode(Md5Digest(data)));  // the same ETag as a normal PUT
    }
    auto dst = client_->AllocateRegion(std::max<uint64_t>(size, 1) + 64);
    ASSERT_OK(dst);
    std::memset((*dst)->data(), 0x77, (*dst)->size());
    auto got = client_->GetInto("direct", key, **dst);
    ASSERT_OK(got);
    EXPECT_TRUE(got->direct);
    EXPECT_EQ(got->bytes, size);
    ASSERT_TRUE(std::string((*dst)->data(), size) == data);
    EXPECT_EQ((*dst)->data()[size], 0x77);  // nothing written past the object
  }
}

TEST_P(DirectE2eTest, RangedGetMovesOnlyTheRange) {
  std::string data = testing::RandomData((5 << 20) + 1, 11);
  ASSERT_OK(client_->Put("direct", "ranged", data));
  auto dst = client_->AllocateRegion(1 << 20);
  ASSERT_OK(dst);
  auto got = client_->GetInto("direct", "ranged", **dst, client::ByteRange{4095, 100000});
  ASSERT_OK(got);
  EXPECT_TRUE(got->direct);
  EXPECT_EQ(got->bytes, 100000u);
  EXPECT_TRUE(std::string((*dst)->data(), 100000) == data.substr(4095, 100000));
  // Suffix-to-end of a range past the region's size is refused before anything moves.
  std::memset((*dst)->data(), 0x11, (*dst)->size());
  auto too_big = client_->GetInto("direct", "ranged", **dst, client::ByteRange{0, 2 << 20});
  EXPECT_CODE(too_big, Code::kInvalidRdmaToken);
  EXPECT_EQ((*dst)->data()[0], 0x11);
}

TEST_P(DirectE2eTest, MultipartPartsGoDirectAndPartNumberGetToo) {
  client::ClientOptions o = Options(*server_, GetParam());
  o.parallel_threshold_bytes = 8 << 20;
  o.part_size_bytes = 5 << 20;
  auto c = NewClient(o);
  uint64_t size = 64 << 20;
  std::string data = testing::RandomData(size, 21);
  auto src = c->AllocateRegion(size);
  ASSERT_OK(src);
  std::memcpy((*src)->data(), data.data(), size);
  auto put = c->PutFrom("direct", "multi", **src, size);
  ASSERT_OK(put);
  EXPECT_TRUE(put->direct);
  EXPECT_NE(put->etag.find("-13"), std::string::npos) << put->etag;  // 13 parts of 5 MiB
  auto dst = c->AllocateRegion(size);
  ASSERT_OK(dst);
  auto got = c->GetInto("direct", "multi", **dst);  // parallel ranged transfers
  ASSERT_OK(got);
  EXPECT_TRUE(got->direct);
  EXPECT_GT(got->requests, 2);
  ASSERT_TRUE(std::string((*dst)->data(), size) == data);

  // GET ?partNumber=2 with a token: the part's bytes, 206.
  auto plane = rdma::ClientPlane::Create({GetParam()});
  ASSERT_OK(plane);
  auto region = (*plane)->Allocate(5 << 20);
  ASSERT_OK(region);
  auto token = (*plane)->MakeToken(**region, 0, 5 << 20);
  ASSERT_OK(token);
  Raw r;
  r.path = "/direct/multi";
  r.query = "partNumber=2";
  r.headers = {{"x-amz-rdma-token", *token}};
  auto resp = SendRaw(*server_, r);
  EXPECT_EQ(resp.status, 206) << resp.body;
  EXPECT_EQ(HeaderOr(resp, "x-amz-rdma-reply"), "206");
  EXPECT_EQ(HeaderOr(resp, "x-amz-rdma-bytes-transferred"), std::to_string(5 << 20));
  EXPECT_EQ(HeaderOr(resp, "content-length"), "0");
  EXPECT_EQ(resp.body_bytes, 0u);
  EXPECT_TRUE(std::string((*region)->data(), 5 << 20) == data.substr(5 << 20, 5 << 20));
}

TEST_P(DirectE2eTest, SixteenConcurrentTransfersWhileHttpKeepsServing) {
  auto c = client_.get();
  std::string http_data = testing::RandomData(1 << 20, 5);
  ASSERT_OK(c->Put("direct", "http-obj", http_data));
  std::atomic<int> failures{0}, http_ops{0};
  std::atomic<bool> stop{false};
  std::thread http([&] {
    auto plain = NewClient([&] {
      auto o = Options(*server_, GetParam());
      o.direct = client::DirectMode::kOff;
      return o;
    }());
    while (!stop.load()) {
      auto got = plain->Get("direct", "http-obj");
      if (!got.ok() || *got != http_data) failures++;
      http_ops++;
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 16; ++t) {
    workers.emplace_back([&, t] {
      uint64_t size = (2 << 20) + static_cast<uint64_t>(t);
      std::string data = testing::RandomData(size, 100 + t);
      auto src = c->AllocateRegion(size);
      auto dst = c->AllocateRegion(size);
      if (!src.ok() || !dst.ok()) {
        failures++;
        return;
      }
      std::memcpy((*src)->data(), data.data(), size);
      std::string key = "conc-" + std::to_string(t);
      for (int i = 0; i < 4; ++i) {
        auto put = c->PutFrom("direct", key, **src, size);
        auto got = c->GetInto("direct", key, **dst);
        if (!put.ok() || !got.ok() || !put->direct || !got->direct ||
            std::memcmp((*dst)->data(), data.data(), size) != 0) {
          failures++;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  stop.store(true);
  http.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(http_ops.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, DirectE2eTest, ::testing::Values("shm", "tcp"));

// ---- protocol edges (one server, shm) ----

class DirectProtocolTest : public WithServer<::testing::Test> {
 protected:
  void SetUp() override {
    ASSERT_GT(server_->port(), 0);
    client_ = NewClient(Options(*server_, "shm"));
    Status st = client_->CreateBucket("proto");
    ASSERT_TRUE(st.ok() || st.code() == Code::kBucketAlreadyOwnedByYou);
    data_ = testing::RandomData(100000, 9);
    ASSERT_OK(client_->Put("proto", "obj", data_));
    auto plane = rdma::ClientPlane::Create({"shm"});
    ASSERT_OK(plane);
    plane_ = std::move(*plane);
    auto region = plane_->Allocate(1 << 20);
    ASSERT_OK(region);
    region_ = std::move(*region);
    std::memset(region_->data(), 0x33, region_->size());
  }
  std::string Token(uint64_t length) { return *plane_->MakeToken(*region_, 0, length); }

  std::unique_ptr<client::Client> client_;
  std::string data_;
  std::unique_ptr<rdma::ClientPlane> plane_;
  std::unique_ptr<rdma::Region> region_;
};

TEST_F(DirectProtocolTest, MalformedTokenIs400) {
  for (const std::string& bad : std::vector<std::string>{
           "vlake1:AAAA", "vlake1:not base64!", "hello", "0123:4567", std::string(81, 'g')}) {
    Raw r;
    r.path = "/proto/obj";
    r.headers = {{"x-amz-rdma-token", bad}};
    auto resp = SendRaw(*server_, r);
    EXPECT_EQ(resp.status, 400) << bad;
    EXPECT_EQ(ErrorCode(resp), "InvalidRDMAToken") << bad;
  }
}

TEST_F(DirectProtocolTest, UnsignedTokenIsRefused) {
  Raw r;
  r.path = "/proto/obj";
  r.headers = {{"x-amz-rdma-token", Token(1 << 20)}};
  r.sign_token = false;
  auto resp = SendRaw(*server_, r);
  EXPECT_EQ(resp.status, 403);
  EXPECT_EQ(ErrorCode(resp), "AccessDenied");
  EXPECT_EQ(region_->data()[0], 0x33);
}

TEST_F(DirectProtocolTest, ReplayAfterCompletionIsRefused) {
  Raw r;
  r.path = "/proto/obj";
  r.headers = {{"x-amz-rdma-token", Token(1 << 20)}};
  std::vector<http::Header> signed_headers;
  auto first = SendRaw(*server_, r, &signed_headers);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_TRUE(std::string(region_->data(), data_.size()) == data_);
  std::memset(region_->data(), 0x44, region_->size());
  // The very same signed request again (a captured request replayed).
  http::HttpConnection conn("127.0.0.1", static_cast<uint16_t>(server_->port()));
  auto again = conn.Send("GET", r.path, signed_headers, "");
  ASSERT_OK(again);
  EXPECT_EQ(again->status, 400);
  EXPECT_EQ(ErrorCode(*again), "InvalidRDMAToken");
  EXPECT_EQ(region_->data()[0], 0x44);  // untouched
}

TEST_F(DirectProtocolTest, TooSmallRegionIs400BeforeAnyTransfer) {
  Raw r;
  r.path = "/proto/obj";
  r.headers = {{"x-amz-rdma-token", Token(data_.size() - 1)}};
  auto resp = SendRaw(*server_, r);
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(ErrorCode(resp), "InvalidRDMAToken");
  for (size_t i = 0; i < data_.size(); i += 997) ASSERT_EQ(region_->data()[i], 0x33);
}

constexpr char kCuObjectToken[] =
    "00007f3a2c000000:00100000:0001a2b3:0001:00abcd:1:fe800000000000000202c9fffe0a0b0c";

TEST_F(DirectProtocolTest, CuObjectTokenIsParsedAndDeclined) {
  Raw get;
  get.path = "/proto/obj";
  get.headers = {{"x-amz-rdma-token", kCuObjectToken}};
  auto resp = SendRaw(*server_, get);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(HeaderOr(resp, "x-amz-rdma-reply"), "501");
  EXPECT_TRUE(resp.body == data_);  // declined GET: the body as usual
  Raw put;
  put.method = "PUT";
  put.path = "/proto/cuobject";
  put.headers = {{"x-amz-rdma-token", kCuObjectToken}};
  auto presp = SendRaw(*server_, put);
  EXPECT_EQ(presp.status, 501);
  EXPECT_EQ(ErrorCode(presp), "RDMANotSupported");
  EXPECT_CODE(client_->Head("proto", "cuobject"), Code::kNoSuchKey);
  // A malformed cuObject-shaped token is a 400, not a decline.
  std::string bad = kCuObjectToken;
  bad[16] = '-';
  get.headers = {{"x-amz-rdma-token", bad}};
  EXPECT_EQ(SendRaw(*server_, get).status, 400);
}

// A CUDA IPC token (vlake-cuda-ipc1) is served only by a node with a GPU on the client's host;
// this node has none (CI, the developer machine), so it declines: the GET gets its body, a PUT
// 501, and a malformed one is a 400 as for every variant.
TEST_F(DirectProtocolTest, CudaIpcTokenIsDeclinedWithoutAGpu) {
  rdma::CudaIpcToken t;
  t.host_id = rdma::HostBootId();
  t.length = 1 << 20;
  std::string nonce = RandomBytes(16);
  std::memcpy(t.nonce.data(), nonce.data(), 16);
  t.expires_unix_ms = UnixMillis() + 60'000;
  std::string token = rdma::EncodeCudaIpcToken(t);
  if (server_->log().find("cuda-ipc for GPU memory") != std::string::npos) {
    GTEST_SKIP() << "this node serves CUDA IPC (it has a GPU)";
  }
  Raw get;
  get.path = "/proto/obj";
  get.headers = {{"x-amz-rdma-token", token}};
  auto resp = SendRaw(*server_, get);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(HeaderOr(resp, "x-amz-rdma-reply"), "501");
  EXPECT_TRUE(resp.body == data_);
  Raw put;
  put.method = "PUT";
  put.path = "/proto/ipc";
  put.headers = {{"x-amz-rdma-token", token}};
  auto presp = SendRaw(*server_, put);
  EXPECT_EQ(presp.status, 501);
  EXPECT_EQ(ErrorCode(presp), "RDMANotSupported");
  EXPECT_CODE(client_->Head("proto", "ipc"), Code::kNoSuchKey);
  std::string bad = token;
  bad[bad.size() - 6] = bad[bad.size() - 6] == 'A' ? 'B' : 'A';  // breaks the CRC
  get.headers = {{"x-amz-rdma-token", bad}};
  auto bresp = SendRaw(*server_, get);
  EXPECT_EQ(bresp.status, 400);
  EXPECT_EQ(ErrorCode(bresp), "InvalidRDMAToken");
}

TEST_F(DirectProtocolTest, DirectPutRulesAndChecksums) {
  std::string payload = testing::RandomData(5000, 4);
  std::memcpy(region_->data(), payload.data(), payload.size());
  // A body besides the token: refused.
  Raw withbody;
  withbody.method = "PUT";
  withbody.path = "/proto/p1";
  withbody.headers = {{"x-amz-rdma-token", Token(payload.size())}};
  withbody.body = "x";
  EXPECT_EQ(SendRaw(*server_, withbody).status, 400);
  // A checksum that does not match the region: BadDigest, nothing stored.
  Raw bad;
  bad.method = "PUT";
  bad.path = "/proto/p1";
  bad.headers = {{"x-amz-rdma-token", Token(payload.size())},
                 {"x-amz-checksum-crc32c", "AAAAAA=="}};
  auto resp = SendRaw(*server_, bad);
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(ErrorCode(resp), "BadDigest");
  EXPECT_CODE(client_->Head("proto", "p1"), Code::kNoSuchKey);
  // The empty-body hash is accepted like UNSIGNED-PAYLOAD; Content-MD5 is verified.
  Raw good;
  good.method = "PUT";
  good.path = "/proto/p1";
  good.payload_hash = s3::kEmptySha256Hex;
  good.headers = {{"x-amz-rdma-token", Token(payload.size())},
                  {"content-md5", Base64Encode(Md5Digest(payload))}};
  auto ok = SendRaw(*server_, good);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(HeaderOr(ok, "x-amz-rdma-reply"), "200");
  EXPECT_EQ(HeaderOr(ok, "etag"), "\"" + HexEncode(Md5Digest(payload)) + "\"");
  auto stored = client_->Get("proto", "p1");
  ASSERT_OK(stored);
  EXPECT_TRUE(*stored == payload);
}

TEST_F(DirectProtocolTest, ForgedAddressOutsideTheRegionIsRefused) {
  auto token = rdma::ParseUcxToken(Token(4096));
  ASSERT_OK(token);
  token->remote_addr += 64 << 20;  // past the 1 MiB segment
  Raw r;
  r.path = "/proto/obj";
  r.headers = {{"x-amz-rdma-token", rdma::EncodeUcxToken(*token)}};
  auto resp = SendRaw(*server_, r);
  EXPECT_EQ(resp.status, 400) << resp.body;
  EXPECT_TRUE(server_->alive());
}

// The server opens an endpoint only to the peer that sent the request: a token whose worker
// address names another host's tcp address (198.51.100.23, TEST-NET-2) is refused before UCX
// sees it, for GET and PUT, and nothing moves.
TEST_F(DirectProtocolTest, TokenNamingAnotherHostIsRefusedAndNothingMoves) {
  auto plane = rdma::ClientPlane::Create({"tcp"});
  ASSERT_OK(plane);
  std::vector<char> memory(1 << 20, 0x33);
  auto region = (*plane)->Register(memory.data(), memory.size());
  ASSERT_OK(region);
  auto token = rdma::ParseUcxToken(*(*plane)->MakeToken(**region, 0, memory.size()));
  ASSERT_OK(token);
  auto address = rdma::ParseUcxWorkerAddress(token->worker_address);
  ASSERT_OK(address);
  int replaced = 0;
  for (const rdma::UcxAddressEntry& e : address->entries) {
    if (!e.ip || e.ip->bytes.size() != 4) continue;
    // tcp device address: flags 0, AF_INET, then the 4 address bytes.
    std::string packed = std::string("\0\x02", 2) + e.ip->bytes;
    size_t at = token->worker_address.find(packed);
    ASSERT_NE(at, std::string::npos);
    token->worker_address.replace(at + 2, 4, std::string("\xc6\x33\x64\x17", 4));
    ++replaced;
  }
  if (replaced == 0) GTEST_SKIP() << "UCX tcp found no IPv4 interface here";
  ASSERT_OK(rdma::ParseUcxWorkerAddress(token->worker_address));
  const std::string forged = rdma::EncodeUcxToken(*token);

  Raw get;
  get.path = "/proto/obj";
  get.headers = {{"x-amz-rdma-token", forged}};
  auto resp = SendRaw(*server_, get);
  EXPECT_EQ(resp.status, 400) << resp.body;
  EXPECT_EQ(ErrorCode(resp), "InvalidRDMAToken");
  EXPECT_NE(resp.body.find("198.51.100.23"), std::string::npos) << resp.body;
  for (size_t i = 0; i < memory.size(); i += 4093) ASSERT_EQ(memory[i], 0x33);

  token->nonce[0] ^= 1;  // a fresh nonce: refused for the address, not as a replay
  Raw put;
  put.method = "PUT";
  put.path = "/proto/elsewhere";
  put.headers = {{"x-amz-rdma-token", rdma::EncodeUcxToken(*token)}};
  auto presp = SendRaw(*server_, put);
  EXPECT_EQ(presp.status, 400) << presp.body;
  EXPECT_EQ(ErrorCode(presp), "InvalidRDMAToken");
  EXPECT_CODE(client_->Get("proto", "elsewhere"), Code::kNoSuchKey);
  EXPECT_TRUE(server_->alive());
}

// Worker addresses and rkeys that are not what UCX packs are refused by vlake's own checks:
// before, a truncated address was walked past its end by UCX, and an unknown address version
// aborted the whole server (ucs_assertv_always).
TEST_F(DirectProtocolTest, MalformedWorkerAddressOrRkeyIs400AndTheServerLives) {
  auto good = rdma::ParseUcxToken(Token(4096));
  ASSERT_OK(good);
  std::vector<rdma::UcxToken> bad(5, *good);
  bad[0].worker_address.pop_back();                                               // truncated
  bad[1].worker_address[0] = static_cast<char>(bad[1].worker_address[0] | 0x0f);  // version 16
  bad[2].worker_address += "junk";                                                // trailing bytes
  bad[3].rkey.pop_back();                                                         // truncated rkey
  bad[4].rkey = std::string(9, '\0') + "x";  // no memory domain
  for (size_t i = 0; i < bad.size(); ++i) {
    bad[i].nonce[1] = static_cast<uint8_t>(i + 1);
    Raw r;
    r.path = "/proto/obj";
    r.headers = {{"x-amz-rdma-token", rdma::EncodeUcxToken(bad[i])}};
    auto resp = SendRaw(*server_, r);
    EXPECT_EQ(resp.status, 400) << i << " " << resp.body;
    EXPECT_EQ(ErrorCode(resp), "InvalidRDMAToken") << i;
  }
  for (size_t i = 0; i < 4096; i += 511) ASSERT_EQ(region_->data()[i], 0x33);
  EXPECT_TRUE(server_->alive());
  // The server still serves good tokens.
  Raw ok;
  ok.path = "/proto/obj";
  ok.headers = {{"x-amz-rdma-token", Token(1 << 20)}};
  EXPECT_EQ(SendRaw(*server_, ok).status, 200);
}

// A client killed in the middle of transfers: the server stays up and keeps serving.
TEST_F(DirectProtocolTest, ClientThatDisappearsMidTransfer) {
  const char* bin = std::getenv("VLAKE_BIN");
  if (!bin) GTEST_SKIP() << "VLAKE_BIN not set";
  uint64_t size = 256 << 20;
  {
    client::ClientOptions o = Options(*server_, "shm");
    o.parallel_threshold_bytes = 1ull << 40;  // one transfer, one request
    auto c = NewClient(o);
    auto src = c->AllocateRegion(size);
    ASSERT_OK(src);
    std::memset((*src)->data(), 0x5c, size);
    ASSERT_OK(c->PutFrom("proto", "huge", **src, size));
  }
  for (const char* transports : {"shm", "tcp"}) {
    for (int delay_ms : {5, 40, 150}) {
      pid_t pid = fork();
      if (pid == 0) {
        setenv("VLAKE_ACCESS_KEY", kAccess, 1);
        setenv("VLAKE_SECRET_KEY", kSecret, 1);
        std::string ep = server_->endpoint();
        execl(bin, bin, "cp", "s3://proto/huge", "/dev/null", "--direct", "--transports",
              transports, "--part-size", "268435456", "--quiet", "--endpoint", ep.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      usleep(delay_ms * 1000);
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }
  // Uploads killed part-way: nothing half-written ever becomes visible.
  std::string file = server_->dir() + "/upload.bin";
  std::string content = testing::RandomData(size, 77);
  std::ofstream(file, std::ios::binary) << content;
  std::string md5 = HexEncode(Md5Digest(content));
  content.clear();
  for (const char* transports : {"shm", "tcp"}) {
    for (int delay_ms : {100, 300, 600}) {
      std::string key = std::string("upload-") + transports + "-" + std::to_string(delay_ms);
      pid_t pid = fork();
      if (pid == 0) {
        setenv("VLAKE_ACCESS_KEY", kAccess, 1);
        setenv("VLAKE_SECRET_KEY", kSecret, 1);
        std::string ep = server_->endpoint();
        std::string dst = "s3://proto/" + key;
        execl(bin, bin, "cp", file.c_str(), dst.c_str(), "--direct", "--transports", transports,
              "--part-size", "268435456", "--quiet", "--endpoint", ep.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      usleep(delay_ms * 1000);
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
      auto head = client_->Head("proto", key);
      if (head.ok()) {  // finished before the kill: then it is whole
        EXPECT_EQ(head->size, size);
        EXPECT_EQ(head->etag, md5);
      } else {
        EXPECT_CODE(head, Code::kNoSuchKey);
      }
    }
  }
  ASSERT_TRUE(server_->alive());
  auto got = client_->GetInto("proto", "obj", *client_->AllocateRegion(1 << 20).value());
  ASSERT_OK(got);
  EXPECT_TRUE(got->direct);
  auto head = client_->Head("proto", "huge");
  ASSERT_OK(head);
  EXPECT_EQ(head->size, size);
}

// A StagedSink that stands in for GPU memory: "device" memory is a host buffer and each copy
// runs asynchronously on its own thread, slowed down so that copies really overlap the next
// chunks' arrival. It records every breach of the StagedSink contract (a slot reused before
// Wait, a copy outside the destination).
class LoopbackSink final : public client::StagedSink {
 public:
  LoopbackSink(uint64_t size, int slots) : dst_(size, '\x5a'), pending_(slots) {}
  ~LoopbackSink() override {
    for (auto& f : pending_) {
      if (f.valid()) f.wait();
    }
  }
  uint64_t size() const override { return dst_.size(); }
  Status AttachStaging(char* data, uint64_t size_bytes) override {
    attached_ += (data != nullptr && size_bytes > 0) ? 1 : 0;
    return Status::Ok();
  }
  void DetachStaging(char*) override { detached_++; }
  Status CopyAsync(int slot, const char* src, uint64_t dst_offset, uint64_t n) override {
    if (slot < 0 || slot >= static_cast<int>(pending_.size())) {
      breaches_++;
      return Error(Code::kInvalidArgument, "bad slot");
    }
    if (pending_[slot].valid()) breaches_++;  // reused before Wait
    if (dst_offset + n > dst_.size()) {
      breaches_++;
      return Error(Code::kInvalidArgument, "outside");
    }
    copies_++;
    pending_[slot] = std::async(std::launch::async, [this, src, dst_offset, n] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::memcpy(dst_.data() + dst_offset, src, n);
    });
    return Status::Ok();
  }
  Status Wait(int slot) override {
    if (slot < 0 || slot >= static_cast<int>(pending_.size())) return Error(Code::kInternal, "");
    if (pending_[slot].valid()) pending_[slot].get();
    return Status::Ok();
  }
  const std::string& dst() const { return dst_; }
  int breaches() const { return breaches_.load(); }
  int copies() const { return copies_.load(); }
  int attached() const { return attached_.load(); }
  int detached() const { return detached_.load(); }

 private:
  std::string dst_;
  std::vector<std::future<void>> pending_;
  std::atomic<int> breaches_{0}, copies_{0}, attached_{0}, detached_{0};
};

TEST_P(DirectE2eTest, StagedChunksArriveByteExactWhileEarlierCopiesRun) {
  client::StagedGetOptions o;
  o.chunk_bytes = 64 << 10;
  o.fetchers = 3;
  o.buffers_per_fetcher = 2;
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, o.chunk_bytes - 1, o.chunk_bytes,
                        o.chunk_bytes + 1, uint64_t{(3 << 20) + 12345}}) {
    SCOPED_TRACE(size);
    std::string data = testing::RandomData(size, size + 7);
    std::string key = std::string(GetParam()) + "/s-" + std::to_string(size);
    ASSERT_OK(client_->Put("direct", key, data));
    LoopbackSink sink(size + 100, o.fetchers * o.buffers_per_fetcher);
    ASSERT_OK_AND_ASSIGN(client::GetResult got,
                         client_->GetIntoSink("direct", key, sink, std::nullopt, o));
    EXPECT_EQ(got.bytes, size);
    EXPECT_EQ(got.path, size == 0 ? "staged-http" : "staged-direct");
    EXPECT_TRUE(sink.dst().substr(0, size) == data);
    EXPECT_EQ(sink.dst().substr(size), std::string(100, '\x5a'));  // nothing past the object
    EXPECT_EQ(sink.breaches(), 0);
    EXPECT_EQ(sink.copies(), static_cast<int>((size + o.chunk_bytes - 1) / o.chunk_bytes));
    EXPECT_EQ(sink.attached(), sink.detached());
  }
}

TEST_P(DirectE2eTest, StagedRangesBaselineAndRefusals) {
  std::string data = testing::RandomData((2 << 20) + 3, 5);
  ASSERT_OK(client_->Put("direct", "r", data));
  client::StagedGetOptions o;
  o.chunk_bytes = 100'000;  // not a power of two: chunk edges fall anywhere
  LoopbackSink sink(1 << 20, o.fetchers * o.buffers_per_fetcher);
  ASSERT_OK_AND_ASSIGN(
      client::GetResult got,
      client_->GetIntoSink("direct", "r", sink, client::ByteRange{777, 500'000}, o));
  EXPECT_EQ(got.bytes, 500'000u);
  EXPECT_TRUE(sink.dst().substr(0, 500'000) == data.substr(777, 500'000));
  // The baseline: one GET, HTTP body staged through two host buffers.
  o.http_body = true;
  LoopbackSink body_sink(data.size(), 2);
  ASSERT_OK_AND_ASSIGN(client::GetResult body,
                       client_->GetIntoSink("direct", "r", body_sink, std::nullopt, o));
  EXPECT_EQ(body.path, "staged-http");
  EXPECT_EQ(body.bytes, data.size());
  EXPECT_TRUE(body_sink.dst() == data);
  EXPECT_EQ(body_sink.breaches(), 0);
  // Destination too small: refused before anything moves (staged) / as soon as it overflows.
  o.http_body = false;
  LoopbackSink small(1000, o.fetchers * o.buffers_per_fetcher);
  EXPECT_CODE(client_->GetIntoSink("direct", "r", small, std::nullopt, o), Code::kInvalidArgument);
  EXPECT_EQ(small.copies(), 0);
  o.http_body = true;
  LoopbackSink small_body(1000, 2);
  EXPECT_CODE(client_->GetIntoSink("direct", "r", small_body, std::nullopt, o),
              Code::kInvalidArgument);
  EXPECT_EQ(small_body.breaches(), 0);
  // Bad options and missing objects are errors, not crashes.
  o.http_body = false;
  o.chunk_bytes = 1;
  EXPECT_CODE(client_->GetIntoSink("direct", "r", sink, std::nullopt, o), Code::kInvalidArgument);
  o.chunk_bytes = 1 << 20;
  EXPECT_CODE(client_->GetIntoSink("direct", "missing", sink, std::nullopt, o), Code::kNoSuchKey);
}

TEST_P(DirectE2eTest, GpuDestinationWithoutAGpuSaysSo) {
  std::string data = testing::RandomData(1000, 3);
  ASSERT_OK(client_->Put("direct", "g", data));
  // Host memory is not device memory; and here there is no GPU at all.
  auto got = client_->GetIntoDevice("direct", "g", data.data(), data.size());
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().code() == Code::kUnavailable ||
              got.error().code() == Code::kInvalidArgument)
      << got.error().ToString();
}

// Staged GETs from a node without the direct path: chunks come as HTTP bodies.
TEST(StagedDeclineTest, ChunksComeAsBodies) {
  ServerProcess server({"--no-direct"});
  ASSERT_GT(server.port(), 0);
  client::ClientOptions o = Options(server, "shm");
  o.direct = client::DirectMode::kAuto;
  auto c = NewClient(o);
  ASSERT_OK(c->CreateBucket("staged-decline"));
  std::string data = testing::RandomData((1 << 20) + 5, 8);
  ASSERT_OK(c->Put("staged-decline", "k", data));
  client::StagedGetOptions so;
  so.chunk_bytes = 128 << 10;
  for (int round = 0; round < 2; ++round) {  // first declined, then not even offered
    LoopbackSink sink(data.size(), so.fetchers * so.buffers_per_fetcher);
    ASSERT_OK_AND_ASSIGN(client::GetResult got,
                         c->GetIntoSink("staged-decline", "k", sink, std::nullopt, so));
    EXPECT_EQ(got.path, "staged-http");
    EXPECT_TRUE(sink.dst() == data);
    EXPECT_EQ(sink.breaches(), 0);
  }
}

// A server with the direct path off declines; the SDK falls back to the body by itself.
TEST(DirectDeclineTest, FallsBackToTheBody) {
  ServerProcess server({"--no-direct"});
  ASSERT_GT(server.port(), 0);
  client::ClientOptions o = Options(server, "shm");
  o.direct = client::DirectMode::kAuto;
  auto c = NewClient(o);
  ASSERT_OK(c->CreateBucket("fallback"));
  std::string data = testing::RandomData((5 << 20) + 1, 33);
  auto region = c->AllocateRegion(data.size());
  ASSERT_OK(region);
  std::memcpy((*region)->data(), data.data(), data.size());
  auto put = c->PutFrom("fallback", "k", **region, data.size());
  ASSERT_OK(put);
  EXPECT_FALSE(put->direct);
  std::memset((*region)->data(), 0, data.size());
  auto got = c->GetInto("fallback", "k", **region);
  ASSERT_OK(got);
  EXPECT_FALSE(got->direct);
  EXPECT_TRUE(std::string((*region)->data(), data.size()) == data);
  auto stored = c->Get("fallback", "k");
  ASSERT_OK(stored);
  EXPECT_TRUE(*stored == data);
  // kRequire: the decline is an error.
  o.direct = client::DirectMode::kRequire;
  auto strict = NewClient(o);
  auto r2 = strict->AllocateRegion(16);
  ASSERT_OK(r2);
  EXPECT_CODE(strict->GetInto("fallback", "k", **r2), Code::kRdmaNotSupported);
}

}  // namespace
}  // namespace vlake

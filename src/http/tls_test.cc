#include "http/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/testing.h"
#include "http/client.h"
#include "http/server.h"

namespace vlake::http {
namespace {

using testing::RandomData;
using testing::TempDir;

// Writes a self-signed P-256 certificate for `san` ("IP:127.0.0.1,DNS:localhost") and its key
// as PEM files; returns false on any OpenSSL failure.
bool MakeSelfSigned(const std::string& san, const std::string& cert_path,
                    const std::string& key_path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  bool ok = key != nullptr && x != nullptr;
  if (ok) {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("vlake test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    ok = ext != nullptr && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
  }
  if (ok) {
    FILE* c = std::fopen(cert_path.c_str(), "w");
    FILE* k = std::fopen(key_path.c_str(), "w");
    ok = c != nullptr && k != nullptr && PEM_write_X509(c, x) == 1 &&
         PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (c != nullptr) std::fclose(c);
    if (k != nullptr) std::fclose(k);
  }
  X509_free(x);
  EVP_PKEY_free(key);
  return ok;
}

constexpr size_t kFileBytes = 300 * 1024;  // above the inline limit: the read + encrypt path

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.path() + "/cert.pem";
    key_ = dir_.path() + "/key.pem";
    ASSERT_TRUE(MakeSelfSigned("IP:127.0.0.1,DNS:localhost", cert_, key_));
    file_data_ = RandomData(kFileBytes, 7);
    std::string file_path = dir_.path() + "/object";
    FILE* f = std::fopen(file_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(file_data_.data(), 1, file_data_.size(), f), file_data_.size());
    std::fclose(f);
    file_ = std::make_shared<const UniqueFd>(::open(file_path.c_str(), O_RDONLY | O_CLOEXEC));

    auto tls = TlsContext::ForServer(cert_, key_);
    ASSERT_TRUE(tls.ok()) << tls.error().ToString();
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.header_timeout_ms = 5000;
    o.idle_timeout_ms = 5000;
    o.io_timeout_ms = 5000;
    o.tls = *tls;
    server_ = std::make_unique<HttpServer>(o, [this](HttpRequest& req, BodyReader& body) {
      HttpResponse r;
      if (req.path == "/file") {
        r.file_slices.push_back({file_, 0, kFileBytes});
        return r;
      }
      Result<std::string> all = ReadAll(body, 64 << 20);
      r.status = all.ok() ? 200 : 400;
      if (all.ok()) r.body = std::move(*all);
      return r;
    });
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  TempDir dir_;
  std::string cert_, key_, file_data_;
  std::shared_ptr<const UniqueFd> file_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(TlsTest, VerifiedRoundTripsKeepAliveAndFileBodies) {
  auto ctx = TlsContext::ForClient(cert_, PeerVerification::kVerify);
  ASSERT_TRUE(ctx.ok()) << ctx.error().ToString();
  for (const char* host : {"127.0.0.1", "localhost"}) {
    HttpConnection c(host, server_->port(), 5000, *ctx);
    std::string body = RandomData(1 << 20, 3);
    auto r = c.Send("PUT", "/echo", {}, body);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body == body);
    auto f = c.Send("GET", "/file", {}, "");  // same connection
    ASSERT_TRUE(f.ok()) << f.error().ToString();
    EXPECT_EQ(f->status, 200);
    EXPECT_TRUE(f->body == file_data_);
  }
}

TEST_F(TlsTest, ClientWithoutTheCertificateOrForAnotherNameFailsVerification) {
  auto system_store = TlsContext::ForClient("", PeerVerification::kVerify);
  ASSERT_TRUE(system_store.ok()) << system_store.error().ToString();
  HttpConnection c("127.0.0.1", server_->port(), 5000, *system_store);
  auto r = c.Send("GET", "/x", {}, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("certificate verify failed"), std::string::npos)
      << r.error().message();

  // A certificate that does not name the host the client dialled.
  std::string other_cert = dir_.path() + "/other.pem", other_key = dir_.path() + "/other.key";
  ASSERT_TRUE(MakeSelfSigned("DNS:example.invalid", other_cert, other_key));
  auto other = TlsContext::ForServer(other_cert, other_key);
  ASSERT_TRUE(other.ok());
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.tls = *other;
  HttpServer s(o, [](HttpRequest&, BodyReader&) { return HttpResponse{}; });
  ASSERT_TRUE(s.Start().ok());
  auto trusting = TlsContext::ForClient(other_cert, PeerVerification::kVerify);
  ASSERT_TRUE(trusting.ok());
  HttpConnection wrong_name("127.0.0.1", s.port(), 5000, *trusting);
  auto w = wrong_name.Send("GET", "/x", {}, "");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("certificate verify failed"), std::string::npos)
      << w.error().message();
  // Verification off (tests only) accepts it.
  auto lax = TlsContext::ForClient("", PeerVerification::kNone);
  ASSERT_TRUE(lax.ok());
  HttpConnection any("127.0.0.1", s.port(), 5000, *lax);
  auto a = any.Send("GET", "/x", {}, "");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->status, 200);
}

TEST_F(TlsTest, PlainHttpToTheTlsPortGetsAPlainHintAndClose) {
  HttpConnection plain("127.0.0.1", server_->port(), 5000);
  auto r = plain.Send("GET", "/x", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("https://"), std::string::npos);
  // Garbage that is neither HTTP nor TLS: the handshake fails and the server closes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::send(fd, "\x01\x02\x03\x04\x05\r\n\r\n", 9, MSG_NOSIGNAL), 9);
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
  }
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << std::strerror(errno);  // closed, not timed out
  ::close(fd);
}

TEST_F(TlsTest, DribbledHandshakeIsClosedWithinTheHeaderTimeout) {
  auto tls = TlsContext::ForServer(cert_, key_);
  ASSERT_TRUE(tls.ok());
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.header_timeout_ms = 500;
  o.tls = *tls;
  HttpServer s(o, [](HttpRequest&, BodyReader&) { return HttpResponse{}; });
  ASSERT_TRUE(s.Start().ok());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto start = std::chrono::steady_clock::now();
  // A ClientHello record header announcing 512 bytes, then one byte per 100 ms.
  const char header[] = {0x16, 0x03, 0x01, 0x02, 0x00};
  ASSERT_EQ(::send(fd, header, sizeof(header), MSG_NOSIGNAL), 5);
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char c;
      closed = ::recv(fd, &c, 1, 0) <= 0;
    } else {
      closed = ::send(fd, "\x01", 1, MSG_NOSIGNAL) < 0;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  ::close(fd);
}

TEST(TlsContextTest, BadFilesAreInvalidArgument) {
  TempDir dir;
  std::string missing = dir.path() + "/missing.pem";
  auto s = TlsContext::ForServer(missing, missing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::kInvalidArgument);
  auto c = TlsContext::ForClient(missing, PeerVerification::kVerify);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Code::kInvalidArgument);
  // A key that is not the certificate's.
  std::string c1 = dir.path() + "/c1", k1 = dir.path() + "/k1", c2 = dir.path() + "/c2",
              k2 = dir.path() + "/k2";
  ASSERT_TRUE(MakeSelfSigned("DNS:a", c1, k1));
  ASSERT_TRUE(MakeSelfSigned("DNS:b", c2, k2));
  auto mismatch = TlsContext::ForServer(c1, k2);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vlake::http

// Test helpers shared by every module's gtests: status assertions, a temporary folder per test,
// seeded data. (The style guide's ASSERT_OK lives here, once.)
//
// Test-only; header-only, not part of any library. Thread-safety: TempDir is owned by one test; the
// rest are pure functions.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "common/status.h"

// Status assertions; each accepts a Status or a Result and streams extra context with <<.
#define ASSERT_OK(expr) ASSERT_TRUE(::vlake::testing::IsOk(::vlake::internal::AsStatus((expr))))
#define EXPECT_OK(expr) EXPECT_TRUE(::vlake::testing::IsOk(::vlake::internal::AsStatus((expr))))
#define EXPECT_CODE(expr, want) \
  EXPECT_TRUE(::vlake::testing::HasCode(::vlake::internal::AsStatus((expr)), (want)))

// For something the install script is meant to provide (a real client, a data set): skips
// the test outside CI, fails it in CI (CI=true), where its absence is a broken install.
#define VLAKE_SKIP_UNLESS_CI(...)                                                    \
  do {                                                                               \
    if (::vlake::testing::InCi()) {                                                  \
      GTEST_FAIL() << "CI=true and this is missing (scripts/install-deps.sh --test " \
                      "installs it): "                                               \
                   << __VA_ARGS__;                                                   \
    }                                                                                \
    GTEST_SKIP() << __VA_ARGS__;                                                     \
  } while (0)

// Unwraps a Result into `lhs` or fails the test (ASSERT semantics: returns from the test).
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(VLAKE_CONCAT(vlake_test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  ASSERT_OK(tmp);                                 \
  lhs = std::move(tmp).value()

namespace vlake::testing {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

inline ::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

inline ::testing::AssertionResult HasCode(const Status& s, Code want) {
  if (s.code() == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << CodeName(want) << ", got " << s.ToString();
}

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/vlake-test-XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes: the same (size, seed) always gives the same string.
inline std::string RandomData(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(rng() & 0xff);
  return out;
}

}  // namespace vlake::testing

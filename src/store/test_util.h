// Test helpers for the store: the shared ones (status assertions, TempDir, RandomData) under
// the names the store tests use. Test-only.
#pragma once

#include "common/testing.h"

namespace vlake::store::testing {
using ::vlake::testing::HasCode;
using ::vlake::testing::IsOk;
using ::vlake::testing::RandomData;
using ::vlake::testing::TempDir;
}  // namespace vlake::store::testing

// main() of every gtest binary (vlake_add_test): runs the tests, and when none failed but some
// skipped, lists each skipped test with its reason on lines starting "vlake-skip:" and exits
// 77, which ctest reports as Skipped (SKIP_RETURN_CODE) instead of Passed.
// scripts/test.sh gathers those lines into the run's summary.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  if (rc != 0) return rc;
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  if (unit.skipped_test_count() == 0) return 0;
  for (int s = 0; s < unit.total_test_suite_count(); ++s) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(s);
    for (int t = 0; t < suite.total_test_count(); ++t) {
      const ::testing::TestInfo& info = *suite.GetTestInfo(t);
      const ::testing::TestResult& result = *info.result();
      if (!result.Skipped()) continue;
      std::string reason;
      for (int p = 0; p < result.total_part_count(); ++p) {
        if (result.GetTestPartResult(p).skipped()) reason = result.GetTestPartResult(p).message();
      }
      std::printf("vlake-skip: %s.%s: %s\n", suite.name(), info.name(), reason.c_str());
    }
  }
  std::printf("%d test(s) skipped, %d passed\n", unit.skipped_test_count(),
              unit.successful_test_count());
  return 77;
}

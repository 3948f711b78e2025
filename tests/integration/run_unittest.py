"""Runs unittest modules for ctest: exit 0 when every test passed, 1 when one failed (or none
ran), and 77 when none failed but some skipped, so that ctest reports the entry Skipped, never
Passed (SKIP_RETURN_CODE in tests/CMakeLists.txt). Each skip is listed on a line
"vlake-skip: TEST: REASON", which scripts/test.sh gathers into the run's summary.

Usage: python3 run_unittest.py MODULE [MODULE.Class ...]
"""

import sys
import unittest


def main(names):
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    sys.stdout.flush()
    if not result.wasSuccessful():
        return 1
    if result.testsRun == 0 and not result.skipped:
        print("no test ran")
        return 1
    if result.skipped:
        for test, reason in result.skipped:
            print(f"vlake-skip: {test.id()}: {reason}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# Shared build helpers: one warning set for every target, one way to add a test.

set(VLAKE_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wno-missing-field-initializers)
if(VLAKE_WERROR)
  list(APPEND VLAKE_CXX_WARNINGS -Werror)
endif()
# CUDA sources (.cu) go through nvcc: host warnings through -Xcompiler, and every nvcc warning
# an error.
list(JOIN VLAKE_CXX_WARNINGS "," VLAKE_CUDA_HOST_WARNINGS)
string(REPLACE ",-Wpedantic" "" VLAKE_CUDA_HOST_WARNINGS "${VLAKE_CUDA_HOST_WARNINGS}")
set(VLAKE_WARNINGS
  $<$<COMPILE_LANGUAGE:CXX>:${VLAKE_CXX_WARNINGS}>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${VLAKE_CUDA_HOST_WARNINGS};--Werror=all-warnings>)

# vlake_add_library(name SOURCES... DEPS...) — one library per module under src/.
function(vlake_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(${name} PRIVATE ${VLAKE_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# vlake_add_test(name SOURCES... DEPS... LABELS...) — a gtest binary registered with ctest as
# one entry. Labels: unit, e2e, gpu, slow. A binary whose tests skipped (none failing) exits 77
# and ctest reports it Skipped, never Passed (src/common/test_main.cc).
function(vlake_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${VLAKE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} vlake_test_main GTest::gtest)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 600 SKIP_RETURN_CODE 77)
endfunction()

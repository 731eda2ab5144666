# Packaging tests: install dtask into a prefix, then configure, build and run tests/consumer
# against it with find_package(dtask), as an application outside the tree would.
#
# include()d from tests/CMakeLists.txt. The Packaging.install test also runs this file in
# script mode (cmake -P) to start from an empty prefix and consumer build tree on every run.

if(CMAKE_SCRIPT_MODE_FILE)
  # cmake -DDTASK_BINARY_DIR=<dtask build> -DDTASK_CONSUMER_PREFIX=<prefix>
  #       -DDTASK_CONSUMER_BUILD=<consumer build> -P consumer_test.cmake
  foreach(var DTASK_BINARY_DIR DTASK_CONSUMER_PREFIX DTASK_CONSUMER_BUILD)
    if(NOT ${var})
      message(FATAL_ERROR "consumer_test.cmake: script mode needs -D${var}=...")
    endif()
  endforeach()
  file(REMOVE_RECURSE "${DTASK_CONSUMER_PREFIX}" "${DTASK_CONSUMER_BUILD}")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${DTASK_BINARY_DIR}"
                          --prefix "${DTASK_CONSUMER_PREFIX}"
                  COMMAND_ERROR_IS_FATAL ANY)
  return()
endif()

if(NOT DTASK_INSTALL)
  message(STATUS "dtask: Packaging tests skipped because DTASK_INSTALL is OFF")
  return()
endif()

set(dtask_consumer_source "${CMAKE_CURRENT_LIST_DIR}/consumer")
set(dtask_consumer_prefix "${CMAKE_CURRENT_BINARY_DIR}/consumer-prefix")
set(dtask_consumer_build "${CMAKE_CURRENT_BINARY_DIR}/consumer-build")

# The consumer is built like dtask was: same compiler, build type and user flags, and the same
# sanitizers, since an instrumented static libdtask needs the sanitizer runtime at link time.
set(dtask_consumer_cxx_flags "${CMAKE_CXX_FLAGS}")
set(dtask_consumer_link_flags "${CMAKE_EXE_LINKER_FLAGS}")
if(DTASK_SANITIZE)
  string(APPEND dtask_consumer_cxx_flags
         " -fsanitize=${DTASK_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all")
  string(APPEND dtask_consumer_link_flags " -fsanitize=${DTASK_SANITIZE}")
endif()
string(STRIP "${dtask_consumer_cxx_flags}" dtask_consumer_cxx_flags)
string(STRIP "${dtask_consumer_link_flags}" dtask_consumer_link_flags)

# The fresh prefix first, then whatever prefixes found dtask's own dependencies (a list: the
# quoted add_test argument below keeps it whole).
set(dtask_consumer_prefix_path "${dtask_consumer_prefix}" ${CMAKE_PREFIX_PATH})

add_test(NAME Packaging.install
         COMMAND "${CMAKE_COMMAND}"
                 "-DDTASK_BINARY_DIR=${PROJECT_BINARY_DIR}"
                 "-DDTASK_CONSUMER_PREFIX=${dtask_consumer_prefix}"
                 "-DDTASK_CONSUMER_BUILD=${dtask_consumer_build}"
                 -P "${CMAKE_CURRENT_LIST_FILE}")
set_tests_properties(Packaging.install PROPERTIES
                     FIXTURES_SETUP dtask_installed
                     TIMEOUT 120 LABELS packaging)

add_test(NAME Packaging.configure_consumer
         COMMAND "${CMAKE_COMMAND}" -S "${dtask_consumer_source}" -B "${dtask_consumer_build}"
                 -G "${CMAKE_GENERATOR}"
                 "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
                 "-DCMAKE_PREFIX_PATH=${dtask_consumer_prefix_path}"
                 "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}"
                 "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
                 "-DCMAKE_CXX_FLAGS=${dtask_consumer_cxx_flags}"
                 "-DCMAKE_EXE_LINKER_FLAGS=${dtask_consumer_link_flags}")
set_tests_properties(Packaging.configure_consumer PROPERTIES
                     FIXTURES_REQUIRED dtask_installed
                     FIXTURES_SETUP dtask_consumer_configured
                     TIMEOUT 120 LABELS packaging)

add_test(NAME Packaging.build_consumer
         COMMAND "${CMAKE_COMMAND}" --build "${dtask_consumer_build}")
set_tests_properties(Packaging.build_consumer PROPERTIES
                     FIXTURES_REQUIRED dtask_consumer_configured
                     FIXTURES_SETUP dtask_consumer_built
                     TIMEOUT 300 LABELS packaging)

# PASS_REGULAR_EXPRESSION makes ctest ignore the exit code, so sanitizer reports (UBSan exits
# with a plain non-zero code) are matched explicitly; a crash still fails the test.
add_test(NAME Packaging.run_consumer COMMAND "${dtask_consumer_build}/app")
set_tests_properties(Packaging.run_consumer PROPERTIES
                     FIXTURES_REQUIRED dtask_consumer_built
                     PASS_REGULAR_EXPRESSION "consumer result 5050"
                     FAIL_REGULAR_EXPRESSION "(ERROR|WARNING): [A-Za-z]+Sanitizer|runtime error:"
                     TIMEOUT 60 LABELS packaging)

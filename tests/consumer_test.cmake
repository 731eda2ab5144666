# Packaging tests (label packaging): dtask as a program outside its tree gets it.
#
# - This build, installed into a fresh prefix: a find_package consumer (tests/consumer) and a
#   pkg-config consumer are built and run against it.
# - The library built the other way (shared if this build is static, static if it is shared)
#   from exactly the files the Conan recipe exports, with the variables it sets, and Conan's
#   test_package built against it (tests/packaging/conan_recipe.py); a pkg-config consumer
#   against its install too. So every run checks one shared and one static libdtask.
# - The shared one exports only the public API (tests/packaging/exported_symbols.py).
# - An application that adds dtask with add_subdirectory, then FetchContent, installs nothing
#   of dtask's (tests/packaging/subproject.sh).
# Builds of the library again (the recipe's, the subproject's) run only in a build without
# sanitizers: they would not be instrumented anyway.
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
set(dtask_packaging_scripts "${CMAKE_CURRENT_LIST_DIR}/packaging")
set(dtask_consumer_prefix "${CMAKE_CURRENT_BINARY_DIR}/consumer-prefix")
set(dtask_consumer_build "${CMAKE_CURRENT_BINARY_DIR}/consumer-build")
if(dtask_library_type STREQUAL "SHARED_LIBRARY")
  set(dtask_this_kind shared)
  set(dtask_other_kind static)
else()
  set(dtask_this_kind static)
  set(dtask_other_kind shared)
endif()

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

# What each consumer prints last; it exits 0 only if it also caught dtask's errors by type.
set(dtask_consumer_output "^consumer result 5050$")

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
                 "-DCMAKE_EXE_LINKER_FLAGS=${dtask_consumer_link_flags}"
                 "-DCONSUMER_HTTP=${DTASK_BUILD_HTTP}"
                 "-DDTASK_EXPECTED_VERSION=${PROJECT_VERSION}")
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

add_test(NAME Packaging.run_consumer
         COMMAND ${dtask_run_checked} --timeout 50 --expect-exit 0
                 --expect-output "${dtask_consumer_output}" -- "${dtask_consumer_build}/app")
set_tests_properties(Packaging.run_consumer PROPERTIES
                     FIXTURES_REQUIRED dtask_consumer_built
                     TIMEOUT 60 LABELS packaging)

# pkg_config_consumer_test(<kind> <prefix> <fixture>): builds and runs the consumer with one
# compiler command, its flags from pkg-config.
function(dtask_pkg_config_consumer_test kind prefix fixture cxx_flags)
  add_test(NAME Packaging.pkg_config_consumer_${kind}
           COMMAND ${CMAKE_COMMAND} -E env "CXX=${CMAKE_CXX_COMPILER}" "CXXFLAGS=${cxx_flags}"
                   ${dtask_run_checked} --timeout 290 --expect-exit 0
                   --expect-output "${dtask_consumer_output}" --
                   ${dtask_packaging_scripts}/pkg_config_consumer.sh "${prefix}"
                   "${CMAKE_CURRENT_BINARY_DIR}/pkg-config-consumer-${kind}"
                   "${dtask_consumer_source}/main.cpp" ${PROJECT_VERSION} ${kind})
  set_tests_properties(Packaging.pkg_config_consumer_${kind} PROPERTIES
                       FIXTURES_REQUIRED ${fixture} TIMEOUT 300 LABELS packaging)
endfunction()
dtask_pkg_config_consumer_test(${dtask_this_kind} "${dtask_consumer_prefix}" dtask_installed
                               "${dtask_consumer_cxx_flags} ${dtask_consumer_link_flags}")

if(dtask_this_kind STREQUAL "shared")
  add_test(NAME Packaging.shared_library_exports_only_the_public_api
           COMMAND ${dtask_test_python} ${dtask_packaging_scripts}/exported_symbols.py
                   $<TARGET_FILE:dtask> --include ${PROJECT_SOURCE_DIR}/include
                   --include ${dtask_generated_include}
                   --bridge ${PROJECT_SOURCE_DIR}/src/http/http_service.hpp)
  set_tests_properties(Packaging.shared_library_exports_only_the_public_api PROPERTIES
                       TIMEOUT 60 LABELS packaging)
endif()

if(DTASK_SANITIZE)
  return()
endif()

# The other kind of library, from what the Conan recipe exports.
set(dtask_conan_prefix "${CMAKE_CURRENT_BINARY_DIR}/conan-prefix")
set(dtask_conan_shared 0)
if(dtask_other_kind STREQUAL "shared")
  set(dtask_conan_shared 1)
endif()
# As `conan create conan/` does: export, build, package, then build and run test_package.
add_test(NAME Packaging.conan_create_builds_packages_and_runs_test_package
         COMMAND ${dtask_run_checked} --timeout 1700 --expect-exit 0
                 --expect-output "dtask ${PROJECT_VERSION}: sum of 1..100 = 5050" --
                 ${dtask_test_python} ${dtask_packaging_scripts}/conan_recipe.py
                 --recipe ${PROJECT_SOURCE_DIR}/conan/conanfile.py
                 --work ${CMAKE_CURRENT_BINARY_DIR}/conan-work --prefix ${dtask_conan_prefix}
                 --version ${PROJECT_VERSION} --shared ${dtask_conan_shared}
                 --build-type ${CMAKE_BUILD_TYPE} --cxx ${CMAKE_CXX_COMPILER}
                 "--prefix-path=${CMAKE_PREFIX_PATH}")
set_tests_properties(Packaging.conan_create_builds_packages_and_runs_test_package PROPERTIES
                     FIXTURES_SETUP dtask_conan_installed
                     RESOURCE_LOCK dtask_library_build TIMEOUT 1800 LABELS packaging)

dtask_pkg_config_consumer_test(${dtask_other_kind} "${dtask_conan_prefix}" dtask_conan_installed "")

if(dtask_other_kind STREQUAL "shared")
  add_test(NAME Packaging.shared_library_exports_only_the_public_api
           COMMAND ${dtask_test_python} ${dtask_packaging_scripts}/exported_symbols.py
                   ${dtask_conan_prefix}/lib/libdtask.so --include ${dtask_conan_prefix}/include
                   --bridge ${PROJECT_SOURCE_DIR}/src/http/http_service.hpp)
  set_tests_properties(Packaging.shared_library_exports_only_the_public_api PROPERTIES
                       FIXTURES_REQUIRED dtask_conan_installed TIMEOUT 60 LABELS packaging)
endif()

# An application that builds dtask as its subproject: add_subdirectory first, then
# FetchContent in the same build tree (which then rebuilds nothing). Unoptimized (no build
# type), which compiles twice as fast: what it checks is what gets installed.
set(dtask_subproject_build "${CMAKE_CURRENT_BINARY_DIR}/subproject-build")
foreach(how add_subdirectory FetchContent)
  string(TOLOWER "${how}" name)
  string(REPLACE "fetchcontent" "fetch_content" name "${name}")
  add_test(NAME Packaging.subproject_${name}_installs_nothing_of_dtask
           COMMAND ${dtask_run_checked} --timeout 1700 --expect-exit 0
                   --expect-output "${dtask_consumer_output}" --
                   ${dtask_packaging_scripts}/subproject.sh ${how} ${PROJECT_SOURCE_DIR}
                   ${dtask_subproject_build} ${CMAKE_CURRENT_BINARY_DIR}/subproject-prefix-${name}
                   "-DCMAKE_BUILD_TYPE=" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
                   "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH}")
  set_tests_properties(Packaging.subproject_${name}_installs_nothing_of_dtask PROPERTIES
                       TIMEOUT 1800 LABELS packaging)
endforeach()
set_tests_properties(Packaging.subproject_add_subdirectory_installs_nothing_of_dtask PROPERTIES
                     FIXTURES_SETUP dtask_subproject_built RESOURCE_LOCK dtask_library_build)
set_tests_properties(Packaging.subproject_fetch_content_installs_nothing_of_dtask PROPERTIES
                     FIXTURES_REQUIRED dtask_subproject_built)

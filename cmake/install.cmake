# Install rules (DTASK_INSTALL): the library, its headers (the generated ones too), the CMake
# package (find_package(dtask)), dtask.pc for pkg-config, and dtaskd.

set(dtask_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/dtask)

install(DIRECTORY include/dtask DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${dtask_generated_include}/dtask/export.hpp ${dtask_generated_include}/dtask/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dtask)
install(TARGETS dtask EXPORT dtaskTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(DTASK_BUILD_DTASKD)
  install(TARGETS dtaskd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT dtaskTargets NAMESPACE dtask:: DESTINATION ${dtask_cmake_dir})
# dtask::http, for a host that sets ClusterOptions::http: find_package(dtask COMPONENTS
# http). Apart, so that a host without it finds none of its dependencies.
if(DTASK_BUILD_HTTP)
  install(TARGETS dtask_http EXPORT dtaskHttpTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT dtaskHttpTargets NAMESPACE dtask:: DESTINATION ${dtask_cmake_dir})
endif()
configure_package_config_file(cmake/dtaskConfig.cmake.in ${PROJECT_BINARY_DIR}/dtaskConfig.cmake
                              INSTALL_DESTINATION ${dtask_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dtaskConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dtaskConfig.cmake ${PROJECT_BINARY_DIR}/dtaskConfigVersion.cmake
        DESTINATION ${dtask_cmake_dir})

# dtask.pc. Its prefix is found from where the file is (${pcfiledir}), so that an install
# with `cmake --install --prefix` elsewhere than CMAKE_INSTALL_PREFIX still points right.
# Paths not under the prefix (cereal's, libzmq's) are written as found, and left out when
# the compiler searches them anyway.
set(dtask_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(dtask_pc_prefix "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH dtask_pc_up /prefix/${dtask_pc_dir} /prefix)  # ../.. for lib/pkgconfig
  string(REGEX REPLACE "/$" "" dtask_pc_up "${dtask_pc_up}")
  set(dtask_pc_prefix "\${pcfiledir}/${dtask_pc_up}")
endif()
cmake_path(ABSOLUTE_PATH CMAKE_INSTALL_LIBDIR BASE_DIRECTORY "\${prefix}" OUTPUT_VARIABLE dtask_pc_libdir)
cmake_path(ABSOLUTE_PATH CMAKE_INSTALL_INCLUDEDIR BASE_DIRECTORY "\${prefix}"
           OUTPUT_VARIABLE dtask_pc_includedir)

# cereal is header-only and in the public headers: its include directory, where it has no
# .pc of its own (Debian's libcereal-dev has none).
set(dtask_pc_cflags "")
get_target_property(dtask_cereal_includes cereal::cereal INTERFACE_INCLUDE_DIRECTORIES)
foreach(dir IN LISTS dtask_cereal_includes)
  if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND dtask_pc_cflags " -I${dir}")
  endif()
endforeach()

# libzmq is private: a shared libdtask links it itself (Requires.private, for --static users
# of the .pc). A static libdtask's users link it too (pkg-config --static): as -lzmq in
# Libs.private rather than through libzmq.pc, whose own private requirements pkg-config
# --static then expands, and on Debian 12 they name a file that is not installed
# (norm.pc: libprotokit.a); a host links the shared libzmq all the same. SQLite
# (RunOptions::checkpoint) likewise: sqlite3.pc for a shared libdtask, -lsqlite3 for a static
# one (sqlite3.pc --static would add -lz, whose development files a host may not have).
set(dtask_pc_requires_private "")
set(dtask_pc_libs_private "${CMAKE_THREAD_LIBS_INIT}")
if(dtask_library_type STREQUAL "SHARED_LIBRARY")
  set(dtask_pc_requires_private "libzmq sqlite3")
else()
  string(PREPEND dtask_pc_libs_private "-lsqlite3 ")
  get_target_property(dtask_sqlite_location SQLite::SQLite3 IMPORTED_LOCATION)
  if(dtask_sqlite_location)
    get_filename_component(dtask_sqlite_dir "${dtask_sqlite_location}" DIRECTORY)
    if(NOT dtask_sqlite_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      string(PREPEND dtask_pc_libs_private "-L${dtask_sqlite_dir} ")
    endif()
  endif()
  set(dtask_zmq_location "")
  if(TARGET libzmq)
    get_target_property(dtask_zmq_location libzmq IMPORTED_LOCATION)
  endif()
  if(dtask_zmq_location)
    get_filename_component(dtask_zmq_dir "${dtask_zmq_location}" DIRECTORY)
    if(NOT dtask_zmq_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      string(PREPEND dtask_pc_libs_private "-L${dtask_zmq_dir} ")
    endif()
  endif()
  string(PREPEND dtask_pc_libs_private "-lzmq ")
endif()
string(STRIP "${dtask_pc_libs_private}" dtask_pc_libs_private)
configure_file(cmake/dtask.pc.in ${PROJECT_BINARY_DIR}/dtask.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/dtask.pc DESTINATION ${dtask_pc_dir})

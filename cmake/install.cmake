# Install rules (DTASK_INSTALL): the library, its headers (the generated ones too), the CMake
# package (find_package(dtask)) and dtaskd.

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

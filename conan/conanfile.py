"""Conan 2 recipe for dtask. From the repository root: conan create conan/ -s compiler.cppstd=20"""

import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir


class DtaskConan(ConanFile):
    name = "dtask"
    version = "0.1.0"
    license = "MIT"
    description = "Embeddable distributed task-parallel map-reduce for C++"
    topics = ("distributed", "map-reduce", "task-parallel", "zeromq")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fPIC": [True, False]}
    default_options = {"shared": False, "fPIC": True}

    def export_sources(self):
        # The recipe lives in conan/; the sources are at the repository root.
        root = os.path.join(self.recipe_folder, "..")
        for pattern in ("CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "src/*"):
            copy(self, pattern, root, self.export_sources_folder)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        self.folders.root = ".."  # local flows (conan build conan/); ignored in the cache
        cmake_layout(self, build_folder="build-conan")

    def requirements(self):
        # cereal appears in dtask's public headers; ZeroMQ only in its sources.
        self.requires("cereal/1.3.2", transitive_headers=True)
        self.requires("cppzmq/4.10.0")
        self.requires("zeromq/4.3.5")

    def validate(self):
        check_min_cppstd(self, 20)

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["DTASK_BUILD_TESTS"] = False
        toolchain.cache_variables["DTASK_BUILD_EXAMPLES"] = False
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # Consumers get the config files that CMakeDeps generates from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "dtask")
        self.cpp_info.set_property("cmake_target_name", "dtask::dtask")
        self.cpp_info.libs = ["dtask"]
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]

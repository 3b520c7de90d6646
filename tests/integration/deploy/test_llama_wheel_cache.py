"""scripts/install-llama.sh keeps the wheel it builds, keyed by version, CMAKE_ARGS and
interpreter: a second venv installs it without building, a changed CMAKE_ARGS builds again.

A stand-in package takes llama-cpp-python's place (LLAMA_REQUIREMENT): it counts its builds
in a file, so the test sees what was compiled and what came from the cache, in seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install-llama.sh"

SETUP = '''
import os
import sys
from setuptools import setup

if "bdist_wheel" in sys.argv:  # the backend runs setup.py for metadata too: count builds
    with open(os.environ["BUILDS_FILE"], "a") as builds:
        builds.write(os.environ.get("CMAKE_ARGS", "") + "\\n")
setup(name="stand-in-llama", version="1.0", py_modules=["stand_in_llama"])
'''


@pytest.fixture
def package(tmp_path: Path) -> Path:
    source = tmp_path / "stand-in-llama"
    source.mkdir()
    (source / "setup.py").write_text(SETUP)
    (source / "stand_in_llama.py").write_text("BUILT = True\n")
    return source


def _venv(path: Path) -> Path:
    venv.create(path, with_pip=True, system_site_packages=True)
    return path / "bin" / "python"


def _install(python: Path, package: Path, cache: Path, builds: Path, cmake: str) -> str:
    env = {**os.environ, "LLAMA_REQUIREMENT": str(package), "PROMPTSERVE_WHEEL_CACHE": str(cache),
           "BUILDS_FILE": str(builds), "CMAKE_ARGS": cmake}
    done = subprocess.run(["sh", str(SCRIPT), str(python)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    check = subprocess.run([str(python), "-c", "import stand_in_llama as m; print(m.BUILT)"],
                           capture_output=True, text=True, check=False)
    assert check.stdout.strip() == "True", check.stderr
    return done.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the script is for the Linux image")
def test_a_second_venv_installs_the_cached_wheel_and_new_cmake_args_rebuild(
    tmp_path: Path, package: Path
) -> None:
    cache, builds = tmp_path / "cache", tmp_path / "builds.txt"
    builds.touch()
    first = _install(_venv(tmp_path / "one"), package, cache, builds, "-DA=ON")
    assert "compiling" in first
    second = _install(_venv(tmp_path / "two"), package, cache, builds, "-DA=ON")
    assert "from the wheel cache" in second
    assert builds.read_text().splitlines() == ["-DA=ON"]  # built once for both venvs
    third = _install(_venv(tmp_path / "three"), package, cache, builds, "-DA=OFF")
    assert "compiling" in third
    assert builds.read_text().splitlines() == ["-DA=ON", "-DA=OFF"]
    assert not list(cache.glob(".build-*"))  # no half-built slot left behind

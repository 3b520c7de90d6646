#!/bin/sh
# Compiles llama-cpp-python (the bundled model's runtime) at the version requirements.lock
# pins, for any x86-64 CPU with AVX2 (x86-64-v3) instead of for this very machine:
# - llama.cpp's default (-march=native) compiles AMX code on a CPU that advertises AMX; on a
#   VM that advertises it without letting processes use it, the model server dies with
#   SIGILL at the first token (seen here on an Intel Xeon VM);
# - a wheel built on one machine (pip's cache, an image layer) must run on the next.
# pip's wheel cache is bypassed: its key ignores CMAKE_ARGS, so it would hand back a wheel
# built with other options. A CMAKE_ARGS of your own replaces ours (e.g. "-DGGML_NATIVE=ON"
# to tune for the machine that builds and runs it).
#
#   scripts/install-llama.sh PYTHON        (PYTHON: the interpreter of the target venv)
set -eu

PYTHON=${1:?usage: install-llama.sh PYTHON}
LOCK="$(dirname "$0")/../requirements.lock"
PIN=$(grep -i '^llama[-_]cpp[-_]python==' "$LOCK")
VERSION=${PIN#*==}
if "$PYTHON" -m pip show llama-cpp-python 2>/dev/null | grep -qx "Version: $VERSION"; then
    exit 0  # already built (delete the venv to build again)
fi
CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL
echo "install-llama: compiling llama-cpp-python $VERSION (CMAKE_ARGS=$CMAKE_ARGS), a few minutes"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps "$PIN"

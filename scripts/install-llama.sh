#!/bin/sh
# Compiles llama-cpp-python (the bundled model's runtime) at the version requirements.lock
# pins, for any x86-64 CPU with AVX2 (x86-64-v3) instead of for this very machine:
# - llama.cpp's default (-march=native) compiles AMX code on a CPU that advertises AMX; on a
#   VM that advertises it without letting processes use it, the model server dies with
#   SIGILL at the first token (seen here on an Intel Xeon VM);
# - a wheel built on one machine (pip's cache, an image layer) must run on the next.
# The wheel is kept in a cache of our own, keyed by version, CMAKE_ARGS and interpreter, so a
# second clone installs it in seconds and a changed CMAKE_ARGS still rebuilds (pip's own
# wheel cache is bypassed: its key ignores CMAKE_ARGS). A CMAKE_ARGS of your own replaces ours
# (e.g. "-DGGML_NATIVE=ON" to tune for the machine that builds and runs it).
#
#   scripts/install-llama.sh PYTHON        (PYTHON: the interpreter of the target venv)
#
# PROMPTSERVE_WHEEL_CACHE: the cache (default ~/.cache/promptserve/wheels).
# LLAMA_REQUIREMENT: what to build instead of the lock's pin (the script's tests use it).
set -eu

PYTHON=${1:?usage: install-llama.sh PYTHON}
LOCK="$(dirname "$0")/../requirements.lock"
PIN=${LLAMA_REQUIREMENT:-$(grep -i '^llama[-_]cpp[-_]python==' "$LOCK")}
NAME=llama-cpp-python
VERSION=${PIN#*==}
if [ -n "${LLAMA_REQUIREMENT:-}" ]; then
    NAME=$("$PYTHON" -c 'import sys; print(sys.argv[1].rsplit("/", 1)[-1])' "$PIN")
    VERSION=local
fi
if [ -z "${LLAMA_REQUIREMENT:-}" ] && \
        "$PYTHON" -m pip show llama-cpp-python 2>/dev/null | grep -qx "Version: $VERSION"; then
    exit 0  # already built (delete the venv to build again)
fi
CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL

CACHE=${PROMPTSERVE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promptserve/wheels}
INTERPRETER=$("$PYTHON" -c 'import platform, sys; print(sys.implementation.cache_tag, platform.machine())')
KEY=$(printf '%s\n%s\n%s\n' "$PIN" "$CMAKE_ARGS" "$INTERPRETER" | sha256sum | cut -c1-16)
SLOT="$CACHE/$NAME-$VERSION-$KEY"

if ! ls "$SLOT"/*.whl >/dev/null 2>&1; then
    echo "install-llama: compiling $NAME $VERSION (CMAKE_ARGS=$CMAKE_ARGS), a few minutes"
    mkdir -p "$CACHE"
    BUILD=$(mktemp -d "$CACHE/.build-XXXXXX")
    "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-cache-dir --no-deps \
        --wheel-dir "$BUILD" "$PIN"
    # A finished slot appears whole or not at all (a build cut short leaves only .build-*).
    mv "$BUILD" "$SLOT" 2>/dev/null || rm -rf "$BUILD"
else
    echo "install-llama: $NAME $VERSION from the wheel cache ($SLOT)"
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    "$SLOT"/*.whl

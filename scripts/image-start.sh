#!/bin/sh
# What the image's CMD runs (and the image test): `promptserve serve` from the venv beside
# this script. Settings come from the environment (see docs/CONFIGURATION.md); arguments
# are passed on, e.g. `image-start.sh --workers 2`.
set -eu

PREFIX=$(cd "$(dirname "$0")/.." && pwd)
exec "$PREFIX/venv/bin/promptserve" serve "$@"

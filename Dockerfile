# promptserve image: `docker build -t promptserve .`, or without the bundled local model
# (smaller, no compiler needed; set OPENAI_API_KEY or OPENAI_BASE_URL at run time):
#   docker build --build-arg LOCAL_MODEL=0 -t promptserve:remote-model .
# The build and start steps are scripts/image-build.sh and scripts/image-start.sh, which
# the test suite runs too (tests/integration/deploy/test_image.py).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG LOCAL_MODEL=1
# Options for llama.cpp's CMake build; empty: any AVX2 CPU (scripts/install-llama.sh).
ARG CMAKE_ARGS=""
ENV CMAKE_ARGS=${CMAKE_ARGS} PIP_NO_CACHE_DIR=0
RUN if [ "$LOCAL_MODEL" = "1" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY app ./app
COPY chains ./chains
COPY promptserve ./promptserve
COPY scripts ./scripts
RUN --mount=type=cache,target=/root/.cache/pip \
    LOCAL_MODEL=${LOCAL_MODEL} sh scripts/image-build.sh /opt/promptserve

FROM ${PYTHON_IMAGE}
# llama.cpp's shared libraries need the OpenMP runtime (present only with the model in).
ARG LOCAL_MODEL=1
RUN if [ "$LOCAL_MODEL" = "1" ]; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/promptserve promptserve
# Same path as in the build stage: a venv's scripts name their interpreter by absolute path.
COPY --from=build /opt/promptserve /opt/promptserve
ENV PATH=/opt/promptserve/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    PROMPTSERVE_DATA_DIR=/var/lib/promptserve
USER promptserve
WORKDIR /var/lib/promptserve
VOLUME ["/var/lib/promptserve"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["/opt/promptserve/bin/image-start.sh"]

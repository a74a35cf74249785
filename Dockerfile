# syntax=docker/dockerfile:1.7
# shoppulse runtime image: both stages (`shoppulse run enrich|profiles`), no torch.
#
#   docker build -t ghcr.io/shoppulse/shoppulse:0.1.0 .      # CPU (onnxruntime); the chart's default image
#   docker build -t ghcr.io/shoppulse/shoppulse:0.1.0-gpu --build-arg ORT=gpu .  # onnxruntime-gpu + CUDA/cuDNN wheels
#
# Add --build-arg REVISION=$(git rev-parse HEAD) for the org.opencontainers.image.revision label.
#
# The default model bundle ships inside the package (models/bundles/default, package data).
# Override it at run time with SHOPPULSE_ENRICH__BUNDLE_DIR pointing at a mounted volume
# (the Helm chart does this for a PVC or an init container that copies a bundle image).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: wheel of this package, installed with the serving extras into a venv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY consumers ./consumers
COPY models ./models
COPY export ./export
COPY devkit ./devkit
# Serving extras only: never `train` or `export` (they pull torch). Every runtime library at the
# version in constraints.txt (scripts/lock.sh refreshes it), so rebuilds install the same code.
ARG EXTRAS=rocksdb,otel
ARG ORT=cpu
# The same wheel build the tests run (tests/helm/test_dockerfile.py), then an install of it.
RUN python -m venv /opt/shoppulse \
 && /opt/shoppulse/bin/pip install --upgrade pip \
 && /opt/shoppulse/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/shoppulse/bin/pip install -c constraints.txt "$(ls /wheels/shoppulse-*.whl)[${EXTRAS}]"
# onnxruntime and onnxruntime-gpu install the same module: swap, never keep both.
RUN if [ "${ORT}" = "gpu" ]; then \
      /opt/shoppulse/bin/pip uninstall -y onnxruntime \
   && /opt/shoppulse/bin/pip install "onnxruntime-gpu[cuda,cudnn]>=1.20"; \
    fi
# The image serves INT8 only: the packaged bundle's FP32 graph goes (models/serving/slim.py).
RUN /opt/shoppulse/bin/python -m shoppulse.models.serving.slim --precision int8
# Fail the build, not the pod: no torch, the default bundle is there, the CLI starts.
RUN /opt/shoppulse/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
 && /opt/shoppulse/bin/python -c "from shoppulse.models.serving.bundle import DEFAULT_BUNDLE, load_bundle; assert load_bundle(DEFAULT_BUNDLE).precisions == ['int8']" \
 && /opt/shoppulse/bin/shoppulse --help > /dev/null

# ---- runtime: the venv only, as a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="shoppulse" \
      org.opencontainers.image.description="Streaming analytics for e-commerce: Chinese review sentiment, interest tags, user profiles and product insights over Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/shoppulse/shoppulse" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 shoppulse \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin shoppulse
COPY --from=build /opt/shoppulse /opt/shoppulse
# HOME and the working directory are /tmp: the only writable place under readOnlyRootFilesystem.
ENV PATH=/opt/shoppulse/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    SHOPPULSE_HTTP__HOST=0.0.0.0
WORKDIR /tmp
USER 10001:10001
EXPOSE 9464 6066 6067
ENTRYPOINT ["shoppulse"]
CMD ["run", "enrich"]

# syntax=docker/dockerfile:1
#
# Image for the `processor` console script (Event Hubs -> projection worker).
#   build:  docker build -t processor:local .
#   run:    docker run --rm -p 8080:8080 -e PROCESSOR_... processor:local          (= processor run)
#           docker run --rm processor:local replay --from earliest --store URL
#
# Two stages: the builder has a compiler toolchain (only needed if some
# dependency has no wheel for the target platform) and produces a self-contained
# virtualenv in /opt/venv; the runtime stage copies only that venv onto a clean
# python:3.11-slim, so the final image carries no compilers or build caches.

ARG PYTHON_IMAGE=python:3.11-slim

############################ builder ############################
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip wheel

WORKDIR /src
# Only what the wheel build needs (see .dockerignore). README.md is referenced
# by pyproject.toml's `readme`, so it must be in the context.
COPY pyproject.toml README.md ./
COPY processor ./processor

# Build the project wheel (plus wheels for any dependency that lacks one), then
# install from those wheels only, so the venv is exactly what was just built.
# The wheel also declares the `devhub` console script, but devhub/ (the local
# Event Hubs endpoint: a development tool, no TLS, no token checks) is not in
# the build context, so that script could only fail: it is removed.
RUN pip wheel --wheel-dir /wheels . \
 && pip install --no-index --find-links /wheels processor \
 && rm /opt/venv/bin/devhub \
 && python -c "import processor.cli" \
 && ! python -c "import devhub" 2>/dev/null

############################ runtime ############################
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="processor" \
      org.opencontainers.image.description="Azure Event Hubs stream processor (latest-state projection + HTTP API)"

# Fixed numeric uid/gid so Kubernetes `runAsNonRoot` can verify the user.
RUN groupadd --system --gid 10001 processor \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin processor \
 && mkdir -p /app/data \
 && chown -R 10001:10001 /app

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROCESSOR_HTTP_ADDRESS=0.0.0.0:8080

# The code defaults (sqlite:///data/projection.sqlite, sqlite:///data/checkpoints.sqlite)
# are relative to the working directory: /app/data is writable by the user, so a
# bare `docker run` works on a single machine. Mount a volume there to keep it.
WORKDIR /app
USER 10001:10001

EXPOSE 8080
# The worker handles SIGTERM itself (bounded by PROCESSOR_SHUTDOWN_TIMEOUT);
# exec-form ENTRYPOINT keeps `processor` as PID 1 so the signal reaches it
# directly, with no shell in between.
STOPSIGNAL SIGTERM
ENTRYPOINT ["processor"]
CMD ["run"]

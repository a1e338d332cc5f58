# syntax=docker/dockerfile:1
# The platform's one image: the five services and the `emeuse` tool in a venv, nothing else.
# Each service runs it with its own command (deploy/k8s: `python -m services.<service>`).
# Build: `make images` (BASE_DIGEST is required, see docs/operations.md "Image").
#
# The base is pinned by digest, never by tag alone: give the digest of
# python:3.11-slim-bookworm you have vetted, e.g. from
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# No default: a build without it stops here instead of taking whatever the tag points to.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BASE_DIGEST

FROM ${BASE_IMAGE}@${BASE_DIGEST} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/emeuse
WORKDIR /src
# Dependencies first (a layer that changes only with the pins), then the code.
COPY pyproject.toml constraints.txt ./
COPY libs/ libs/
COPY services/ services/
# Not editable: the packages are copied into the venv, so the runtime stage needs only it.
RUN /opt/emeuse/bin/pip install -c constraints.txt . \
 && /opt/emeuse/bin/python -m compileall -q /opt/emeuse/lib

FROM ${BASE_IMAGE}@${BASE_DIGEST} AS runtime
# One unprivileged user, the uid the Kubernetes securityContext names (runAsUser 10001).
RUN groupadd --system --gid 10001 emeuse \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin emeuse \
 && install -d -o 10001 -g 10001 /var/lib/emeuse
COPY --from=build /opt/emeuse /opt/emeuse
ENV PATH=/opt/emeuse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EMEUSE_DATA_DIR=/var/lib/emeuse
# Tokens, the callers file and partner passwords are never in the image: Kubernetes mounts
# them from Secrets (deploy/k8s, docs/operations.md "Secrets").
USER 10001:10001
WORKDIR /var/lib/emeuse
# Health is the gRPC health service each service serves on its own port; Kubernetes probes
# it (startup and readiness) and /metrics (liveness), see deploy/k8s/base/<service>.yaml.
# One image serves five ports, so no single HEALTHCHECK command fits them all.
HEALTHCHECK NONE
CMD ["emeuse", "--help"]

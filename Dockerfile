# One image for every trainlab service: API, workers and migrations (docker-compose.yml).
#   docker build -t trainlab:local .
# torch comes from PyPI, whose Linux x86_64 wheels are CUDA builds that carry their own CUDA
# libraries: the host needs only the NVIDIA driver and the NVIDIA Container Toolkit. The same
# image runs on the CPU when no GPU is given to the container.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with trainlab and its dependencies --------------------------
FROM ${PYTHON_IMAGE} AS build
# Must match the `worker` extra in pyproject.toml (tests/deploy checks that they do).
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch alone first: by far the largest layer, rebuilt only when its pin changes.
RUN pip install "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
# trainlab itself, installed as a package (its migrations and dashboard files ship inside it),
# so the runtime stage needs the virtual environment and nothing of the source tree.
COPY . /src
RUN pip install "/src[server,worker]" \
    && python -c "import torch, torchvision; \
assert torch.__version__.split('+')[0] == '${TORCH_VERSION}', torch.__version__; \
assert torchvision.__version__.split('+')[0] == '${TORCHVISION_VERSION}', torchvision.__version__"
# Fail the build, not the first container, when the clean install misses a module that the
# services import: the API, the worker's task, the Redis transport, the PostgreSQL driver.
# The service's packages live under trainlab/_server (setup.py): the launcher puts them on the
# path, as the `trainlab` command does.
RUN TRAINLAB_BROKER_URL=redis://build-check:6379/0 python -c \
    "import trainlab, trainlab._launch as launch; launch.use_server_root(); \
import api.app, worker.tasks, cli, migrations, kombu.transport.redis, psycopg"

# --- runtime: the environment, run as an unprivileged user ---------------------
FROM ${PYTHON_IMAGE} AS runtime
# The data dir and state dir belong to the user: a named volume first mounted on one of them
# takes this owner, so the unprivileged worker can download the datasets into it.
RUN groupadd --system --gid 10001 trainlab \
    && useradd --system --uid 10001 --gid trainlab --create-home --home-dir /home/trainlab \
       --shell /usr/sbin/nologin trainlab \
    && install -d -o trainlab -g trainlab /data /var/lib/trainlab
# Owned by root and read-only to the service: pip compiled the bytecode in the build stage.
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/trainlab
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    TRAINLAB_DATA_DIR=/data \
    TRAINLAB_STATE_DIR=/var/lib/trainlab \
    TRAINLAB_HOST=0.0.0.0 \
    TRAINLAB_PORT=8000
USER 10001:10001
EXPOSE 8000
# docker-compose.yml gives each service its own command and healthcheck; this default serves
# the API with an embedded worker and SQLite, the no-configuration mode.
CMD ["trainlab", "serve", "--migrate"]

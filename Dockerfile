# syntax=docker/dockerfile:1
# Glassbox in one image: `glassbox serve`, `glassbox worker` and the setup (docs/deployment.md).
#
#   docker build -t glassbox .                          # CPU: the torch CPU wheel (~1 GB image)
#   docker build -t glassbox:cuda \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .   # CUDA torch wheel
#
# CUDA wheels carry their own CUDA libraries, so the base stays python:slim; the host needs
# the NVIDIA driver and the NVIDIA container toolkit. Configuration is by environment
# variables (docs/configuration.md); GLASSBOX_HOME=/data holds models, transcoders, corpora
# and dashboards, so mount a volume there.

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GLASSBOX_HOME=/data \
    HF_HOME=/data/huggingface

# The package lists stay in the image: the setup builds its text corpus from Debian packages
# with `apt-get download`, which works without root once the lists are there.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates \
 && python -m venv "$VIRTUAL_ENV" \
 && pip install -q --upgrade pip \
 && pip install -q "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /app

# Dependencies first (a layer that survives code changes), read from pyproject.toml.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['app']))" \
        > /tmp/requirements.txt \
 && pip install -q -r /tmp/requirements.txt

# The code. An editable install keeps /app the repository root, where the server finds
# frontend/ and migrations/.
COPY alembic.ini ./
COPY migrations ./migrations
COPY frontend ./frontend
COPY glassbox ./glassbox
COPY persistence ./persistence
COPY worker ./worker
COPY firststart ./firststart
COPY server ./server
RUN pip install -q --no-deps -e . \
 && useradd --create-home --uid 1000 glassbox \
 && mkdir -p /data \
 && chown glassbox:glassbox /data

USER glassbox
VOLUME ["/data"]
EXPOSE 8000

# The server; the compose file runs the same image as migrations, workers and setup.
CMD ["glassbox", "serve", "--host", "0.0.0.0", "--port", "8000"]

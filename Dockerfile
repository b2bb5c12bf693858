# kangaroo-flow image: one Dockerfile, two flavours by build arg.
#   GPU steps (CUDA build of torch 2.13.0, PyPI's default Linux wheel):
#     docker build -t $(IMAGE) .
#   CPU-only steps (curation, gate, versioning) or a CPU dev cluster:
#     docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t $(IMAGE)-cpu .
# Tag it `$(make -s image-name)`: cluster.image's repository at git-<commit>, what `make compile` refers to.
# CPU flavour: add --build-arg BASE=ubuntu:24.04.
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}

ARG TORCH_INDEX=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    KANGAROO_PARAMS=/app/params.yaml \
    HF_HOME=/cache/huggingface \
    TORCH_EXTENSIONS_DIR=/cache/torch_extensions \
    MPLBACKEND=Agg

# Python 3.11, the version requirements.lock was resolved for (Ubuntu 24.04 ships 3.12).
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common ca-certificates git \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev build-essential \
      libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Same pins as the laptop: torch first (CUDA or CPU build of 2.13.0), then the lock as constraints.
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --upgrade pip \
 && if [ -n "$TORCH_INDEX" ]; then pip install torch==2.13.0 --index-url "$TORCH_INDEX"; \
    else pip install torch==2.13.0; fi
COPY kangaroo ./kangaroo
COPY components ./components
COPY pipelines ./pipelines
# Editable, so the package sits in /app next to params.yaml and .dvc/config, which it reads at run time.
RUN pip install -c requirements.lock -e . \
 && pip install --no-deps rapidocr-onnxruntime==1.4.4 \
 && pip install --no-deps -c requirements.lock litdata
# Flash attention for the paper profile (model.attn_implementation: flash_attention_2), GPU flavour only:
# compiled against the image's torch, so build with the CUDA devel base, e.g.
#   --build-arg BASE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04 --build-arg FLASH_ATTN_VERSION=<release>
ARG FLASH_ATTN_VERSION=""
RUN if [ -n "$FLASH_ATTN_VERSION" ]; then \
      pip install packaging ninja && pip install --no-build-isolation "flash-attn==${FLASH_ATTN_VERSION}"; fi
COPY params.yaml dvc.yaml ./
COPY .dvc/config .dvc/config

# Unprivileged, with a writable cache the read-only root filesystem allows through a mounted volume.
RUN useradd --uid 10001 --create-home kangaroo && mkdir -p /cache && chown -R kangaroo /cache /app
USER 10001
ENTRYPOINT ["kangaroo"]
CMD ["--help"]

# kangaroo-flow: every entry point goes through one venv made here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
WORK := work
CACHE := .cache
PROFILE ?= tiny
PIP_INSTALL := --quiet --no-compile

# DeepSpeed JIT-compiles C++ ops on first use; keep them (and HF caches) in a folder we own.
export TORCH_EXTENSIONS_DIR := $(CURDIR)/$(CACHE)/torch_extensions
export HF_HOME := $(CURDIR)/$(CACHE)/huggingface
export HF_HUB_OFFLINE := 1
export TMPDIR := $(CURDIR)/$(WORK)/tmp
export MPLBACKEND := Agg

.PHONY: setup run test bench lint compile clean help
help:
	@echo "make run    - run the whole pipeline locally (KFP local runner, profile=$(PROFILE))"
	@echo "make test   - install if needed, then run the test suite"
	@echo "make bench  - benchmarks (ratios measured side by side)"
	@echo "make lint   - ruff"
	@echo "make compile [PROFILE=paper] [IMAGE_DIGEST=sha256:...] - write build/kangaroo_pipeline.yaml"
	@echo "             (+ .k8s.yaml: Pipeline/PipelineVersion for kubectl apply); placement of PROFILE,"
	@echo "             image by IMAGE_DIGEST or tagged git-<commit>"
	@echo "make minio-remote MINIO_ENDPOINT=http://host:9000 - point the DVC remote minio at a real MinIO"
	@echo "make repro [STAGE=name] - run dvc.yaml stages (dvc repro) with the venv and caches set up"

# Run in the background by the install: DeepSpeed's one JIT-built C++ op here (CPU shared-memory collectives,
# ~30 s, cached in TORCH_EXTENSIONS_DIR) compiles while pip installs the rest, not inside the first stage.
define PREBUILD_DEEPSPEED_OPS
from deepspeed.accelerator import get_accelerator
builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
if builder is not None and builder.is_compatible():
    builder.load()
endef
export PREBUILD_DEEPSPEED_OPS

setup: $(VENV)/.installed

# pip itself runs with TMPDIR=work/tmp, and the op build logs into .cache
$(VENV)/.installed: pyproject.toml requirements.lock $(wildcard patches/*.patch) | $(WORK)/tmp
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build; then DeepSpeed, whose op
	# builds beside the rest of the install.
	# rapidocr hard-requires GUI opencv-python; its real deps are in pyproject.toml. litdata without
	# torchvision (CUDA-built wheels break transformers here) and obstore (no plain HTTP).
	# pip byte-compiles on one core (half of a cold install); compileall uses them all. The one file left out
	# is torch's Python 3.12-only test helper, which pip's compile fails on and ignores.
	$(BIN)/pip install $(PIP_INSTALL) torch==2.13.0
	$(BIN)/pip install $(PIP_INSTALL) -c requirements.lock deepspeed
	$(BIN)/python -c "$$PREBUILD_DEEPSPEED_OPS" > $(CACHE)/deepspeed-ops.log 2>&1 & build=$$!; \
	$(BIN)/pip install $(PIP_INSTALL) -c requirements.lock -e '.[dev]' && \
	$(BIN)/pip install $(PIP_INSTALL) --no-deps rapidocr-onnxruntime==1.4.4 && \
	$(BIN)/pip install $(PIP_INSTALL) --no-deps -c requirements.lock litdata && \
	$(BIN)/python -m compileall -q -j 0 -x '/torch/testing/_internal/py312_intrinsics[.]py$$' $(VENV)/lib \
	  > /dev/null; installed=$$?; \
	wait $$build || { cat $(CACHE)/deepspeed-ops.log; exit 1; }; exit $$installed
	# Upstream fixes not yet released for pinned packages (each patch says which and why); skipped if applied.
	@site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	for fix in $(wildcard patches/*.patch); do \
	  patch -p1 -R -s -f --dry-run -d $$site < $$fix > /dev/null || patch -p1 -s -f -d $$site < $$fix || \
	  { echo "$$fix does not apply to the installed package: drop it if the release carries the fix"; exit 1; }; \
	done
	@touch $@

$(WORK)/tmp:
	@mkdir -p $@ $(CACHE)

run: setup | $(WORK)/tmp
	$(BIN)/python -m pipelines.run_local --profile $(PROFILE) --work $(WORK)

test: setup | $(WORK)/tmp
	$(BIN)/pytest -q

bench: setup | $(WORK)/tmp
	$(BIN)/python -m benchmarks

lint: setup
	$(BIN)/ruff check kangaroo components pipelines tests benchmarks
	$(BIN)/ruff format --check kangaroo components pipelines tests benchmarks

# One pipeline per profile (its node pools, GPUs, retries; `profile` defaults to it). The image: cluster.image's
# repository @IMAGE_DIGEST, else tagged git-<commit> (`make image-name` prints it for `docker build -t`).
compile: setup
	$(BIN)/python -m pipelines.compile --out build/kangaroo_pipeline.yaml --profile $(PROFILE) \
	  $(if $(IMAGE_DIGEST),--image-digest $(IMAGE_DIGEST))

clean:
	rm -rf $(WORK) build

image-name: setup
	@$(BIN)/python -m pipelines.compile --print-image $(if $(IMAGE_DIGEST),--image-digest $(IMAGE_DIGEST))

# ---- DVC remote on a real MinIO (docs/storage.md) ----------------------------------------------------------
# `make minio-remote MINIO_ENDPOINT=http://minio.example:9000 [MINIO_BUCKET=kangaroo] [MINIO_DEFAULT=1]`
# writes only .dvc/config.local (git-ignored). Credentials stay in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY;
# MINIO_ACCESS_KEY/MINIO_SECRET_KEY, if given, go to config.local too, never to the committed config.
MINIO_BUCKET ?= kangaroo
.PHONY: minio-remote
minio-remote: setup
	@test -n "$(MINIO_ENDPOINT)" || { echo "usage: make minio-remote MINIO_ENDPOINT=http://host:9000"; exit 2; }
	$(BIN)/dvc remote modify --local minio url s3://$(MINIO_BUCKET)/dvc
	$(BIN)/dvc remote modify --local minio endpointurl $(MINIO_ENDPOINT)
	@if [ -n "$(MINIO_ACCESS_KEY)" ]; then \
	  $(BIN)/dvc remote modify --local minio access_key_id "$(MINIO_ACCESS_KEY)" && \
	  $(BIN)/dvc remote modify --local minio secret_access_key "$(MINIO_SECRET_KEY)"; fi
	@if [ -n "$(MINIO_DEFAULT)" ]; then $(BIN)/dvc remote default --local minio; fi
	$(BIN)/dvc remote list

# `make repro [STAGE=train@instruction_tuning]`: dvc.yaml's stages with this Makefile's environment
# (caches, TMPDIR, offline HF) and the venv's `kangaroo` on PATH.
.PHONY: repro
repro: setup | $(WORK)/tmp
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro $(STAGE)

# ---- Kubernetes (docs/kubernetes.md) ----------------------------------------------------------------------
# The git-ignored inputs of manifests/base: a copy of params.yaml (params ConfigMap) and minio.env (random
# MinIO credentials, created once). Then: kubectl apply -k manifests/overlays/<local|gpu>
.PHONY: manifests-config
manifests-config: setup
	$(BIN)/python -m kangaroo.k8s.manifest_inputs --repo .

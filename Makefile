# Two jobs on a fresh machine: `make demo` (the node on the bundled demo) and `make test`.
# Both create or refresh .venv from pinned requirements first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_large_data.xml

.PHONY: demo test lint typecheck pytest venv train-demo-model clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py setup.cfg pyproject.toml .ci/patch_tensorrt_stubs.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	# TensorRT type stubs for mypy: --no-deps (they depend on the TensorRT wheels, which cannot install here),
	# version from constraints.txt, then a patched copy that parses (see the script) in .venv/tensorrt-stubs.
	rm -rf $(VENV)/tensorrt-stubs-wheel
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --target $(VENV)/tensorrt-stubs-wheel -c constraints.txt tensorrt-stubs
	$(PY) .ci/patch_tensorrt_stubs.py $(VENV)/tensorrt-stubs-wheel $(VENV)/tensorrt-stubs
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m seg_perception.demo --out demo_out

lint: $(STAMP)
	$(VENV)/bin/ruff check seg_perception test launch

typecheck: $(STAMP)
	@test -d $(VENV)/tensorrt-stubs/tensorrt || { echo "typecheck: $(VENV)/tensorrt-stubs is missing; run: rm $(STAMP) && make venv"; exit 1; }
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck pytest

# Dev-only: retrain the bundled demo model (CPU PyTorch from the local torch==2.13.0 file).
train-demo-model:
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q torch==2.13.0 -r requirements.txt -c constraints.txt
	PYTHONPATH=$(CURDIR) .venv-train/bin/python -m seg_perception.train_demo_model --out models/

clean:
	rm -rf demo_out bench_out build install log .pytest_cache .mypy_cache .ruff_cache

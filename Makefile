# Two jobs on a fresh machine: `make demo` (the node on the bundled demo) and `make test`.
# Both create or refresh .venv from pinned requirements first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The shipped large-data profile unless the caller set one (as `seg-perception run` and the launch file do).
FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_large_data.xml
export FASTDDS_DEFAULT_PROFILES_FILE

.PHONY: demo test test-oldest lint typecheck pytest venv train-demo-model mutation clean

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
	$(VENV)/bin/ruff check seg_perception test launch tools

typecheck: $(STAMP)
	@test -d $(VENV)/tensorrt-stubs/tensorrt || { echo "typecheck: $(VENV)/tensorrt-stubs is missing; run: rm $(STAMP) && make venv"; exit 1; }
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck pytest

# The oldest Python and library versions we declare (constraints-oldest.txt), proven on the core tests: those
# that need no ROS (the rclpy wheels exist for newer Pythons only). About a minute once the venv exists.
PYTHON_OLDEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10))
VENV_OLDEST := .venv-oldest
STAMP_OLDEST := $(VENV_OLDEST)/.installed-stamp
CORE_TESTS := test/test_engine_cache.py test/test_eval_end_to_end.py test/test_fused_graph_matches_reference.py \
	test/test_ground_grid.py test/test_ground_grid_on_generated_scenes.py test/test_image_codec_round_trips.py \
	test/test_metrics.py test/test_model_spec_validation.py test/test_segmenter_outputs.py \
	test/test_synthetic_scenes.py test/test_tensorrt_backend.py test/test_int8_qdq_agreement.py \
	test/test_no_unsafe_calls.py test/test_bag_process.py test/test_venv_console_scripts.py

$(STAMP_OLDEST): constraints-oldest.txt setup.py setup.cfg pyproject.toml
	@test -n "$(PYTHON_OLDEST)" || { echo "test-oldest: no Python 3.10 (looked in ~/.pyenv/versions/3.10.*); set PYTHON_OLDEST"; exit 1; }
	rm -rf $(VENV_OLDEST)
	$(PYTHON_OLDEST) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install -q --disable-pip-version-check -c constraints-oldest.txt \
		numpy opencv-python-headless onnx onnxruntime PyYAML tqdm rosbags pytest hypothesis wheel
	$(VENV_OLDEST)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP_OLDEST)

test-oldest: $(STAMP_OLDEST)
	$(VENV_OLDEST)/bin/python -c 'import sys, numpy, cv2, onnx, onnxruntime; print("test-oldest: Python", sys.version.split()[0], "numpy", numpy.__version__, "opencv", cv2.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__)'
	$(VENV_OLDEST)/bin/python -m pytest -q $(CORE_TESTS)

# Dev-only, not part of `make test`: mutation testing of seg_perception/core/ with mutmut (setup.cfg [mutmut]),
# in .venv-mutation, which sees the packages of .venv through a .pth file. MUTANTS picks modules by mutant name.
VENV_MUT := .venv-mutation
MUTANTS ?= 'seg_perception.core.metrics*' 'seg_perception.core.frame_stats*'

$(VENV_MUT)/.installed-stamp: requirements-mutation.txt $(STAMP)
	test -x $(VENV_MUT)/bin/python || $(PY) -m venv $(VENV_MUT)
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > \
		"$$($(VENV_MUT)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz_shared_venv.pth"
	$(VENV_MUT)/bin/python -m pip install -q --disable-pip-version-check -r requirements-mutation.txt
	touch $@

mutation: $(VENV_MUT)/.installed-stamp
	$(VENV_MUT)/bin/mutmut run $(MUTANTS)
	$(VENV_MUT)/bin/mutmut results

# Dev-only: retrain the bundled demo model (CPU PyTorch from the local torch==2.13.0 file).
train-demo-model:
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q torch==2.13.0 -r requirements.txt -c constraints.txt
	PYTHONPATH=$(CURDIR) .venv-train/bin/python -m seg_perception.train_demo_model --out models/

clean:
	rm -rf demo_out bench_out build install log .pytest_cache .mypy_cache .ruff_cache $(VENV_OLDEST)

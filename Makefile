# Two jobs on a fresh machine: `make demo` (the node on the bundled demo) and `make test`.
# Both create or refresh .venv from pinned requirements first, for one ROS 2 distribution: ROS_DISTRO=jazzy
# (LTS, to 2029-05-31; the default) or ROS_DISTRO=kilted (to 2026-12-31), e.g. `make test ROS_DISTRO=kilted`.
# The venv records the distribution it was built for (.venv/ros-distro); asking for the other one rebuilds it.
PYTHON ?= python3
ROS_DISTROS := jazzy kilted
ROS_DISTRO ?= jazzy
ifeq ($(filter $(ROS_DISTRO),$(ROS_DISTROS)),)
$(error ROS_DISTRO=$(ROS_DISTRO): make demo and make test run on jazzy (the default) or kilted, e.g. make test ROS_DISTRO=kilted)
endif
OTHER_DISTRO := $(filter-out $(ROS_DISTRO),$(ROS_DISTROS))
# Everything but the ROS wheels is in requirements.txt; the ROS wheels in requirements-<distro>.txt. The full
# transitive pins: constraints-jazzy.txt, and constraints.txt for Kilted.
CONSTRAINTS_jazzy := constraints-jazzy.txt
CONSTRAINTS_kilted := constraints.txt
CONSTRAINTS := $(CONSTRAINTS_$(ROS_DISTRO))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(ROS_DISTRO)
# `make demo` and `make test` stay on this machine: DDS discovers localhost only, and the shipped large-data
# profile's loopback variant binds and advertises 127.0.0.1 only (unless the caller set either).
ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_large_data_localhost.xml
export ROS_DISTRO ROS_AUTOMATIC_DISCOVERY_RANGE FASTDDS_DEFAULT_PROFILES_FILE
# Fast DDS 2.x (Jazzy) reads the same file under its old variable name only; 3.x (Kilted) warns when it is set
# (seg_perception/ros/dds_profile.py: profile_variables decides the same for a node started without make).
ifeq ($(ROS_DISTRO),jazzy)
FASTRTPS_DEFAULT_PROFILES_FILE ?= $(FASTDDS_DEFAULT_PROFILES_FILE)
export FASTRTPS_DEFAULT_PROFILES_FILE
endif

.PHONY: demo test test-oldest test-other-distro test-jazzy test-kilted distro-subset lint typecheck pytest docs \
	pictures venv train-demo-model mutation clean

venv: $(STAMP)

# A venv built for another distribution is removed first: both distributions' wheels install the same modules
# (rclpy, rcl, ...), so they cannot share one. Which one a venv holds: .ci/venv_distro.py (its marker, else its
# installed rclpy wheel). The marker and the stamp are removed before building and written last, so a build
# that stops part-way leaves no marker claiming a complete venv.
$(STAMP): requirements.txt requirements-$(ROS_DISTRO).txt $(CONSTRAINTS) setup.py setup.cfg pyproject.toml \
		.ci/patch_tensorrt_stubs.py .ci/venv_distro.py
	@reason="$$($(PYTHON) .ci/venv_distro.py $(VENV) $(ROS_DISTRO))" || exit 1; \
	if [ -n "$$reason" ]; then echo "$$reason"; rm -rf $(VENV); fi
	rm -f $(VENV)/ros-distro $(VENV)/.installed-$(ROS_DISTRO) $(VENV)/.installed-$(OTHER_DISTRO) \
		$(VENV)/.installed-stamp
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-$(ROS_DISTRO).txt \
		-c $(CONSTRAINTS)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	# TensorRT type stubs for mypy: --no-deps (they depend on the TensorRT wheels, which cannot install here),
	# version from the constraints, then a patched copy that parses (see the script) in .venv/tensorrt-stubs.
	rm -rf $(VENV)/tensorrt-stubs-wheel
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --target $(VENV)/tensorrt-stubs-wheel \
		-c $(CONSTRAINTS) tensorrt-stubs
	$(PY) .ci/patch_tensorrt_stubs.py $(VENV)/tensorrt-stubs-wheel $(VENV)/tensorrt-stubs
	echo $(ROS_DISTRO) > $(VENV)/ros-distro
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m seg_perception.demo --out demo_out --force

lint: $(STAMP)
	$(VENV)/bin/ruff check seg_perception test launch tools

typecheck: $(STAMP)
	@test -d $(VENV)/tensorrt-stubs/tensorrt || { echo "typecheck: $(VENV)/tensorrt-stubs is missing; run: rm $(STAMP) && make venv"; exit 1; }
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

# The docs site, strictly: a broken link or anchor fails (never -q: it hides the warnings --strict counts).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

test: lint typecheck pytest docs

# The docs' pictures (docs/images/) from real runs: demo panel, eval report, health, bird's-eye grid, 3 cameras
# (about a minute; needs chromium). The bench plot only from a given run: make pictures BENCH_JSON=bench.json
pictures: $(STAMP)
	PYTHONPATH=$(CURDIR) $(PY) tools/make_pictures.py $(if $(BENCH_JSON),--bench-json $(BENCH_JSON))

# The oldest Python and library versions we declare (constraints-oldest.txt), proven on the core tests: those
# that need no ROS (the rclpy wheels exist for newer Pythons only). About a minute once the venv exists.
PYTHON_OLDEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10))
VENV_OLDEST := .venv-oldest
STAMP_OLDEST := $(VENV_OLDEST)/.installed-stamp
CORE_TESTS := test/test_engine_cache.py test/test_eval_end_to_end.py test/test_fused_graph_matches_reference.py \
	test/test_ground_grid.py test/test_ground_grid_on_generated_scenes.py test/test_image_codec_round_trips.py \
	test/test_image_codec_matches_cv_bridge.py test/test_metrics.py test/test_model_spec_validation.py \
	test/test_segmenter_outputs.py \
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

# The other distribution beside the one `make test` ran on (CI: Kilted beside the Jazzy default), in its own
# .venv-<distro>: the node, replay, diagnostics, health, lifecycle, loopback and hostile-input tests over real
# DDS, the bag commands, the fleet in one process and on one local Ray, and the bench smoke tests.
DISTRO_TESTS := test/test_ros_distributions.py test/test_node_over_dds.py test/test_traffic_stays_on_loopback.py \
	test/test_node_diagnostics_over_dds.py test/test_health_over_dds.py test/test_bag_replay_into_node.py \
	test/test_lifecycle_and_multicamera.py test/test_hostile_input_over_dds.py test/test_camera_channel_keeps_newest_frame.py \
	test/test_bag_process.py test/test_video_camera_topics.py test/test_fleet_process_many_bags.py \
	test/test_fleet_completion_order_and_retries.py test/test_fleet_eval_tally_merges.py \
	test/test_fleet_process_bench_smoke.py \
	test/test_fleet_process_on_ray.py::test_bags_on_ray_equal_the_sequential_run_and_a_corrupt_bag_fails_alone \
	test/test_bench_smoke.py test/test_camera_intake_node.py test/test_signal_during_start.py test/test_video_input_losses.py \
	test/test_video_input_threads.py test/test_video_backlog_keeps_newest_keyframe.py

# (FASTRTPS_DEFAULT_PROFILES_FILE, exported above for Jazzy, is left for the sub-make to decide.)
test-other-distro:
	env -u FASTRTPS_DEFAULT_PROFILES_FILE $(MAKE) distro-subset ROS_DISTRO=$(OTHER_DISTRO) VENV=.venv-$(OTHER_DISTRO)

test-jazzy test-kilted:
	env -u FASTRTPS_DEFAULT_PROFILES_FILE $(MAKE) distro-subset ROS_DISTRO=$(@:test-%=%) VENV=.venv-$(@:test-%=%)

distro-subset: $(STAMP)
	$(PY) -c 'import importlib.metadata as m, seg_perception.ros.dds_profile as d; print("$(ROS_DISTRO): rclpy", m.version("rclpy"), "Fast DDS major", d.installed_fastdds_major())'
	$(PY) -m pytest -q $(DISTRO_TESTS)

# Dev-only, not part of `make test`: mutation testing of the pure modules with mutmut (setup.cfg [mutmut]),
# in .venv-mutation, which sees the packages of .venv through a .pth file. MUTANTS picks modules by mutant name
# (default: every module measured so far); tools/mutation_scores.py then writes their scores (less
# tools/equivalent_mutants.txt) to tools/mutation_scores.json. docs/mutation-testing.md says more.
VENV_MUT := .venv-mutation
MUTANTS ?= $(foreach m,core.metrics core.frame_stats core.health core.int8_gate core.spec_loader core.label_png \
	core.output_rule core.ground_grid evaluation.results fleet.work_units fleet.chunk_merge bag.bag_metadata \
	ros.launch_arguments core.image_codec core.engine_cache core.atomic_files core.spec_keys core.image_files \
	core.errors core.qdq_recipes evaluation.ground_truth core.video_cdr core.image_color core.onnx_builder \
	core.video_file core.onnx_checks,'seg_perception.$(m)*')
MUTATION_JOBS ?= 1

# Not a prerequisite on $(STAMP): a setup.cfg edit (the [mutmut] section) must not reinstall .venv.
$(VENV_MUT)/.installed-stamp: requirements-mutation.txt
	@test -f $(STAMP) || { echo "mutation: .venv is missing; run: make venv"; exit 1; }
	test -x $(VENV_MUT)/bin/python || $(PY) -m venv $(VENV_MUT)
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > \
		"$$($(VENV_MUT)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz_shared_venv.pth"
	$(VENV_MUT)/bin/python -m pip install -q --disable-pip-version-check -r requirements-mutation.txt
	touch $@

mutation: $(VENV_MUT)/.installed-stamp
	$(VENV_MUT)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(VENV_MUT)/bin/python tools/mutation_scores.py $(MUTANTS) --command "make mutation MUTANTS=\"$(MUTANTS)\""; \
		rc=$$?; $(VENV_MUT)/bin/python tools/mutation_scores.py --write-docs && exit $$rc

# Dev-only: retrain the bundled demo model (CPU PyTorch from the local torch==2.13.0 file).
train-demo-model:
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q torch==2.13.0 -r requirements.txt -r requirements-$(ROS_DISTRO).txt -c $(CONSTRAINTS)
	PYTHONPATH=$(CURDIR) .venv-train/bin/python -m seg_perception.train_demo_model --out models/

clean:
	rm -rf demo_out bench_out site build install log .pytest_cache .mypy_cache .ruff_cache $(VENV_OLDEST)

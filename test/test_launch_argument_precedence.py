"""Launch arguments `model`, `backend`, `use_sim_time` override the params file only when given.

`launch` is not installable here, so the launch file's decision lives in a pure function
(seg_perception.ros.launch_arguments.parameter_overrides) that is tested directly, and its result is handed
to a real node the way launch_ros does it: the params file, then a second parameters file with the overrides
(later files win). test_launch_and_config_agree.py checks the launch file calls it in that order.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ros_harness import NodeProcess, unique_domain_id

from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.ros.launch_arguments import parameter_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_given_overrides_nothing() -> None:
    assert parameter_overrides("", "", "") == {}


def test_given_arguments_override() -> None:
    assert parameter_overrides("/m.yaml", "", "") == {"model": "/m.yaml"}
    assert parameter_overrides("", "onnxruntime", "") == {"backend": "onnxruntime"}
    assert parameter_overrides("", "", "true") == {"use_sim_time": True}
    assert parameter_overrides("", "", "false") == {"use_sim_time": False}
    assert parameter_overrides("a.yaml", "tensorrt", "True") == {
        "model": "a.yaml",
        "backend": "tensorrt",
        "use_sim_time": True,
    }


def test_use_sim_time_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="use_sim_time:='yes' must be true or false"):
        parameter_overrides("", "", "yes")


def _edited_params_file(directory: Path, model: Path) -> Path:
    """The shipped params file, copied and edited as its header suggests: another model and backend."""
    document = yaml.safe_load((ROOT / "config" / "seg_perception.yaml").read_text())
    values = document["/**"]["ros__parameters"]
    values.update(model=str(model), backend="onnxruntime", qos_reliability="reliable")
    path = directory / "my_params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _start_as_launch_would(tmp_path: Path, params_file: Path, model: str, backend: str) -> str:
    """Run the node with the params file plus the overrides for these launch arguments; return its log."""
    ros_args = ["--params-file", str(params_file)]
    overrides = parameter_overrides(model, backend, "")
    if overrides:
        extra = tmp_path / "overrides.yaml"
        extra.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides}}))
        ros_args += ["--params-file", str(extra)]
    node = NodeProcess(unique_domain_id(), {}, extra_ros_args=ros_args)
    try:
        node.wait_for_log("warm-up on", timeout=90)
    finally:
        node.stop()
    return node.output


def test_params_file_model_and_backend_stand_when_no_argument_is_given(tmp_path: Path, spec_path: Path) -> None:
    log = _start_as_launch_would(tmp_path, _edited_params_file(tmp_path, spec_path), model="", backend="")
    tiny = load_model_spec(spec_path)
    assert f"model {tiny.name} ({tiny.num_classes} classes) from {spec_path}" in log
    assert "backend onnxruntime: requested explicitly" in log


def test_a_given_model_argument_beats_the_params_file(tmp_path: Path, spec_path: Path) -> None:
    demo = default_spec_path()
    log = _start_as_launch_would(tmp_path, _edited_params_file(tmp_path, spec_path), model=str(demo), backend="")
    assert f"model {load_model_spec(demo).name} (" in log
    assert "backend onnxruntime: requested explicitly" in log  # not given: still the params file's

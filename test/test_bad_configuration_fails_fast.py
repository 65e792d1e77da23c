"""Every configuration mistake stops the node at start-up: exit code 2, one line naming the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
from ros_harness import NodeProcess, unique_domain_id
from tiny_models import conv_logits_model, spec_dict, write_spec

CLASSES = ["road", "sidewalk", "car"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    conv_logits_model(d / "m.onnx", len(CLASSES), 48, 64)
    (d / "corrupt.onnx").write_bytes(onnx.load(str(d / "m.onnx")).SerializeToString()[:100])
    good = spec_dict("m.onnx", CLASSES)
    specs: dict[str, dict[str, Any]] = {
        "good": good,
        "corrupt": {**good, "onnx": "corrupt.onnx"},
        "missing_onnx": {**good, "onnx": "absent.onnx"},
        "input_name": {**good, "input": {**good["input"], "name": "images"}},
        "channels": {**good, "input": {**good["input"], "layout": "NHWC"}},
        "classes": {**good, "outputs": [{**good["outputs"][0], "classes": CLASSES[:2]}]},
    }
    (d / "file_not_dir").write_text("x")
    paths = {name: write_spec(d / f"{name}.yaml", spec) for name, spec in specs.items()}
    paths["not_a_dir"] = d / "file_not_dir"
    return paths


CASES = [
    ({"model": "/nonexistent/spec.yaml"}, "cannot read model spec /nonexistent/spec.yaml"),
    ({"model": "@corrupt"}, "is not a readable ONNX model"),
    ({"model": "@missing_onnx"}, "absent.onnx does not exist"),
    ({"model": "@input_name"}, "the ONNX model has no input 'images'; set it to one of: input"),
    ({"model": "@channels"}, "model spec key 'input.layout': NHWC puts the channels"),
    ({"model": "@classes"}, "lists 2 classes but output 'logits' has 3 channels"),
    ({"model": "@good", "backend": "cuda"}, "parameter 'backend' = 'cuda': allowed values are auto, onnxruntime"),
    ({"model": "@good", "overlay_alpha": 2.0}, "Parameter overlay_alpha out of range"),
    ({"model": "@good", "overlay_alpha": "abc"}, "Trying to set parameter 'overlay_alpha' to 'abc'"),
    ({"model": "@good", "qos_reliability": "sometimes"}, "parameter 'qos_reliability' = 'sometimes'"),
    ({"model": "@good", "threads": -1}, "Parameter threads out of range"),
    ({"model": "@good", "backend": "tensorrt"}, "TensorRT was not found"),
    (
        {"model": "@good", "backend": "tensorrt", "engine_cache_dir": "@not_a_dir/engines"},
        "engine cache directory",
    ),
]


@pytest.mark.parametrize(("params", "message"), CASES, ids=[m[:40] for _, m in CASES])
def test_bad_configuration_exits_2_with_one_clear_line(
    models: dict[str, Path], params: dict[str, Any], message: str
) -> None:
    resolved = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("@"):
            name, _, rest = value[1:].partition("/")
            value = str(models[name] / rest) if rest else str(models[name])
        resolved[key] = value
    node = NodeProcess(unique_domain_id(5), resolved)
    try:
        node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert node.proc.returncode == 2, node.output
    assert message in node.output, node.output
    assert "Traceback" not in node.output
    fatal = [line for line in node.output.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1, node.output

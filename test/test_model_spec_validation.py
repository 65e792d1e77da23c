"""Model specs: valid ones load; every kind of mistake is refused with the key and the fix."""

from __future__ import annotations

import copy
import locale
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import version_converter
from tiny_models import conv_logits_model, spec_dict, two_head_model, write_spec

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.spec_loader import load_model_spec

CLASSES = ["road", "sidewalk", "car"]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 48, 64)
    return tmp_path


def _load(model_dir: Path, spec: dict[str, Any]) -> Any:
    return load_model_spec(write_spec(model_dir / "spec.yaml", spec))


def test_valid_spec_loads_with_derived_fields(model_dir: Path) -> None:
    spec = _load(model_dir, spec_dict("m.onnx", CLASSES))
    assert spec.num_classes == 3
    assert spec.class_names == ("road", "sidewalk", "car")
    assert spec.drivable_ids == (0,)
    assert spec.obstacle_ids == (2,)
    assert spec.onnx_path == model_dir / "m.onnx"
    assert spec.heads[0].class_ids == (0, 1, 2)


def _edit(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    d = copy.deepcopy(d)
    *parents, last = path.split(".")
    node: Any = d
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return d


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("input.colour_order", "RGB", "key 'input.colour_order': unknown key"),
        ("bogus", 1, "key 'bogus': unknown key"),
        ("input.name", _DELETE, "key 'input.name': missing"),
        ("outputs", _DELETE, "key 'outputs': missing"),
        ("input.layout", "CHW", "key 'input.layout': 'CHW' is not allowed; use one of: NCHW, NHWC"),
        ("input.channel_order", "rgb", "key 'input.channel_order'"),
        ("input.pixel_range", 0, "key 'input.pixel_range': must be > 0"),
        ("masks", {"color": {"head": "logits", "classes": ["road"]}}, "key 'masks.color': 'color' cannot name a mask"),
        ("masks", {"road": {"head": "out", "classes": ["road"]}}, "key 'masks.road.head': no output named 'out'"),
        ("masks", {"road": {"head": "logits", "classes": ["lane"]}}, "head 'logits' has no class 'lane'"),
        ("masks", {"road": {"head": "logits"}}, "key 'masks.road.classes': missing"),
        ("upsampling", {"method": "bicubic"}, "key 'upsampling.method': 'bicubic' is not allowed"),
        ("upsampling", {"method": "labels_nearest", "align_corners": True}, "only used with method: logits_bilinear"),
        ("input.mean", [0.5, 0.5], "key 'input.mean': expected a list of 3 numbers"),
        ("input.std", [0.2, 0.0, 0.2], "key 'input.std[1]': must be > 0"),
        ("input.resize", "crop", "key 'input.resize'"),
        ("input.pad_value", 114, "key 'input.pad_value': not used with resize: stretch"),
        ("input.width", 0, "key 'input.width': expected an integer in [1, 16384]"),
        ("classes.0.color", [300, 0, 0], "key 'classes[0].color[0]'"),
        ("classes.1.name", "road", "key 'classes[1].name': duplicate class name 'road'"),
        ("outputs.0.kind", "scores", "key 'outputs[0].kind'"),
        ("outputs.0.classes", ["road", "sidewalk", "truck"], "key 'outputs[0].classes[2]': unknown class 'truck'"),
        ("outputs.0.classes", ["road", None, "car"], "null in the first head"),
        ("outputs.0.channel_axis", _DELETE, "key 'outputs[0].channel_axis': missing"),
        ("ignore_id", 1, "key 'ignore_id': 1 collides with class 'sidewalk'"),
        ("spec_version", 2, "key 'spec_version': version 2 is not supported"),
    ],
)
def test_spec_errors_name_the_key(model_dir: Path, path: str, value: Any, message: str) -> None:
    with pytest.raises(ModelSpecError, match=None) as info:
        _load(model_dir, _edit(spec_dict("m.onnx", CLASSES), path, value))
    assert message in str(info.value)
    assert "spec.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("input.name", "images", "the ONNX model has no input 'images'; set it to one of: input"),
        ("input.layout", "NHWC", "the layout is probably NCHW"),
        ("input.height", 64, "key 'input.height': 64 disagrees with the ONNX input 'input'"),
        ("outputs.0.name", "out", "the ONNX model has no output 'out'; use one of: logits"),
        ("outputs.0.classes", ["road", "car"], "lists 2 classes but output 'logits' has 3 channels"),
        (
            "outputs.0.channel_axis",
            2,
            "key 'outputs[0].channel_axis': axis 2 of output 'logits' (dims ['N', 3, 48, 64]) has size 48; "
            "the 3 listed classes match axis 1; set channel_axis: 1",
        ),
        ("onnx", "missing.onnx", "missing.onnx does not exist"),
    ],
)
def test_spec_disagreeing_with_onnx_is_refused(model_dir: Path, path: str, value: Any, message: str) -> None:
    d = _edit(spec_dict("m.onnx", CLASSES), path, value)
    if path == "outputs.0.classes":
        d["classes"] = d["classes"][:2] if len(value) == 2 else d["classes"]
        d["classes"][-1]["name"] = "car"
    with pytest.raises(ModelSpecError) as info:
        _load(model_dir, d)
    assert message in str(info.value)


def test_a_spatial_channel_axis_is_named_not_the_class_list(tmp_path: Path) -> None:
    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 360, 640)
    d = spec_dict("m.onnx", CLASSES, width=640, height=360)
    d["outputs"][0]["channel_axis"] = 2
    d["outputs"][0]["classes"] = ["road", "sidewalk"]  # wrong twice: no axis holds 2 classes either
    d["classes"] = d["classes"][:2]
    with pytest.raises(ModelSpecError) as info:
        _load(tmp_path, d)
    assert "key 'outputs[0].channel_axis': axis 2 of output 'logits'" in str(info.value)
    assert "has size 360; a class axis holds at most 255 classes, so axis 2 is probably spatial" in str(info.value)
    assert "list exactly" not in str(info.value)


def test_any_positive_pixel_range_scales_before_mean_and_std(model_dir: Path) -> None:
    from seg_perception.core.graph_compiler import normalization_coefficients

    spec = _load(model_dir, _edit(spec_dict("m.onnx", CLASSES), "input.pixel_range", 2.0))
    a, b = normalization_coefficients(spec)
    pixel = 51.0  # 0.2 on the 0-1 scale, 0.4 on the 0-2 scale
    expected = (pixel / 255.0 * 2.0 - np.asarray(spec.input.mean)) / np.asarray(spec.input.std)
    assert np.allclose(pixel * a + b, expected, atol=1e-6)


def test_invalid_yaml_and_non_mapping(model_dir: Path) -> None:
    (model_dir / "bad.yaml").write_text("input: [unclosed\n")
    with pytest.raises(ModelSpecError, match="is not valid YAML"):
        load_model_spec(model_dir / "bad.yaml")
    (model_dir / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ModelSpecError, match="expected a mapping"):
        load_model_spec(model_dir / "list.yaml")
    with pytest.raises(ModelSpecError, match="cannot read model spec"):
        load_model_spec(model_dir / "nope.yaml")


def test_corrupt_onnx_is_refused(model_dir: Path) -> None:
    (model_dir / "m.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelSpecError, match="is not a readable ONNX model"):
        _load(model_dir, spec_dict("m.onnx", CLASSES))


def test_second_head_may_paint_nothing_but_not_only_nulls(tmp_path: Path) -> None:
    two_head_model(tmp_path / "m.onnx", 48, 64)
    d = spec_dict("m.onnx", ["background", "drivable", "lane"])
    d["outputs"] = [
        {"name": "drivable", "kind": "logits", "channel_axis": 1, "classes": ["background", "drivable"]},
        {"name": "lane", "kind": "logits", "channel_axis": 1, "classes": [None, None]},
    ]
    with pytest.raises(ModelSpecError, match="every entry is null"):
        _load(tmp_path, d)
    d["outputs"][1]["classes"] = [None, "lane"]
    spec = _load(tmp_path, d)
    assert spec.heads[1].class_ids == (None, 2)


def test_old_opset_model_is_upgraded(model_dir: Path) -> None:
    model = onnx.load(str(model_dir / "m.onnx"))
    old = version_converter.convert_version(model, 13)
    onnx.save(old, str(model_dir / "old.onnx"))
    spec = _load(model_dir, spec_dict("old.onnx", CLASSES))
    fused = compile_fused_graph(spec, 128, 96)
    assert {o.domain: o.version for o in fused.opset_import}[""] == 17


def test_fixed_batch_conflicts_with_requested_batch(tmp_path: Path) -> None:
    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 48, 64, batch=1)
    spec = _load(tmp_path, spec_dict("m.onnx", CLASSES))
    with pytest.raises(ModelSpecError, match="batch is fixed at 1"):
        compile_fused_graph(spec, 128, 96, batch=4)
    dims = compile_fused_graph(spec, 128, 96).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 96, 128, 3]


def test_the_loaded_spec_knows_its_own_file_resolved(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_spec(model_dir / "spec.yaml", spec_dict("m.onnx", CLASSES))
    monkeypatch.chdir(model_dir)
    spec = load_model_spec("spec.yaml")
    assert spec.spec_path == model_dir.resolve() / "spec.yaml"
    assert spec.onnx_path == model_dir.resolve() / "m.onnx"


def test_a_missing_spec_is_one_line_with_the_reason(model_dir: Path) -> None:
    with pytest.raises(ModelSpecError) as err:
        load_model_spec(model_dir / "nope.yaml")
    assert str(err.value) == f"cannot read model spec {model_dir / 'nope.yaml'}: No such file or directory"


def test_spec_mistakes_are_prefixed_with_the_spec_file(model_dir: Path) -> None:
    # A UTF-8 spec (a class name with ß) reads the same whatever the locale.
    text = yaml.safe_dump(spec_dict("m.onnx", ["road", "Straße", "car"]), sort_keys=False, allow_unicode=True)
    (model_dir / "spec.yaml").write_bytes(text.encode("utf-8"))
    assert "Straße".encode() in (model_dir / "spec.yaml").read_bytes()
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale (a container without locales)
    try:
        assert load_model_spec(model_dir / "spec.yaml").class_names[1] == "Straße"
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
    (model_dir / "list.yaml").write_text("- 1\n")
    with pytest.raises(ModelSpecError) as err:
        load_model_spec(model_dir / "list.yaml")
    assert str(err.value).startswith(f"{model_dir / 'list.yaml'}: ")

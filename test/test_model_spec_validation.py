"""Model specs: valid ones load; every kind of mistake is refused with the key and the fix."""

from __future__ import annotations

import copy
import locale
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import version_converter
from tiny_models import conv_logits_model, spec_dict, two_head_model, write_spec

from seg_perception.core import model_spec
from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.model_spec import (
    ClassInfo,
    HeadSpec,
    InputSpec,
    MaskSpec,
    UpsamplingSpec,
    default_spec_path,
    parse_model_spec,
)
from seg_perception.core.onnx_checks import TensorInfo, check_spec_against_onnx, head_num_classes, load_onnx
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


# core/onnx_checks on hand-made graphs: one opaque node (a domain shape inference does not know) makes the
# declared output shapes stand, so each disagreement is one edit; every message is checked word for word.
def _opaque_model(
    inputs: list[tuple[str, list[Any]]], outputs: list[tuple[str, int, list[Any]]], initializers: int = 0
) -> onnx.ModelProto:
    inits = [onnx.numpy_helper.from_array(np.zeros(2, np.float32), f"w{k}") for k in range(initializers)]
    node = onnx.helper.make_node("Opaque", [n for n, _ in inputs], [n for n, _, _ in outputs], domain="test.opaque")
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, d) for n, d in inputs]
        + [onnx.helper.make_tensor_value_info(i.name, onnx.TensorProto.FLOAT, [2]) for i in inits],
        [onnx.helper.make_tensor_value_info(n, t, d) for n, t, d in outputs],
        inits,
    )
    opsets = [onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("test.opaque", 1)]
    return onnx.helper.make_model(graph, opset_imports=opsets)


def _stand_in_spec(layout: str = "NCHW", heads: list[Any] | None = None, width: int = 64, height: int = 48) -> Any:
    inp = InputSpec("input", layout, width, height, "RGB", 1.0, (0.5,) * 3, (0.25,) * 3)
    return SimpleNamespace(input=inp, heads=heads or [HeadSpec("logits", "logits", 1, (0, 1, 2))], onnx_path=None)


def _head(name: str = "logits", kind: str = "logits", axis: int | None = 1, classes: int = 3) -> Any:
    return HeadSpec(name, kind, axis, tuple(range(classes)))


NCHW_IN = [("input", ["N", 3, 48, 64])]
FLOAT = onnx.TensorProto.FLOAT


def _onnx_refusal(spec: Any, model: onnx.ModelProto) -> str:
    with pytest.raises(ModelSpecError) as info:
        check_spec_against_onnx(spec, model)
    return str(info.value)


def test_spec_and_graph_that_agree_pass_in_both_layouts() -> None:
    check_spec_against_onnx(_stand_in_spec(), _opaque_model(NCHW_IN, [("logits", FLOAT, ["N", 3, 48, 64])]))
    nhwc = _opaque_model([("input", ["N", 48, 64, 3])], [("logits", FLOAT, ["N", 48, 64, 3])])
    check_spec_against_onnx(_stand_in_spec("NHWC", [_head(axis=3)]), nhwc)
    check_spec_against_onnx(_stand_in_spec("NHWC", [_head(axis=-1)]), nhwc)
    # symbolic or unknown sizes are not contradicted; initializers listed as inputs are not inputs
    loose = _opaque_model([("input", ["N", "C", None, "W"])], [("logits", FLOAT, ["N", "K", "h", "w"])], 2)
    check_spec_against_onnx(_stand_in_spec(), loose)


def test_the_input_name_and_count_are_refused_naming_the_fix() -> None:
    model = _opaque_model([("pixels", ["N", 3, 48, 64])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: pixels"
    )
    model = _opaque_model([("a", [1]), ("b", [1])], [("logits", FLOAT, [1])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: a, b"
    )
    model = _opaque_model([], [("logits", FLOAT, [1])], 1)  # only an initializer: no real input
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: (none)"
    )
    model = _opaque_model([*NCHW_IN, ("mask", [1]), ("extra", [1])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has extra inputs ['mask', 'extra']; "
        "export the model with a single image input"
    )


@pytest.mark.parametrize("rank", [3, 5])
def test_an_input_not_of_rank_4_is_refused(rank: int) -> None:
    model = _opaque_model([("input", [1, 3, 48, 64, 1][:rank])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        f"model spec key 'input.layout': input 'input' has rank {rank}, expected 4 (NCHW)"
    )


def test_channels_not_of_size_3_are_refused_with_the_likely_layout() -> None:
    model = _opaque_model([("input", [1, 48, 64, 3])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.layout': NCHW puts the channels of input 'input' (dims [1, 48, 64, 3]) at a "
        "dimension of size 48, not 3; the layout is probably NHWC"
    )
    model = _opaque_model([("input", [1, 3, 48, 64])], [("logits", FLOAT, ["N", 48, 64, 3])])
    assert _onnx_refusal(_stand_in_spec("NHWC", [_head(axis=3)]), model) == (
        "model spec key 'input.layout': NHWC puts the channels of input 'input' (dims [1, 3, 48, 64]) at a "
        "dimension of size 64, not 3; the layout is probably NCHW"
    )
    model = _opaque_model([("input", [1, 1, 48, 64])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.layout': NCHW puts the channels of input 'input' (dims [1, 1, 48, 64]) at a "
        "dimension of size 1, not 3; the model must take 3-channel images"
    )


def test_a_height_or_width_the_graph_contradicts_is_refused_with_its_size() -> None:
    model = _opaque_model([("input", ["N", 3, 50, 64])], [("logits", FLOAT, ["N", 3, 50, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'input.height': 48 disagrees with the ONNX input 'input' (dims ['N', 3, 50, 64]); set it to 50"
    )
    model = _opaque_model([("input", ["N", 48, 66, 3])], [("logits", FLOAT, ["N", 48, 66, 3])])
    assert _onnx_refusal(_stand_in_spec("NHWC", [_head(axis=3)]), model) == (
        "model spec key 'input.width': 64 disagrees with the ONNX input 'input' (dims ['N', 48, 66, 3]); set it to 66"
    )


def test_a_missing_output_is_refused_naming_the_head_and_the_outputs() -> None:
    model = _opaque_model(NCHW_IN, [("a", FLOAT, ["N", 3, 48, 64]), ("b", FLOAT, ["N", 3, 48, 64])])
    spec = _stand_in_spec(heads=[_head("a"), _head("c")])
    assert _onnx_refusal(spec, model) == (
        "model spec key 'outputs[1].name': the ONNX model has no output 'c'; use one of: a, b"
    )


@pytest.mark.parametrize("dims", [["N", 48, 64], ["N", 1, 48, 64], ["N", None, 48, 64], ["N", "one", 48, 64]])
@pytest.mark.parametrize("dtype", [onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.UINT8])
def test_a_labels_head_may_be_n_h_w_or_n_1_h_w_of_integers(dims: list[Any], dtype: int) -> None:
    spec = _stand_in_spec(heads=[_head("labels", "labels", None)])
    check_spec_against_onnx(spec, _opaque_model(NCHW_IN, [("labels", dtype, dims)]))


@pytest.mark.parametrize("dims", [["N", 2, 48, 64], ["N", 48], ["N", 1, 1, 48, 64], ["N", 3, 48, 64]])
def test_a_labels_head_of_another_shape_is_refused(dims: list[Any]) -> None:
    spec = _stand_in_spec(heads=[_head("labels", "labels", None)])
    assert _onnx_refusal(spec, _opaque_model(NCHW_IN, [("labels", onnx.TensorProto.INT64, dims)])) == (
        f"model spec key 'outputs[0].kind': labels head 'labels' has dims {dims}; "
        "a labels head must be [N, H, W] or [N, 1, H, W]"
    )


@pytest.mark.parametrize(("dtype", "name"), [(FLOAT, "FLOAT"), (onnx.TensorProto.INT16, "INT16")])
def test_a_labels_head_of_another_type_is_refused(dtype: int, name: str) -> None:
    spec = _stand_in_spec(heads=[_head("labels", "labels", None), _head("x", "labels", None)])
    model = _opaque_model(NCHW_IN, [("labels", onnx.TensorProto.UINT8, ["N", 48, 64]), ("x", dtype, ["N", 48, 64])])
    assert _onnx_refusal(spec, model) == (
        f"model spec key 'outputs[1].kind': output 'x' is of type {name}, not integer labels; "
        "use kind: logits or probabilities"
    )


@pytest.mark.parametrize("dims", [["N", 3, 48], ["N", 3, 48, 64, 1]])
def test_a_score_map_not_of_rank_4_is_refused(dims: list[Any]) -> None:
    assert _onnx_refusal(_stand_in_spec(), _opaque_model(NCHW_IN, [("logits", FLOAT, dims)])) == (
        f"model spec key 'outputs[0].name': output 'logits' has rank {len(dims)} (dims {dims}), "
        "expected a 4-D [N, C, H, W] or [N, H, W, C] score map"
    )


@pytest.mark.parametrize("axis", [0, -4, 4, -5])
def test_a_channel_axis_outside_the_map_or_on_the_batch_is_refused(axis: int) -> None:
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 3, 3, 3])])
    assert _onnx_refusal(_stand_in_spec(heads=[_head(axis=axis)]), model) == (
        f"model spec key 'outputs[0].channel_axis': {axis} is not a class axis of dims [3, 3, 3, 3]; use 1 or 3"
    )


@pytest.mark.parametrize("axis", [1, 2, 3, -1, -2, -3])
def test_every_other_axis_may_hold_the_classes(axis: int) -> None:
    check_spec_against_onnx(
        _stand_in_spec(heads=[_head(axis=axis)]), _opaque_model(NCHW_IN, [("logits", FLOAT, [3] * 4)])
    )


def test_a_probabilities_head_without_a_channel_axis_takes_axis_1() -> None:
    head = _head("p", "probabilities", None)
    model = _opaque_model(NCHW_IN, [("p", FLOAT, [1, 3, 48, 64])])
    check_spec_against_onnx(_stand_in_spec(heads=[head]), model)
    assert head_num_classes(head, TensorInfo("p", FLOAT, (1, 3, 48, 64))) is None
    assert head_num_classes(_head(axis=2), TensorInfo("p", FLOAT, (1, 3, 48, 64))) == 48
    assert TensorInfo("p", FLOAT, (1, 3, 48)).rank == 3


def test_a_class_count_the_graph_contradicts_blames_the_list_or_the_axis() -> None:
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, ["N", 4, 48, 64])])
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].classes': lists 3 classes but output 'logits' has 4 channels on axis 1 "
        "(dims ['N', 4, 48, 64]); list exactly 4 class names"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, ["N", 48, 64, 3])])  # the classes are on axis 3
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].channel_axis': axis 1 of output 'logits' (dims ['N', 48, 64, 3]) has size 48; "
        "the 3 listed classes match axis 3; set channel_axis: 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 256, 48, 64])])  # batch 3 is not a class axis
    assert _onnx_refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].channel_axis': axis 1 of output 'logits' (dims [3, 256, 48, 64]) has size 256; "
        "a class axis holds at most 255 classes, so axis 1 is probably spatial; "
        "the class axis of [N, C, H, W] is 1 and of [N, H, W, C] is 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 255, 48, 64])])  # 255 may be classes: the list is wrong
    assert _onnx_refusal(_stand_in_spec(), model).startswith("model spec key 'outputs[0].classes': lists 3 classes")
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [1, 48, 64, 3])])  # negative axis, the match named by index
    assert _onnx_refusal(_stand_in_spec(heads=[_head(axis=-3)]), model) == (
        "model spec key 'outputs[0].channel_axis': axis -3 of output 'logits' (dims [1, 48, 64, 3]) has size 48; "
        "the 3 listed classes match axis 3; set channel_axis: 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [1, 3, 3, 3])])  # the class axis itself is not a match
    check_spec_against_onnx(_stand_in_spec(), model)
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 4, 48, 2])])  # only the batch holds 3: not a match
    assert _onnx_refusal(_stand_in_spec(), model).startswith("model spec key 'outputs[0].classes': lists 3 classes")


def test_an_onnx_file_that_is_missing_or_unreadable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError) as info:
        load_onnx(tmp_path / "none.onnx")
    assert str(info.value) == f"model spec key 'onnx': file {tmp_path / 'none.onnx'} does not exist; fix the path"
    (tmp_path / "bad.onnx").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(ModelSpecError) as info:
        load_onnx(tmp_path / "bad.onnx")
    assert str(info.value).startswith(f"model spec key 'onnx': {tmp_path / 'bad.onnx'} is not a readable ONNX model (")
    assert str(info.value).endswith(")")


# --------------------------------------------------------------------------------------------
# parse_model_spec on its own (no ONNX file, no spec file): each refusal is one line, word for word, and
# every default and boundary of the spec is pinned.

BASE = Path("/specs")


def _parse(d: Any) -> Any:
    return parse_model_spec(d, BASE)


def _refusal(d: Any) -> str:
    with pytest.raises(ModelSpecError) as info:
        parse_model_spec(d, BASE)
    return str(info.value)


def _two_heads(second: dict[str, Any] | None = None) -> dict[str, Any]:
    d = spec_dict("m.onnx", ["background", "drivable", "lane"])
    d["outputs"] = [
        {"name": "drivable", "kind": "logits", "channel_axis": 1, "classes": ["background", "drivable"]},
        second or {"name": "lane", "kind": "logits", "channel_axis": 1, "classes": [None, "lane"]},
    ]
    return d


_SS = "give it (the camera's shorter side becomes this many pixels) exactly with resize: shorter_side"
_INPUT_KEYS = (
    "name, layout, width, height, channel_order, pixel_range, mean, std, resize, pad_value, interpolation, "
    "shorter_side, pad_to_multiple"
)
_TOP_KEYS = "spec_version, name, description, onnx, input, outputs, classes, ignore_id, metrics, masks, upsampling"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("bogus", 1, f"model spec key 'bogus': unknown key; remove it or use one of: {_TOP_KEYS}"),
        ("name", _DELETE, "model spec key 'name': missing; this field is required"),
        ("name", "", "model spec key 'name': expected a non-empty string, got ''; quote the value"),
        (
            "spec_version",
            0,
            "model spec key 'spec_version': expected an integer in [1, 1000000], got 0; fix the number",
        ),
        (
            "spec_version",
            1_000_001,
            "model spec key 'spec_version': expected an integer in [1, 1000000], got 1000001; fix the number",
        ),
        (
            "spec_version",
            True,
            "model spec key 'spec_version': expected an integer in [1, 1000000], got True; fix the number",
        ),
        (
            "spec_version",
            1_000_000,
            "model spec key 'spec_version': version 1000000 is not supported; this release reads version 1",
        ),
        ("spec_version", 2, "model spec key 'spec_version': version 2 is not supported; this release reads version 1"),
        ("ignore_id", 2, "model spec key 'ignore_id': 2 collides with class 'car'; use 255"),
        ("ignore_id", 0, "model spec key 'ignore_id': 0 collides with class 'road'; use 255"),
        ("ignore_id", 256, "model spec key 'ignore_id': expected an integer in [0, 255], got 256; fix the number"),
        ("ignore_id", -1, "model spec key 'ignore_id': expected an integer in [0, 255], got -1; fix the number"),
        ("onnx", "", "model spec key 'onnx': expected a non-empty string, got ''; quote the value"),
        ("onnx", 5, "model spec key 'onnx': expected a non-empty string, got 5; quote the value"),
        ("metrics", [1], "model spec key 'metrics': expected a mapping; write 'name: value' lines or remove it"),
        ("input", "x", "model spec key 'input': expected a mapping, got str; write it as 'name: value' lines"),
        ("input.zoom", 2, f"model spec key 'input.zoom': unknown key; remove it or use one of: {_INPUT_KEYS}"),
        ("input.std", _DELETE, "model spec key 'input.std': missing; this field is required"),
        ("input.name", "", "model spec key 'input.name': expected a non-empty string, got ''; quote the value"),
        ("input.layout", "CHW", "model spec key 'input.layout': 'CHW' is not allowed; use one of: NCHW, NHWC"),
        (
            "input.channel_order",
            "rgb",
            "model spec key 'input.channel_order': 'rgb' is not allowed; use one of: RGB, BGR",
        ),
        (
            "input.resize",
            "crop",
            "model spec key 'input.resize': 'crop' is not allowed; use one of: stretch, letterbox, "
            "shorter_side, native",
        ),
        (
            "input.interpolation",
            "nearest",
            "model spec key 'input.interpolation': 'nearest' is not allowed; use one of: bilinear, antialias, "
            "antialias_uint8, antialias_uint8_fixed_point, pil_bilinear, cv2_linear_uint8",
        ),
        ("input.width", 0, "model spec key 'input.width': expected an integer in [1, 16384], got 0; fix the number"),
        (
            "input.width",
            16385,
            "model spec key 'input.width': expected an integer in [1, 16384], got 16385; fix the number",
        ),
        (
            "input.width",
            64.0,
            "model spec key 'input.width': expected an integer in [1, 16384], got 64.0; fix the number",
        ),
        ("input.height", 0, "model spec key 'input.height': expected an integer in [1, 16384], got 0; fix the number"),
        (
            "input.height",
            16385,
            "model spec key 'input.height': expected an integer in [1, 16384], got 16385; fix the number",
        ),
        ("input.pixel_range", 0, "model spec key 'input.pixel_range': must be > 0, got 0; use a positive number"),
        ("input.pixel_range", -1.0, "model spec key 'input.pixel_range': must be > 0, got -1.0; use a positive number"),
        (
            "input.pixel_range",
            "1",
            "model spec key 'input.pixel_range': expected a finite number, got '1'; fix the number",
        ),
        (
            "input.pixel_range",
            True,
            "model spec key 'input.pixel_range': expected a finite number, got True; fix the number",
        ),
        (
            "input.pixel_range",
            float("nan"),
            "model spec key 'input.pixel_range': expected a finite number, got nan; fix the number",
        ),
        (
            "input.pixel_range",
            float("inf"),
            "model spec key 'input.pixel_range': expected a finite number, got inf; fix the number",
        ),
        (
            "input.pixel_range",
            10**400,  # YAML reads any number of digits: beyond float's range, not an OverflowError
            f"model spec key 'input.pixel_range': expected a finite number, got {10**400}; fix the number",
        ),
        (
            "input.mean",
            "abc",
            "model spec key 'input.mean': expected a list of 3 numbers, got 'abc'; give one value per channel",
        ),
        (
            "input.mean",
            0.5,
            "model spec key 'input.mean': expected a list of 3 numbers, got 0.5; give one value per channel",
        ),
        (
            "input.mean",
            [1, 2, 3, 4],
            "model spec key 'input.mean': expected a list of 3 numbers, got [1, 2, 3, 4]; give one value per channel",
        ),
        (
            "input.mean",
            [0.5, "x", 0.5],
            "model spec key 'input.mean[1]': expected a finite number, got 'x'; fix the number",
        ),
        ("input.std", [0.2, 0.2, 0], "model spec key 'input.std[2]': must be > 0, got 0; use a positive number"),
        ("input.std", [-0.2, 0.2, 0.2], "model spec key 'input.std[0]': must be > 0, got -0.2; use a positive number"),
        (
            "input.pad_value",
            114,
            "model spec key 'input.pad_value': not used with resize: stretch; remove it or use "
            "letterbox, shorter_side, native",
        ),
        ("input.shorter_side", 256, f"model spec key 'input.shorter_side': not used with resize: stretch; {_SS}"),
        (
            "input.pad_to_multiple",
            32,
            "model spec key 'input.pad_to_multiple': not used with resize: stretch; use it with shorter_side or native",
        ),
        (
            "classes",
            "road",
            "model spec key 'classes': expected a non-empty list; list every class as {name: ..., color: [r, g, b]}",
        ),
        (
            "classes",
            [],
            "model spec key 'classes': expected a non-empty list; list every class as {name: ..., color: [r, g, b]}",
        ),
        (
            "classes",
            {"name": "road"},
            "model spec key 'classes': expected a non-empty list; list every class as {name: ..., color: [r, g, b]}",
        ),
        (
            "classes.1",
            "sidewalk",
            "model spec key 'classes[1]': expected a mapping, got str; write it as 'name: value' lines",
        ),
        (
            "classes.0.colour",
            [1, 2, 3],
            "model spec key 'classes[0].colour': unknown key; remove it or use one of: name, color, "
            "drivable, obstacle, ignore_in_eval",
        ),
        ("classes.0.color", _DELETE, "model spec key 'classes[0].color': missing; this field is required"),
        ("classes.0.name", _DELETE, "model spec key 'classes[0].name': missing; this field is required"),
        (
            "classes.0.name",
            "",
            "model spec key 'classes[0].name': expected a non-empty string, got ''; quote the value",
        ),
        (
            "classes.0.color",
            "red",
            "model spec key 'classes[0].color': expected [r, g, b], got 'red'; give three integers 0-255",
        ),
        (
            "classes.0.color",
            7,
            "model spec key 'classes[0].color': expected [r, g, b], got 7; give three integers 0-255",
        ),
        (
            "classes.0.color",
            [1, 2],
            "model spec key 'classes[0].color': expected [r, g, b], got [1, 2]; give three integers 0-255",
        ),
        (
            "classes.0.color",
            [0, 256, 0],
            "model spec key 'classes[0].color[1]': expected an integer in [0, 255], got 256; fix the number",
        ),
        (
            "classes.0.color",
            [0, 0, -1],
            "model spec key 'classes[0].color[2]': expected an integer in [0, 255], got -1; fix the number",
        ),
        (
            "classes.0.drivable",
            "yes",
            "model spec key 'classes[0].drivable': expected true or false, got 'yes'; write true or false",
        ),
        (
            "classes.1.obstacle",
            1,
            "model spec key 'classes[1].obstacle': expected true or false, got 1; write true or false",
        ),
        (
            "classes.2.ignore_in_eval",
            "no",
            "model spec key 'classes[2].ignore_in_eval': expected true or false, got 'no'; write true or false",
        ),
        (
            "classes.2.name",
            "road",
            "model spec key 'classes[2].name': duplicate class name 'road'; class names must be unique",
        ),
        (
            "outputs",
            "logits",
            "model spec key 'outputs': expected a non-empty list of heads; describe at least one model output",
        ),
        (
            "outputs",
            [],
            "model spec key 'outputs': expected a non-empty list of heads; describe at least one model output",
        ),
        (
            "outputs.0",
            "logits",
            "model spec key 'outputs[0]': expected a mapping, got str; write it as 'name: value' lines",
        ),
        (
            "outputs.0.shape",
            [1],
            "model spec key 'outputs[0].shape': unknown key; remove it or use one of: name, kind, "
            "channel_axis, classes",
        ),
        ("outputs.0.kind", _DELETE, "model spec key 'outputs[0].kind': missing; this field is required"),
        ("outputs.0.classes", _DELETE, "model spec key 'outputs[0].classes': missing; this field is required"),
        (
            "outputs.0.name",
            "",
            "model spec key 'outputs[0].name': expected a non-empty string, got ''; quote the value",
        ),
        (
            "outputs.0.kind",
            "scores",
            "model spec key 'outputs[0].kind': 'scores' is not allowed; use one of: logits, probabilities, labels",
        ),
        (
            "outputs.0.kind",
            "labels",
            "model spec key 'outputs[0].channel_axis': a labels head has no channel axis; remove channel_axis",
        ),
        (
            "outputs.0.channel_axis",
            _DELETE,
            "model spec key 'outputs[0].channel_axis': missing; a logits head needs the axis that holds its classes",
        ),
        (
            "outputs.0.channel_axis",
            4,
            "model spec key 'outputs[0].channel_axis': expected an integer in [-4, 3], got 4; fix the number",
        ),
        (
            "outputs.0.channel_axis",
            -5,
            "model spec key 'outputs[0].channel_axis': expected an integer in [-4, 3], got -5; fix the number",
        ),
        (
            "outputs.0.classes",
            "road",
            "model spec key 'outputs[0].classes': expected a non-empty list; map each head index to "
            "a class name or null",
        ),
        (
            "outputs.0.classes",
            [],
            "model spec key 'outputs[0].classes': expected a non-empty list; map each head index to "
            "a class name or null",
        ),
        (
            "outputs.0.classes",
            ["road", None, "car"],
            "model spec key 'outputs[0].classes[1]': null in the first head; "
            "the first head paints every pixel, so every index needs a class name",
        ),
        (
            "outputs.0.classes",
            ["road", "sidewalk", "truck"],
            "model spec key 'outputs[0].classes[2]': unknown class 'truck'; use one of: road, sidewalk, car",
        ),
        (
            "outputs.0.classes",
            [5],
            "model spec key 'outputs[0].classes[0]': expected a non-empty string, got 5; quote the value",
        ),
        (
            "masks",
            "road",
            "model spec key 'masks': expected a mapping; write 'name: {head: OUTPUT, classes: [CLASS, ...]}' lines",
        ),
        (
            "masks",
            {"road": "logits"},
            "model spec key 'masks.road': expected a mapping, got str; write it as 'name: value' lines",
        ),
        (
            "masks",
            {"road": {"head": "logits", "classes": ["road"], "colour": 1}},
            "model spec key 'masks.road.colour': unknown key; remove it or use one of: head, classes",
        ),
        ("masks", {"road": {"classes": ["road"]}}, "model spec key 'masks.road.head': missing; this field is required"),
        (
            "masks",
            {"road": {"head": "", "classes": ["road"]}},
            "model spec key 'masks.road.head': expected a non-empty string, got ''; quote the value",
        ),
        (
            "masks",
            {"road": {"head": "out", "classes": ["road"]}},
            "model spec key 'masks.road.head': no output named 'out'; use one of: logits",
        ),
        (
            "masks",
            {"road": {"head": "logits", "classes": "road"}},
            "model spec key 'masks.road.classes': expected a non-empty list; name the classes inside the mask",
        ),
        (
            "masks",
            {"road": {"head": "logits", "classes": []}},
            "model spec key 'masks.road.classes': expected a non-empty list; name the classes inside the mask",
        ),
        (
            "masks",
            {"road": {"head": "logits", "classes": [5]}},
            "model spec key 'masks.road.classes[0]': expected a non-empty string, got 5; quote the value",
        ),
        (
            "masks",
            {"road": {"head": "logits", "classes": ["road", "lane"]}},
            "model spec key 'masks.road.classes[1]': head 'logits' has no class 'lane'; use one of "
            "its classes: road, sidewalk, car",
        ),
        (
            "upsampling",
            "bilinear",
            "model spec key 'upsampling': expected a mapping, got str; write it as 'name: value' lines",
        ),
        (
            "upsampling",
            None,
            "model spec key 'upsampling': expected a mapping, got NoneType; write it as 'name: value' lines",
        ),
        (
            "upsampling",
            {"mode": "x"},
            "model spec key 'upsampling.mode': unknown key; remove it or use one of: method, align_corners",
        ),
        ("upsampling", {"align_corners": True}, "model spec key 'upsampling.method': missing; this field is required"),
        (
            "upsampling",
            {"method": ""},
            "model spec key 'upsampling.method': expected a non-empty string, got ''; quote the value",
        ),
        (
            "upsampling",
            {"method": "bicubic"},
            "model spec key 'upsampling.method': 'bicubic' is not allowed; use one of: labels_nearest, logits_bilinear",
        ),
        (
            "upsampling",
            {"method": "labels_nearest", "align_corners": False},
            "model spec key 'upsampling.align_corners': only used with method: logits_bilinear; remove it",
        ),
        (
            "upsampling",
            {"method": "logits_bilinear", "align_corners": "yes"},
            "model spec key 'upsampling.align_corners': expected true or false, got 'yes'; write true or false",
        ),
    ],
)
def test_each_spec_mistake_is_one_exact_line(path: str, value: Any, message: str) -> None:
    assert _refusal(_edit(spec_dict("m.onnx", CLASSES), path, value)) == message


def test_a_document_that_is_not_a_mapping_is_refused_without_a_key() -> None:
    assert _refusal([1]) == "model spec: expected a mapping, got list; write it as 'name: value' lines"
    assert _refusal(None) == "model spec: expected a mapping, got NoneType; write it as 'name: value' lines"


def test_the_first_unknown_and_the_first_missing_key_are_named() -> None:
    d = spec_dict("m.onnx", CLASSES)
    d["zz"] = 1
    d["aa"] = 2
    assert _refusal(d) == f"model spec key 'aa': unknown key; remove it or use one of: {_TOP_KEYS}"
    d = spec_dict("m.onnx", CLASSES)
    del d["classes"], d["onnx"], d["name"]
    assert _refusal(d) == "model spec key 'name': missing; this field is required"
    d = spec_dict("m.onnx", CLASSES)
    d["input"]["zz"] = d["input"]["aa"] = 1
    assert _refusal(d) == f"model spec key 'input.aa': unknown key; remove it or use one of: {_INPUT_KEYS}"


def test_a_minimal_spec_takes_every_default() -> None:
    spec = _parse(spec_dict("m.onnx", CLASSES))
    assert spec.input == InputSpec(
        name="input",
        layout="NCHW",
        width=64,
        height=48,
        channel_order="RGB",
        pixel_range=1.0,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        resize="stretch",
        pad_value=0,
        interpolation="bilinear",
        shorter_side=0,
        pad_to_multiple=1,
    )
    assert spec.heads == (HeadSpec(name="logits", kind="logits", channel_axis=1, class_ids=(0, 1, 2)),)
    assert spec.classes[1] == ClassInfo(name="sidewalk", color=(244, 35, 232))
    assert spec.classes[1].drivable is False and spec.classes[1].obstacle is False
    assert spec.classes[1].ignore_in_eval is False
    assert spec.name == "m"
    assert spec.description == ""
    assert spec.onnx_path == BASE / "m.onnx"
    assert spec.ignore_id == 255
    assert spec.spec_path is None
    assert spec.metrics == {}
    assert spec.masks == ()
    assert spec.drivable_mask is None
    assert spec.upsampling == UpsamplingSpec(method="labels_nearest", align_corners=False)
    assert spec.ignored_ids == ()


def test_the_top_level_fields_are_read_as_written(tmp_path: Path) -> None:
    d = spec_dict("m.onnx", CLASSES)
    d["onnx"] = "/models/abs.onnx"
    d["description"] = 12
    d["metrics"] = {"miou": 0.5}
    del d["ignore_id"]
    spec = parse_model_spec(d, BASE, spec_path=tmp_path / "spec.yaml")
    assert spec.onnx_path == Path("/models/abs.onnx")
    assert spec.description == "12"
    assert spec.metrics == {"miou": 0.5} and type(spec.metrics) is dict
    assert spec.metrics is not d["metrics"]
    assert spec.ignore_id == 255
    assert spec.spec_path == tmp_path / "spec.yaml"
    d["onnx"] = "sub/m.onnx"
    d["metrics"] = None
    d["masks"] = None
    d["ignore_id"] = 3  # the first id past the classes
    spec = _parse(d)
    assert spec.onnx_path == BASE / "sub" / "m.onnx"
    assert spec.metrics == {}
    assert spec.masks == ()
    assert spec.ignore_id == 3
    d["metrics"] = ""
    d["masks"] = []
    assert _parse(d).metrics == {} and _parse(d).masks == ()


@pytest.mark.parametrize(
    ("edits", "field", "expected"),
    [
        ({"width": 1, "height": 16384}, "width", 1),
        ({"width": 16384, "height": 1}, "height", 1),
        ({"width": 16384}, "width", 16384),
        ({"pixel_range": 255}, "pixel_range", 255.0),
        ({"pixel_range": 1e-9}, "pixel_range", 1e-9),
        ({"mean": [-1, 0, 2]}, "mean", (-1.0, 0.0, 2.0)),
        ({"std": (1, 2, 3)}, "std", (1.0, 2.0, 3.0)),
        ({"interpolation": "pil_bilinear"}, "interpolation", "pil_bilinear"),
        ({"resize": "letterbox"}, "pad_value", 0),
        ({"resize": "letterbox", "pad_value": 114}, "pad_value", 114),
        ({"resize": "letterbox", "pad_value": 255}, "pad_value", 255),
        ({"resize": "native", "pad_value": 0}, "pad_value", 0),
        ({"resize": "native"}, "pad_to_multiple", 1),
        ({"resize": "native", "pad_to_multiple": 32}, "pad_to_multiple", 32),
        ({"resize": "native", "pad_to_multiple": 1024}, "pad_to_multiple", 1024),
        ({"resize": "shorter_side", "shorter_side": 1}, "shorter_side", 1),
        ({"resize": "shorter_side", "shorter_side": 16384}, "shorter_side", 16384),
        ({"resize": "shorter_side", "shorter_side": 512, "pad_to_multiple": 32}, "pad_to_multiple", 32),
        ({"resize": "shorter_side", "shorter_side": 512, "pad_value": 7}, "pad_value", 7),
        ({"resize": "shorter_side", "shorter_side": 512}, "resize", "shorter_side"),
    ],
)
def test_input_values_at_and_inside_their_limits_are_kept(edits: dict[str, Any], field: str, expected: Any) -> None:
    value = getattr(_parse(spec_dict("m.onnx", CLASSES, **edits)).input, field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"resize": "shorter_side"}, f"model spec key 'input.shorter_side': missing; {_SS}"),
        (
            {"resize": "letterbox", "shorter_side": 256},
            f"model spec key 'input.shorter_side': not used with resize: letterbox; {_SS}",
        ),
        (
            {"resize": "native", "shorter_side": 256},
            f"model spec key 'input.shorter_side': not used with resize: native; {_SS}",
        ),
        (
            {"resize": "shorter_side", "shorter_side": 0},
            "model spec key 'input.shorter_side': expected an integer in [1, 16384], got 0; fix the number",
        ),
        (
            {"resize": "shorter_side", "shorter_side": 16385},
            "model spec key 'input.shorter_side': expected an integer in [1, 16384], got 16385; fix the number",
        ),
        (
            {"resize": "letterbox", "pad_to_multiple": 32},
            "model spec key 'input.pad_to_multiple': not used with resize: letterbox; use it with "
            "shorter_side or native",
        ),
        (
            {"resize": "native", "pad_to_multiple": 0},
            "model spec key 'input.pad_to_multiple': expected an integer in [1, 1024], got 0; fix the number",
        ),
        (
            {"resize": "native", "pad_to_multiple": 1025},
            "model spec key 'input.pad_to_multiple': expected an integer in [1, 1024], got 1025; fix the number",
        ),
        (
            {"resize": "letterbox", "pad_value": 256},
            "model spec key 'input.pad_value': expected an integer in [0, 255], got 256; fix the number",
        ),
        (
            {"resize": "letterbox", "pad_value": -1},
            "model spec key 'input.pad_value': expected an integer in [0, 255], got -1; fix the number",
        ),
    ],
)
def test_resize_options_are_refused_outside_their_policy_and_limits(edits: dict[str, Any], message: str) -> None:
    assert _refusal(spec_dict("m.onnx", CLASSES, **edits)) == message


def test_class_flags_and_the_class_limit() -> None:
    d = spec_dict("m.onnx", CLASSES)
    d["classes"][0] = {"name": "road", "color": [0, 0, 255]}
    d["classes"][1]["ignore_in_eval"] = True
    d["classes"][2]["drivable"] = True
    spec = _parse(d)
    assert spec.classes[0] == ClassInfo(name="road", color=(0, 0, 255))
    assert spec.classes[2] == ClassInfo(name="car", color=(70, 70, 70), drivable=True, obstacle=True)
    assert spec.drivable_ids == (2,)
    assert spec.obstacle_ids == (2,)
    assert spec.ignored_ids == (1,)
    assert spec.num_classes == 3
    names = [f"c{i}" for i in range(255)]
    many = spec_dict("m.onnx", names)
    assert _parse(many).num_classes == 255
    many = spec_dict("m.onnx", [*names, "c255"])
    assert _refusal(many) == "model spec key 'classes': 256 classes exceed the mono8 limit 255; merge classes"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ({"name": "lane", "kind": "labels", "classes": [None, "lane"]}, HeadSpec("lane", "labels", None, (None, 2))),
        (
            {"name": "lane", "kind": "probabilities", "channel_axis": -4, "classes": ["lane", None]},
            HeadSpec("lane", "probabilities", -4, (2, None)),
        ),
        (
            {"name": "lane", "kind": "logits", "channel_axis": 3, "classes": ["lane"]},
            HeadSpec("lane", "logits", 3, (2,)),
        ),
    ],
)
def test_heads_are_read_as_written(head: dict[str, Any], expected: HeadSpec) -> None:
    spec = _parse(_two_heads(head))
    assert spec.heads == (HeadSpec("drivable", "logits", 1, (0, 1)), expected)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (
            {"name": "lane", "kind": "probabilities", "classes": ["lane"]},
            "model spec key 'outputs[1].channel_axis': missing; a probabilities head needs the axis "
            "that holds its classes",
        ),
        (
            {"name": "lane", "kind": "logits", "channel_axis": 1, "classes": [None, None]},
            "model spec key 'outputs[1].classes': every entry is null, so the head paints nothing; name a class",
        ),
        (
            {"name": "drivable", "kind": "logits", "channel_axis": 1, "classes": ["lane"]},
            "model spec key 'outputs[1].name': duplicate output 'drivable'; each head names a different tensor",
        ),
        (
            {"name": "", "kind": "logits", "channel_axis": 1, "classes": ["lane"]},
            "model spec key 'outputs[1].name': expected a non-empty string, got ''; quote the value",
        ),
    ],
)
def test_second_head_mistakes_are_one_exact_line(head: dict[str, Any], message: str) -> None:
    assert _refusal(_two_heads(head)) == message


@pytest.mark.parametrize("name", ["Road", "1road", "road-edge", "_road", "", "color", 5, "road\n", "road\nlane"])
def test_a_mask_name_must_make_a_topic_name(name: Any) -> None:
    d = _edit(spec_dict("m.onnx", CLASSES), "masks", {name: {"head": "logits", "classes": ["road"]}})
    assert _refusal(d) == (
        f"model spec key 'masks.{name}': {name!r} cannot name a mask (it becomes the topic segmentation/<name>_mask); "
        "use lower-case letters, digits and _, starting with a letter, and not 'color'"
    )


def test_masks_read_their_own_head() -> None:
    d = _two_heads()
    d["masks"] = {
        "lane": {"head": "lane", "classes": ["lane"]},
        "r2_d_2": {"head": "drivable", "classes": ["drivable", "background"]},
        "drivable": {"head": "drivable", "classes": ["drivable"]},
    }
    spec = _parse(d)
    assert spec.masks == (
        MaskSpec(name="lane", head=1, inside=(False, True)),
        MaskSpec(name="r2_d_2", head=0, inside=(True, True)),
        MaskSpec(name="drivable", head=0, inside=(False, True)),
    )
    assert spec.masks[0].topic == "lane_mask"
    assert spec.drivable_mask == MaskSpec(name="drivable", head=0, inside=(False, True))
    d["masks"] = {"lane": {"head": "lane", "classes": ["drivable"]}}
    assert _refusal(d) == (
        "model spec key 'masks.lane.classes[0]': head 'lane' has no class 'drivable'; use one of its classes: lane"
    )
    d["masks"] = {"lane": {"head": "lanes", "classes": ["lane"]}}
    assert _refusal(d) == "model spec key 'masks.lane.head': no output named 'lanes'; use one of: drivable, lane"


def test_upsampling_is_read_and_refused_for_labels_heads() -> None:
    d = _two_heads()
    d["upsampling"] = {"method": "logits_bilinear"}
    assert _parse(d).upsampling == UpsamplingSpec(method="logits_bilinear", align_corners=False)
    d["upsampling"] = {"method": "logits_bilinear", "align_corners": True}
    assert _parse(d).upsampling == UpsamplingSpec(method="logits_bilinear", align_corners=True)
    d["upsampling"] = {"method": "labels_nearest"}
    assert _parse(d).upsampling == UpsamplingSpec(method="labels_nearest", align_corners=False)
    d["outputs"][0] = {"name": "drivable", "kind": "labels", "classes": ["background", "drivable"]}
    d["outputs"][1] = {"name": "lane", "kind": "labels", "classes": [None, "lane"]}
    assert _parse(d).upsampling == UpsamplingSpec()
    d["upsampling"] = {"method": "logits_bilinear"}
    assert _refusal(d) == (
        "model spec key 'upsampling.method': labels head 'drivable' has no logits to interpolate; "
        "use labels_nearest, or export the model's logits"
    )


def test_the_default_spec_is_the_bundled_demo_model() -> None:
    path = default_spec_path()
    assert path == Path(model_spec.__file__).resolve().parents[2] / "models" / "demo_road_seg.yaml"
    assert path.is_file()


def test_an_installed_package_finds_the_demo_spec_in_its_share_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path(model_spec.__file__).resolve().parents[2] / "models" / "demo_road_seg.yaml"
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    packages = types.ModuleType("ament_index_python.packages")
    asked: list[str] = []

    def share(name: str) -> str:
        asked.append(name)
        return "/opt/share/seg_perception"

    packages.get_package_share_directory = share  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", packages)
    assert default_spec_path() == Path("/opt/share/seg_perception/models/demo_road_seg.yaml")
    assert asked == ["seg_perception"]

    def missing(name: str) -> str:
        raise LookupError(name)

    packages.get_package_share_directory = missing  # type: ignore[attr-defined]
    assert default_spec_path() == here

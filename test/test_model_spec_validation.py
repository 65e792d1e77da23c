"""Model specs: valid ones load; every kind of mistake is refused with the key and the fix."""

from __future__ import annotations

import copy
import locale
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import version_converter
from tiny_models import conv_logits_model, spec_dict, two_head_model, write_spec

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.model_spec import HeadSpec, InputSpec
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


def _refusal(spec: Any, model: onnx.ModelProto) -> str:
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
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: pixels"
    )
    model = _opaque_model([("a", [1]), ("b", [1])], [("logits", FLOAT, [1])])
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: a, b"
    )
    model = _opaque_model([], [("logits", FLOAT, [1])], 1)  # only an initializer: no real input
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has no input 'input'; set it to one of: (none)"
    )
    model = _opaque_model([*NCHW_IN, ("mask", [1]), ("extra", [1])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.name': the ONNX model has extra inputs ['mask', 'extra']; "
        "export the model with a single image input"
    )


@pytest.mark.parametrize("rank", [3, 5])
def test_an_input_not_of_rank_4_is_refused(rank: int) -> None:
    model = _opaque_model([("input", [1, 3, 48, 64, 1][:rank])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _refusal(_stand_in_spec(), model) == (
        f"model spec key 'input.layout': input 'input' has rank {rank}, expected 4 (NCHW)"
    )


def test_channels_not_of_size_3_are_refused_with_the_likely_layout() -> None:
    model = _opaque_model([("input", [1, 48, 64, 3])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.layout': NCHW puts the channels of input 'input' (dims [1, 48, 64, 3]) at a "
        "dimension of size 48, not 3; the layout is probably NHWC"
    )
    model = _opaque_model([("input", [1, 3, 48, 64])], [("logits", FLOAT, ["N", 48, 64, 3])])
    assert _refusal(_stand_in_spec("NHWC", [_head(axis=3)]), model) == (
        "model spec key 'input.layout': NHWC puts the channels of input 'input' (dims [1, 3, 48, 64]) at a "
        "dimension of size 64, not 3; the layout is probably NCHW"
    )
    model = _opaque_model([("input", [1, 1, 48, 64])], [("logits", FLOAT, ["N", 3, 48, 64])])
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.layout': NCHW puts the channels of input 'input' (dims [1, 1, 48, 64]) at a "
        "dimension of size 1, not 3; the model must take 3-channel images"
    )


def test_a_height_or_width_the_graph_contradicts_is_refused_with_its_size() -> None:
    model = _opaque_model([("input", ["N", 3, 50, 64])], [("logits", FLOAT, ["N", 3, 50, 64])])
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'input.height': 48 disagrees with the ONNX input 'input' (dims ['N', 3, 50, 64]); set it to 50"
    )
    model = _opaque_model([("input", ["N", 48, 66, 3])], [("logits", FLOAT, ["N", 48, 66, 3])])
    assert _refusal(_stand_in_spec("NHWC", [_head(axis=3)]), model) == (
        "model spec key 'input.width': 64 disagrees with the ONNX input 'input' (dims ['N', 48, 66, 3]); set it to 66"
    )


def test_a_missing_output_is_refused_naming_the_head_and_the_outputs() -> None:
    model = _opaque_model(NCHW_IN, [("a", FLOAT, ["N", 3, 48, 64]), ("b", FLOAT, ["N", 3, 48, 64])])
    spec = _stand_in_spec(heads=[_head("a"), _head("c")])
    assert _refusal(spec, model) == (
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
    assert _refusal(spec, _opaque_model(NCHW_IN, [("labels", onnx.TensorProto.INT64, dims)])) == (
        f"model spec key 'outputs[0].kind': labels head 'labels' has dims {dims}; "
        "a labels head must be [N, H, W] or [N, 1, H, W]"
    )


@pytest.mark.parametrize(("dtype", "name"), [(FLOAT, "FLOAT"), (onnx.TensorProto.INT16, "INT16")])
def test_a_labels_head_of_another_type_is_refused(dtype: int, name: str) -> None:
    spec = _stand_in_spec(heads=[_head("labels", "labels", None), _head("x", "labels", None)])
    model = _opaque_model(NCHW_IN, [("labels", onnx.TensorProto.UINT8, ["N", 48, 64]), ("x", dtype, ["N", 48, 64])])
    assert _refusal(spec, model) == (
        f"model spec key 'outputs[1].kind': output 'x' is of type {name}, not integer labels; "
        "use kind: logits or probabilities"
    )


@pytest.mark.parametrize("dims", [["N", 3, 48], ["N", 3, 48, 64, 1]])
def test_a_score_map_not_of_rank_4_is_refused(dims: list[Any]) -> None:
    assert _refusal(_stand_in_spec(), _opaque_model(NCHW_IN, [("logits", FLOAT, dims)])) == (
        f"model spec key 'outputs[0].name': output 'logits' has rank {len(dims)} (dims {dims}), "
        "expected a 4-D [N, C, H, W] or [N, H, W, C] score map"
    )


@pytest.mark.parametrize("axis", [0, -4, 4, -5])
def test_a_channel_axis_outside_the_map_or_on_the_batch_is_refused(axis: int) -> None:
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 3, 3, 3])])
    assert _refusal(_stand_in_spec(heads=[_head(axis=axis)]), model) == (
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
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].classes': lists 3 classes but output 'logits' has 4 channels on axis 1 "
        "(dims ['N', 4, 48, 64]); list exactly 4 class names"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, ["N", 48, 64, 3])])  # the classes are on axis 3
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].channel_axis': axis 1 of output 'logits' (dims ['N', 48, 64, 3]) has size 48; "
        "the 3 listed classes match axis 3; set channel_axis: 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 256, 48, 64])])  # batch 3 is not a class axis
    assert _refusal(_stand_in_spec(), model) == (
        "model spec key 'outputs[0].channel_axis': axis 1 of output 'logits' (dims [3, 256, 48, 64]) has size 256; "
        "a class axis holds at most 255 classes, so axis 1 is probably spatial; "
        "the class axis of [N, C, H, W] is 1 and of [N, H, W, C] is 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 255, 48, 64])])  # 255 may be classes: the list is wrong
    assert _refusal(_stand_in_spec(), model).startswith("model spec key 'outputs[0].classes': lists 3 classes")
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [1, 48, 64, 3])])  # negative axis, the match named by index
    assert _refusal(_stand_in_spec(heads=[_head(axis=-3)]), model) == (
        "model spec key 'outputs[0].channel_axis': axis -3 of output 'logits' (dims [1, 48, 64, 3]) has size 48; "
        "the 3 listed classes match axis 3; set channel_axis: 3"
    )
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [1, 3, 3, 3])])  # the class axis itself is not a match
    check_spec_against_onnx(_stand_in_spec(), model)
    model = _opaque_model(NCHW_IN, [("logits", FLOAT, [3, 4, 48, 2])])  # only the batch holds 3: not a match
    assert _refusal(_stand_in_spec(), model).startswith("model spec key 'outputs[0].classes': lists 3 classes")


def test_an_onnx_file_that_is_missing_or_unreadable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError) as info:
        load_onnx(tmp_path / "none.onnx")
    assert str(info.value) == f"model spec key 'onnx': file {tmp_path / 'none.onnx'} does not exist; fix the path"
    (tmp_path / "bad.onnx").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(ModelSpecError) as info:
        load_onnx(tmp_path / "bad.onnx")
    assert str(info.value).startswith(f"model spec key 'onnx': {tmp_path / 'bad.onnx'} is not a readable ONNX model (")
    assert str(info.value).endswith(")")

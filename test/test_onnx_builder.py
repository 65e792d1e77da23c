"""core/onnx_builder.GraphBuilder, the fused graph's ONNX builder, on its own: the names it gives (prefixed,
counted, unique), the constants' types, ReduceMax on both sides of opset 18, and its Resize in both layouts
and all three coordinate rules, run on ONNX Runtime against values worked out by hand."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from seg_perception.core.onnx_builder import GraphBuilder


def _run(b: GraphBuilder, out: str, x: np.ndarray) -> np.ndarray:
    b.op("Identity", [out], out="y")
    model = b.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * x.ndim)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        8,
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["y"], {"x": x})[0])


def test_names_are_the_prefix_the_hint_and_a_count_from_1() -> None:
    b = GraphBuilder("seg_pre/", 17)
    assert b.prefix == "seg_pre/"
    assert b.opset == 17
    assert [b.name("a"), b.name("a"), b.name("cast")] == ["seg_pre/a_1", "seg_pre/a_2", "seg_pre/cast_3"]


def test_a_constant_is_a_named_initializer_of_the_dtype_asked_for_int64_by_default() -> None:
    b = GraphBuilder("p/", 17)
    first = b.const([2, 1, 0], "perm")
    second = b.const([0.5, 2.0], "scale", np.float32)
    assert (first, second) == ("p/perm_1", "p/scale_2")
    assert [t.name for t in b.initializers] == ["p/perm_1", "p/scale_2"]
    ints, floats = (numpy_helper.to_array(t) for t in b.initializers)
    assert ints.dtype == np.int64 and ints.tolist() == [2, 1, 0]
    assert floats.dtype == np.float32 and floats.tolist() == [0.5, 2.0]
    assert b.nodes == []


def test_an_op_names_its_node_after_the_op_and_its_output_after_the_hint_or_the_op() -> None:
    b = GraphBuilder("p/", 17)
    assert b.op("Relu", ["x"]) == "p/relu_1"
    assert b.op("Cast", ["x"], hint="as_float", to=TensorProto.FLOAT) == "p/as_float_3"
    assert b.op("Neg", ["x"], out="y") == "y"
    assert [(n.op_type, n.name, list(n.input), list(n.output)) for n in b.nodes] == [
        ("Relu", "p/Relu_2", ["x"], ["p/relu_1"]),
        ("Cast", "p/Cast_4", ["x"], ["p/as_float_3"]),
        ("Neg", "p/Neg_5", ["x"], ["y"]),
    ]
    assert [(a.name, a.i) for a in b.nodes[1].attribute] == [("to", TensorProto.FLOAT)]


def test_the_model_names_its_graph_after_the_prefix_and_sets_opset_and_ir_version() -> None:
    for prefix, graph_name in (
        ("seg_pre/", "seg_pre"),
        ("_post_", "post"),
        ("/", "graph"),
        ("", "graph"),
        ("XL_net/", "XL_net"),
    ):
        b = GraphBuilder(prefix, 13)
        b.op("Identity", ["x"], out="y")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        m = b.model([x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], 7)
        assert m.graph.name == graph_name
        assert [(o.domain, o.version) for o in m.opset_import] == [("", 13)]
        assert m.ir_version == 7
        assert [n.op_type for n in m.graph.node] == ["Identity"]
        assert [i.name for i in m.graph.input] == ["x"]
        assert [o.name for o in m.graph.output] == ["y"]


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_max_over_one_axis_on_both_sides_of_opset_18(opset: int, keepdims: int) -> None:
    b = GraphBuilder("r/", opset)
    out = b.reduce_max("x", 1, keepdims=keepdims)
    node = b.nodes[-1]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if opset >= 18:  # axes moved from attribute to input
        assert attrs == {"keepdims": keepdims}
        assert len(node.input) == 2
        assert numpy_helper.to_array(b.initializers[0]).tolist() == [1]
    else:
        assert attrs == {"axes": [1], "keepdims": keepdims}
        assert list(node.input) == ["x"]
    x = np.array([[[1.0, 7.0], [5.0, 2.0], [3.0, 4.0]]], dtype=np.float32)  # (1, 3, 2)
    expected = np.array([[5.0, 7.0]], dtype=np.float32)
    np.testing.assert_array_equal(_run(b, out, x), expected[:, None] if keepdims else expected)


def test_reduce_max_drops_its_axis_by_default() -> None:
    b = GraphBuilder("r/", 17)
    out = b.reduce_max("x", 2)
    x = np.array([[[1.0, 7.0], [5.0, 2.0]]], dtype=np.float32)
    np.testing.assert_array_equal(_run(b, out, x), [[7.0, 5.0]])


ROW = np.array([0.0, 4.0], dtype=np.float32)  # a 1 x 2 image, upsampled to 1 x 4 below
# half_pixel: x_in = (x_out + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the edges
HALF_PIXEL = [0.0, 1.0, 3.0, 4.0]
ALIGN_CORNERS = [0.0, 4.0 / 3.0, 8.0 / 3.0, 4.0]  # x_in = x_out * (2 - 1) / (4 - 1)
NEAREST_FLOOR = [0.0, 0.0, 4.0, 4.0]  # x_in = floor(x_out / 2)


@pytest.mark.parametrize(
    ("mode", "align_corners", "expected"),
    [("linear", False, HALF_PIXEL), ("linear", True, ALIGN_CORNERS), ("nearest", False, NEAREST_FLOOR)],
)
def test_resize_nchw_to_a_fixed_size_keeps_batch_and_channels(mode: str, align_corners: bool, expected: list) -> None:
    b = GraphBuilder("z/", 17)
    out = b.resize("x", 1, 4, mode, align_corners=align_corners)
    x = np.stack([ROW, ROW * 2, ROW * 3])[None, :, None, :].repeat(2, axis=0)  # (2, 3, 1, 2): N=2, C=3
    y = _run(b, out, x)
    assert y.shape == (2, 3, 1, 4)
    for c in range(3):
        np.testing.assert_allclose(y[1, c, 0], np.array(expected) * (c + 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "align_corners", "expected"),
    [("linear", False, HALF_PIXEL), ("linear", True, ALIGN_CORNERS), ("nearest", False, NEAREST_FLOOR)],
)
def test_resize_nhwc_resizes_the_middle_axes(mode: str, align_corners: bool, expected: list) -> None:
    b = GraphBuilder("z/", 17)
    out = b.resize("x", 4, 1, mode, channels_last=True, align_corners=align_corners)
    x = np.stack([ROW, ROW * 2, ROW * 3], axis=-1)[None, :, None, :].repeat(2, axis=0)  # (2, 2, 1, 3): H=2, W=1
    y = _run(b, out, x)
    assert y.shape == (2, 4, 1, 3)
    for c in range(3):
        np.testing.assert_allclose(y[0, :, 0, c], np.array(expected) * (c + 1), rtol=1e-6, atol=1e-6)


def test_resize_downscales_too() -> None:
    b = GraphBuilder("z/", 17)
    out = b.resize("x", 2, 2, "nearest")
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(_run(b, out, x), [[[[0.0, 2.0], [8.0, 10.0]]]])


def test_resize_writes_the_coordinate_rule_it_documents() -> None:
    def attrs(**kwargs: object) -> dict:
        b = GraphBuilder("z/", 17)
        b.resize("x", 2, 2, **kwargs)  # type: ignore[arg-type]
        node = b.nodes[-1]
        assert node.op_type == "Resize" and node.input[1:3] == ["", ""]
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    assert attrs(mode="linear") == {"mode": b"linear", "coordinate_transformation_mode": b"half_pixel"}
    assert attrs(mode="linear", align_corners=True) == {
        "mode": b"linear",
        "coordinate_transformation_mode": b"align_corners",
    }
    assert attrs(mode="nearest") == {
        "mode": b"nearest",
        "coordinate_transformation_mode": b"asymmetric",
        "nearest_mode": b"floor",
    }

"""TensorRT converts uint8 to and from float32/float16 only (tensorrt.DataType.UINT8: "uint8 conversions are
not supported for {int8, int32, bool}"), and uint8 tensors exist only at the network's edges. ONNX Runtime
accepts any Cast, so no CPU test would notice a graph TensorRT's builder refuses: every fused graph, for every
input interpolation, both camera orders, with confidence and masks, is checked here for exactly that."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto
from tiny_models import conv_logits_model, spec_dict

from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.graph_resize import INTERPOLATIONS
from seg_perception.core.model_spec import parse_model_spec

FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16}


def _uint8_misuse(model: onnx.ModelProto) -> list[str]:
    """Each node that reads a uint8 tensor other than a Cast to float, or casts to uint8 from a non-float."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.value_info, *g.output)}
    types |= {t.name: t.data_type for t in g.initializer}
    found = []
    for node in g.node:
        sources = [types.get(name) for name in node.input if name]
        if node.op_type == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            from_uint8, to_uint8 = sources[0] == TensorProto.UINT8, to == TensorProto.UINT8
            if (from_uint8 and to not in FLOATS) or (to_uint8 and sources[0] not in FLOATS):
                found.append(f"Cast {node.name or node.output[0]}: {sources[0]} -> {to}")
        elif TensorProto.UINT8 in sources:
            found.append(f"{node.op_type} {node.name or node.output[0]} reads uint8")
    return found


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_uint8_enters_and_leaves_the_fused_graph_through_float_casts_only(
    tmp_path: Path, interpolation: str, order: str
) -> None:
    conv_logits_model(tmp_path / "m.onnx", 3, 48, 64)
    raw = spec_dict("m.onnx", ["road", "car", "sky"], interpolation=interpolation)
    raw["masks"] = {"drivable": {"head": "logits", "classes": ["road"]}}
    spec = parse_model_spec(raw, tmp_path)
    graph = compile_fused_graph(spec, 97, 53, camera_order=order, confidence=True, masks=True)
    assert graph.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert {o.type.tensor_type.elem_type for o in graph.graph.output} == {TensorProto.UINT8}
    assert _uint8_misuse(graph) == []


def test_the_check_sees_a_uint8_to_int32_cast() -> None:
    """The check itself: a graph casting its uint8 input straight to int32 is named."""
    x = onnx.helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])
    y = onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        onnx.helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT32, name="to_int"),
        onnx.helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT, name="to_float"),
    ]
    model = onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x], [y]))
    assert _uint8_misuse(model) == [f"Cast to_int: {TensorProto.UINT8} -> {TensorProto.INT32}"]

"""The INT8 CPU recipe's float tail (core/quantization._float_tail) follows data, not shapes: a logit Resize
whose `sizes` come from Shape(an encoder feature map), as torch exports write it, keeps the decoder's last
conv in fp32 but never the encoder layer behind the Shape."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from seg_perception.core.quantization import _float_tail


def _model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    w2 = numpy_helper.from_array(np.ones((2, 4, 1, 1), np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["feat"], name="encoder_conv"),
        helper.make_node("Conv", ["feat", "w2"], ["logits_small"], name="head_conv"),
        helper.make_node("Relu", ["logits_small"], ["act"], name="head_relu"),
        helper.make_node("Shape", ["feat"], ["feat_shape"], name="feat_shape"),
        helper.make_node("Resize", ["act", "", "", "feat_shape"], ["logits"], name="logit_resize", mode="linear"),
        helper.make_node("ArgMax", ["logits"], ["labels"], name="seg_post/argmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("labels", TensorProto.INT64, None)],
        [w, w2],
    )
    return helper.make_model(graph)


def test_the_tail_takes_the_resize_and_its_data_producers_but_not_the_layer_behind_its_shape_input() -> None:
    assert _float_tail(_model()) == ["head_conv", "head_relu", "logit_resize"]

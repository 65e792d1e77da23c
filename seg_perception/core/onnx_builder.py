"""A small ONNX graph builder: nodes and constants with unique, prefixed names (for the fused graph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Accumulates nodes and constants with unique, prefixed names."""

    def __init__(self, prefix: str, opset: int) -> None:
        self.prefix = prefix
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: np.ndarray | Sequence[int | float | bool], hint: str, dtype: type = np.int64) -> str:
        arr: np.ndarray = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None, **attrs: Any) -> str:
        output = out or self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attrs))
        return output

    def reduce_max(self, x: str, axis: int, keepdims: int = 0) -> str:
        """ReduceMax over one axis; its axes moved from attribute to input in opset 18."""
        if self.opset >= 18:
            return self.op("ReduceMax", [x, self.const([axis], "axes")], keepdims=keepdims)
        return self.op("ReduceMax", [x], axes=[axis], keepdims=keepdims)

    def resize(
        self, x: str, height: int, width: int, mode: str, channels_last: bool = False, align_corners: bool = False
    ) -> str:
        """Resize the spatial axes of a rank-4 tensor (NCHW, or NHWC when channels_last) to a fixed size;
        the other axes keep their (possibly dynamic) sizes. Linear resizes use half-pixel centres
        (PyTorch's align_corners=False) unless align_corners."""
        shape = self.op("Shape", [x])
        if channels_last:
            batch = self.op("Slice", [shape, self.const([0], "s"), self.const([1], "e")])
            chans = self.op("Slice", [shape, self.const([3], "s"), self.const([4], "e")])
            sizes = self.op("Concat", [batch, self.const([height, width], "hw"), chans], axis=0)
        else:
            lead = self.op("Slice", [shape, self.const([0], "s"), self.const([2], "e")])
            sizes = self.op("Concat", [lead, self.const([height, width], "hw")], axis=0)
        empty = ""  # roi and scales are unused when sizes is given
        if mode == "linear":
            coordinates = "align_corners" if align_corners else "half_pixel"
            return self.op(
                "Resize", [x, empty, empty, sizes], mode="linear", coordinate_transformation_mode=coordinates
            )
        return self.op(
            "Resize",
            [x, empty, empty, sizes],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    def model(
        self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], ir_version: int
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.prefix.strip("_/") or "graph", inputs, outputs, self.initializers)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = ir_version
        return m

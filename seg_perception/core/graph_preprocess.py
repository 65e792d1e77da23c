"""The fused graph's front: uint8 camera pixels to the model's input tensor (resize, pad, channel order,
scale/mean/std, layout)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper

from seg_perception.core.graph_resize import resize_nhwc
from seg_perception.core.model_spec import ModelSpec
from seg_perception.core.onnx_builder import GraphBuilder

INPUT_NAME = "image"


@dataclass(frozen=True)
class Geometry:
    """Where the camera frame lands inside the model input (letterbox offsets and scaled size)."""

    camera_width: int
    camera_height: int
    resized_width: int
    resized_height: int
    pad_left: int
    pad_top: int
    model_width: int
    model_height: int
    centred: bool = True  # letterbox padding is split around the frame; shorter_side / native pad bottom-right


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def shorter_side_size(camera_width: int, camera_height: int, side: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(side): the shorter side becomes `side`, the longer
    int(side * long / short) (truncated, as torchvision's _compute_resized_output_size does)."""
    if camera_width <= camera_height:
        return side, int(side * camera_height / camera_width)
    return int(side * camera_width / camera_height), side


def input_geometry(spec: ModelSpec, camera_width: int, camera_height: int) -> Geometry:
    """Resize/letterbox geometry for one camera size (Ultralytics LetterBox: round() size, floor(pad/2) first)."""
    mw, mh = spec.input.width, spec.input.height
    if spec.input.resize in ("shorter_side", "native"):
        if spec.input.resize == "native":
            rw, rh = camera_width, camera_height
        else:
            rw, rh = shorter_side_size(camera_width, camera_height, spec.input.shorter_side)
        k = spec.input.pad_to_multiple
        return Geometry(camera_width, camera_height, rw, rh, 0, 0, _round_up(rw, k), _round_up(rh, k), centred=False)
    if spec.input.resize == "stretch":
        return Geometry(camera_width, camera_height, mw, mh, 0, 0, mw, mh)
    scale = min(mw / camera_width, mh / camera_height)
    rw = min(mw, max(1, round(camera_width * scale)))
    rh = min(mh, max(1, round(camera_height * scale)))
    return Geometry(camera_width, camera_height, rw, rh, (mw - rw) // 2, (mh - rh) // 2, mw, mh)


def letterbox_crop(geo: Geometry, head_height: int, head_width: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the camera's part of a head's output, in head pixels (a head may be
    coarser than the input), as YOLOv5's scale_image (and YOLOP) do it: half the padding, scaled to the head,
    truncated on each side. Exact fractions, so a half-pixel tie always resolves the same way. Padding at
    the bottom and right (shorter_side, native) keeps the head rows and columns the frame reaches."""
    if not geo.centred:
        height = Fraction(geo.resized_height * head_height, geo.model_height)
        width = Fraction(geo.resized_width * head_width, geo.model_width)
        return 0, 0, max(1, math.ceil(height)), max(1, math.ceil(width))
    pad_h = Fraction(geo.model_height - geo.resized_height, 2) * head_height / geo.model_height
    pad_w = Fraction(geo.model_width - geo.resized_width, 2) * head_width / geo.model_width
    top, left = int(pad_h), int(pad_w)
    return top, left, max(1, int(head_height - pad_h) - top), max(1, int(head_width - pad_w) - left)


def normalization_coefficients(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel a, b (model channel order) such that model_input = pixel_0_255 * a + b."""
    mean = np.asarray(spec.input.mean, dtype=np.float64)
    std = np.asarray(spec.input.std, dtype=np.float64)
    a = spec.input.pixel_range / 255.0 / std
    return a.astype(np.float32), (-mean / std).astype(np.float32)


def preprocess_graph(
    spec: ModelSpec, geo: Geometry, camera_order: str, batch: int | str, opset: int, ir: int, out_name: str
) -> onnx.ModelProto:
    b = GraphBuilder("seg_pre/", opset)
    # Resize in float (so mean/std order does not matter) and in NHWC, so that only the small,
    # resized image is transposed rather than the camera-sized one.
    resized = (geo.resized_height, geo.resized_width)
    camera = (geo.camera_height, geo.camera_width)
    if spec.input.interpolation == "bilinear":
        x = b.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
        if resized != camera:
            x = b.resize(x, geo.resized_height, geo.resized_width, "linear", channels_last=True)
    else:  # a library's own kernel, as taps (graph_resize): float, or uint8 arithmetic rounded as it rounds
        x = resize_nhwc(b, INPUT_NAME, camera, resized, spec.input.interpolation)
    x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    if camera_order != spec.input.channel_order:
        x = b.op("Gather", [x, b.const([2, 1, 0], "bgr_rgb")], axis=1)
    if (geo.resized_height, geo.resized_width) != (geo.model_height, geo.model_width):
        pads = [
            0,
            0,
            geo.pad_top,
            geo.pad_left,
            0,
            0,
            geo.model_height - geo.resized_height - geo.pad_top,
            geo.model_width - geo.resized_width - geo.pad_left,
        ]
        pad_value = b.const(np.array(float(spec.input.pad_value)), "pad_value", np.float32)
        x = b.op("Pad", [x, b.const(pads, "pads"), pad_value], mode="constant")
    a, c = normalization_coefficients(spec)
    x = b.op("Mul", [x, b.const(a.reshape(1, 3, 1, 1), "scale", np.float32)])
    last = spec.input.layout == "NCHW"
    x = b.op("Add", [x, b.const(c.reshape(1, 3, 1, 1), "offset", np.float32)], out=out_name if last else None)
    if not last:
        b.op("Transpose", [x], perm=[0, 2, 3, 1], out=out_name)
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [batch, geo.camera_height, geo.camera_width, 3])
    shape = [batch, 3, geo.model_height, geo.model_width] if last else [batch, geo.model_height, geo.model_width, 3]
    return b.model([inp], [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, shape)], ir)

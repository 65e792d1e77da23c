"""The fused graph's back: model heads to uint8 labels and confidence at the output resolution
(per-head argmax and max-probability, head merge, per-head masks, letterbox crop, upsampling)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_preprocess import Geometry, letterbox_crop
from seg_perception.core.model_spec import HeadSpec, MaskSpec, ModelSpec
from seg_perception.core.onnx_builder import GraphBuilder

LABELS_NAME = "labels"
CONFIDENCE_NAME = "confidence"
MASK_PREFIX = "mask_"
OutputResolution = Literal["input", "model"]


def _head_labels_and_confidence(b: GraphBuilder, head: HeadSpec, x: str, rank: int) -> tuple[str, str]:
    """Head-local int64 labels [N, h, w] and float confidence [N, h, w] for one head."""
    if head.kind == "labels":
        if rank == 4:
            x = b.op("Squeeze", [x, b.const([1], "axes")])
        labels = b.op("Cast", [x], to=TensorProto.INT64)
        ones = b.op(
            "ConstantOfShape", [b.op("Shape", [labels])], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        )
        return labels, ones
    axis = (head.channel_axis or 1) % rank
    x = b.op("Cast", [x], to=TensorProto.FLOAT)  # fp16 heads
    labels = b.op("ArgMax", [x], axis=axis, keepdims=0)
    if head.kind == "probabilities":
        return labels, b.reduce_max(x, axis)
    # max softmax probability = 1 / sum(exp(x - max x)): reductions only, no full Softmax (which
    # ONNX Runtime runs slowly on a non-last axis: 6.7 of 17 ms per 1280x720 frame for the demo model).
    peak = b.reduce_max(x, axis, keepdims=1)
    total = b.op("ReduceSum", [b.op("Exp", [b.op("Sub", [x, peak])]), b.const([axis], "axes")], keepdims=0)
    return labels, b.op("Reciprocal", [total])


def mask_output_name(mask: MaskSpec) -> str:
    """The fused graph's uint8 output for one declared mask."""
    return f"{MASK_PREFIX}{mask.name}"


def _bilinear_size(geo: Geometry, output_resolution: OutputResolution) -> tuple[int, int]:
    """(h, w) the logits are interpolated to: the camera, or (output_resolution model) the resized
    frame inside the model input."""
    if output_resolution == "input":
        return geo.camera_height, geo.camera_width
    return geo.resized_height, geo.resized_width


def _upsampled_logits(
    b: GraphBuilder,
    spec: ModelSpec,
    head: HeadSpec,
    x: str,
    rank: int,
    geo: Geometry,
    head_size: tuple[int, int],
    size: tuple[int, int],
) -> str:
    """A score head as float NCHW at `size`, interpolated bilinearly as the reference post-processing does:
    Hugging Face's post_process_semantic_segmentation resizes logits straight to the target size; with a
    letterbox, mmsegmentation first resizes to the model input, crops the padding, then resizes again."""
    x = b.op("Cast", [x], to=TensorProto.FLOAT)
    if (head.channel_axis or 1) % rank == 3:
        x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    corners = spec.upsampling.align_corners
    padded = (geo.resized_height, geo.resized_width) != (geo.model_height, geo.model_width)
    if padded:
        if head_size != (geo.model_height, geo.model_width):
            x = b.resize(x, geo.model_height, geo.model_width, "linear", align_corners=corners)
        top, left = geo.pad_top, geo.pad_left
        starts = b.const([top, left], "starts")
        ends = b.const([top + geo.resized_height, left + geo.resized_width], "ends")
        x = b.op("Slice", [x, starts, ends, b.const([2, 3], "axes")])
        head_size = (geo.resized_height, geo.resized_width)
    if head_size == size:
        return x
    return b.resize(x, size[0], size[1], "linear", align_corners=corners)


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """int64 [n_out]: the source index each output pixel of a nearest resize reads, as ONNX Resize
    (nearest, asymmetric, floor) computes it on ONNX Runtime: scale = n_out / n_in in float32 and
    floor(o / scale) in float32 (not the exact o * n_in // n_out, which differs for some sizes)."""
    scale = np.float32(np.float32(n_out) / np.float32(n_in))
    index = np.floor(np.arange(n_out, dtype=np.float32) / scale).astype(np.int64)
    return np.clip(index, 0, n_in - 1)


def _nearest(
    b: GraphBuilder, x: str, in_hw: tuple[int, int], out_hw: tuple[int, int], keep_hw: tuple[int, int] | None = None
) -> str:
    """float [N, h, w] resized with nearest to out_hw (then cut to its top-left keep_hw), as Gathers with
    constant indices rather than a Resize: at 1280x720 ONNX Runtime's nearest Resize took 0.74 ms against
    0.27 ms for these (its profile, one thread, docs/performance.md). Columns are taken first, on the
    small tensor (a Gather along the last axis copies one element at a time, so they are taken as rows of
    its transpose); then whole camera rows. The same numbers as the Resize, and constant indices leave a
    backend no coordinate arithmetic of its own."""
    (h, w), (height, width) = in_hw, out_hw
    keep_h, keep_w = keep_hw or out_hw
    if (width, keep_w) != (w, w):
        cols = b.const(nearest_indices(w, width)[:keep_w], "cols")
        x = b.op("Transpose", [b.op("Gather", [b.op("Transpose", [x], perm=[0, 2, 1]), cols], axis=1)], perm=[0, 2, 1])
    if (height, keep_h) != (h, h):
        x = b.op("Gather", [x, b.const(nearest_indices(h, height)[:keep_h], "rows")], axis=1)
    return x


def postprocess_graph(
    spec: ModelSpec,
    geo: Geometry,
    head_infos: list[tuple[str, int, int, tuple[int, int]]],
    output_resolution: OutputResolution,
    batch: int | str,
    opset: int,
    ir: int,
) -> onnx.ModelProto:
    """head_infos: (post-graph input name, elem_type, rank, (head_h, head_w)) per head in spec order.

    Outputs: labels, confidence and one mask per declared mask (all uint8 [N, h, w]); the compiler
    keeps only those asked for, and the work behind the others goes with them."""
    b = GraphBuilder("seg_post/", opset)
    inputs = []
    merged = confidence = ""
    head_h, head_w = head_infos[0][3]
    bilinear = spec.upsampling.method == "logits_bilinear"
    size = _bilinear_size(geo, output_resolution)
    head_labels: list[str] = []
    for head, (name, elem_type, rank, hw) in zip(spec.heads, head_infos, strict=True):
        if hw != (head_h, head_w):
            raise ModelSpecError(
                f"model spec key 'outputs': head {head.name!r} is {hw[1]}x{hw[0]} but the first head is "
                f"{head_w}x{head_h}; all heads must share one resolution"
            )
        inputs.append(helper.make_tensor_value_info(name, elem_type, None))
        x = name
        if bilinear:
            x, rank = _upsampled_logits(b, spec, head, x, rank, geo, hw, size), 4
            head = dataclasses.replace(head, channel_axis=1)
        local, conf = _head_labels_and_confidence(b, head, x, rank)
        head_labels.append(local)
        if head.class_ids == tuple(range(len(head.class_ids))):
            global_ids = local  # head order is the class order: no lookup needed
        else:
            table = b.const([c if c is not None else 0 for c in head.class_ids], "class_map")
            global_ids = b.op("Gather", [table, local], axis=0)
        if not merged:
            merged, confidence = global_ids, conf
            continue
        paints = b.op("Gather", [b.const([c is not None for c in head.class_ids], "paints", np.bool_), local], axis=0)
        merged = b.op("Where", [paints, global_ids, merged])
        confidence = b.op("Where", [paints, conf, confidence])
    # Everything per pixel is done at head resolution; at camera resolution only one nearest
    # upsampling (whole rows gathered) and one cast per output remain (that is where the pixels are many).
    # The cast to uint8 stays last: TensorRT converts uint8 to and from float only, so no Gather or Resize
    # may run on uint8.
    # round(p * 255) as floor(p * 255 + 0.5): Floor is supported everywhere, Round is not.
    conf_255 = b.op(
        "Floor",
        [
            b.op(
                "Add",
                [
                    b.op("Mul", [confidence, b.const(np.array(255.0), "c255", np.float32)]),
                    b.const(np.array(0.5), "half", np.float32),
                ],
            )
        ],
    )
    conf_255 = b.op(
        "Clip", [conf_255, b.const(np.array(0.0), "lo", np.float32), b.const(np.array(255.0), "hi", np.float32)]
    )
    maps = {LABELS_NAME: b.op("Cast", [merged], to=TensorProto.FLOAT), CONFIDENCE_NAME: conf_255}  # [N, h, w] each
    for mask in spec.masks:
        # A mask reads its own head's argmax, so heads painted over it later do not punch holes in it.
        table = b.const([255.0 if inside else 0.0 for inside in mask.inside], "mask_table", np.float32)
        maps[mask_output_name(mask)] = b.op("Gather", [table, head_labels[mask.head]], axis=0)
    if bilinear:
        out_h, out_w = size
    else:
        out_h, out_w = head_h, head_w
        padded = (geo.resized_height, geo.resized_width) != (geo.model_height, geo.model_width)
        if padded and not geo.centred and output_resolution == "input":
            # Bottom-right padding (native, shorter_side): each head cell back onto the padded input it saw,
            # the padding sliced off, so camera pixel p reads cell p // stride exactly.
            out_h, out_w = geo.resized_height, geo.resized_width
            model_hw = (geo.model_height, geo.model_width)
            maps = {n: _nearest(b, m, (head_h, head_w), model_hw, (out_h, out_w)) for n, m in maps.items()}
        elif padded:
            top, left, out_h, out_w = letterbox_crop(geo, head_h, head_w)  # remove the letterbox padding
            starts, ends = b.const([top, left], "starts"), b.const([top + out_h, left + out_w], "ends")
            maps = {n: b.op("Slice", [m, starts, ends, b.const([1, 2], "axes")]) for n, m in maps.items()}
        if output_resolution == "input" and (out_h, out_w) != (geo.camera_height, geo.camera_width):
            in_hw, (out_h, out_w) = (out_h, out_w), (geo.camera_height, geo.camera_width)
            maps = {n: _nearest(b, m, in_hw, (out_h, out_w)) for n, m in maps.items()}
    for n, m in maps.items():
        b.op("Cast", [m], out=n, to=TensorProto.UINT8)
    outputs = [helper.make_tensor_value_info(n, TensorProto.UINT8, [batch, out_h, out_w]) for n in maps]
    return b.model(inputs, outputs, ir)

"""Compile a user's segmentation model and its spec into one fused ONNX graph.

The fused graph takes ``uint8 [N, H, W, 3]`` camera pixels (in the camera's channel order) and
returns ``uint8 labels [N, h, w]`` and ``uint8 confidence [N, h, w]``.  Preprocessing (cast,
bilinear resize with half-pixel centres, letterbox pad, channel reorder, scale/mean/std, layout)
and postprocessing (per-head argmax and max-probability, head merge, letterbox crop, nearest
upsampling to the camera) live inside the graph, so TensorRT and ONNX Runtime run the very same
computation.  Only ops that TensorRT's ONNX parser supports are emitted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper, version_converter

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.model_spec import HeadSpec, ModelSpec
from seg_perception.core.onnx_checks import check_spec_against_onnx, graph_io, load_onnx

MIN_OPSET = 17
INPUT_NAME = "image"
LABELS_NAME = "labels"
CONFIDENCE_NAME = "confidence"
OutputResolution = Literal["input", "model"]


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


def input_geometry(spec: ModelSpec, camera_width: int, camera_height: int) -> Geometry:
    """Resize/letterbox geometry for one camera size (Ultralytics LetterBox: round() size, floor(pad/2) first)."""
    mw, mh = spec.input.width, spec.input.height
    if spec.input.resize == "stretch":
        return Geometry(camera_width, camera_height, mw, mh, 0, 0, mw, mh)
    scale = min(mw / camera_width, mh / camera_height)
    rw = min(mw, max(1, round(camera_width * scale)))
    rh = min(mh, max(1, round(camera_height * scale)))
    return Geometry(camera_width, camera_height, rw, rh, (mw - rw) // 2, (mh - rh) // 2, mw, mh)


def normalization_coefficients(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel a, b (model channel order) such that model_input = pixel_0_255 * a + b."""
    mean = np.asarray(spec.input.mean, dtype=np.float64)
    std = np.asarray(spec.input.std, dtype=np.float64)
    a = spec.input.pixel_range / 255.0 / std
    return a.astype(np.float32), (-mean / std).astype(np.float32)


class _Builder:
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

    def resize(self, x: str, height: int, width: int, mode: str, channels_last: bool = False) -> str:
        """Resize the spatial axes of a rank-4 tensor (NCHW, or NHWC when channels_last) to a fixed size;
        the other axes keep their (possibly dynamic) sizes."""
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
            return self.op(
                "Resize", [x, empty, empty, sizes], mode="linear", coordinate_transformation_mode="half_pixel"
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


def _opset_of(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelSpecError("model spec key 'onnx': the model imports no default ONNX opset; re-export it")


def _upgrade(model: onnx.ModelProto) -> onnx.ModelProto:
    """Bring the user's model to at least MIN_OPSET so pre/post graphs share one opset with it."""
    if _opset_of(model) >= MIN_OPSET:
        return model
    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:
        raise ModelSpecError(
            f"model spec key 'onnx': cannot convert the model from opset {_opset_of(model)} to {MIN_OPSET} ({exc}); "
            f"re-export it with opset >= {MIN_OPSET}"
        ) from exc


def _batch_dim(model_batch: int | str | None, batch: int | None) -> int | str:
    if isinstance(model_batch, int) and model_batch > 0:
        if batch is not None and batch != model_batch:
            raise ModelSpecError(f"batch {batch} requested but the ONNX model's batch is fixed at {model_batch}")
        return model_batch
    return batch if batch is not None else "N"


def _preprocess(
    spec: ModelSpec, geo: Geometry, camera_order: str, batch: int | str, opset: int, ir: int, out_name: str
) -> onnx.ModelProto:
    b = _Builder("seg_pre/", opset)
    # Resize in float (so mean/std order does not matter) and in NHWC, so that only the small,
    # resized image is transposed rather than the camera-sized one.
    x = b.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    if (geo.resized_height, geo.resized_width) != (geo.camera_height, geo.camera_width):
        x = b.resize(x, geo.resized_height, geo.resized_width, "linear", channels_last=True)
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


def _head_labels_and_confidence(b: _Builder, head: HeadSpec, x: str, rank: int) -> tuple[str, str]:
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


def _postprocess(
    spec: ModelSpec,
    geo: Geometry,
    head_infos: list[tuple[str, int, int, tuple[int, int]]],
    output_resolution: OutputResolution,
    batch: int | str,
    opset: int,
    ir: int,
) -> onnx.ModelProto:
    """head_infos: (post-graph input name, elem_type, rank, (head_h, head_w)) per head in spec order."""
    b = _Builder("seg_post/", opset)
    inputs = []
    merged = confidence = ""
    head_h, head_w = head_infos[0][3]
    for head, (name, elem_type, rank, hw) in zip(spec.heads, head_infos, strict=True):
        if hw != (head_h, head_w):
            raise ModelSpecError(
                f"model spec key 'outputs': head {head.name!r} is {hw[1]}x{hw[0]} but the first head is "
                f"{head_w}x{head_h}; all heads must share one resolution"
            )
        inputs.append(helper.make_tensor_value_info(name, elem_type, None))
        local, conf = _head_labels_and_confidence(b, head, name, rank)
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
    # resize and one cast per output remain (that is where the pixels are many).
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
    maps = [b.op("Cast", [merged], to=TensorProto.FLOAT), conf_255]  # [N, h, w] each
    out_h, out_w = head_h, head_w
    if (geo.resized_height, geo.resized_width) != (geo.model_height, geo.model_width):
        # Remove letterbox padding, measured in head pixels (a head may be coarser than the input), as
        # YOLOv5's scale_image (and YOLOP) do it: half the padding, scaled to the head, truncated on each
        # side. Exact fractions, so a half-pixel tie always resolves the same way (int(), not round()).
        pad_h = Fraction(geo.model_height - geo.resized_height, 2) * head_h / geo.model_height
        pad_w = Fraction(geo.model_width - geo.resized_width, 2) * head_w / geo.model_width
        top, left = int(pad_h), int(pad_w)
        out_h = max(1, int(head_h - pad_h) - top)
        out_w = max(1, int(head_w - pad_w) - left)
        starts, ends = b.const([top, left], "starts"), b.const([top + out_h, left + out_w], "ends")
        maps = [b.op("Slice", [m, starts, ends, b.const([1, 2], "axes")]) for m in maps]
    if output_resolution == "input":
        out_h, out_w = geo.camera_height, geo.camera_width
        # Resize is rank-4 here (NCHW with one channel), the layout every backend handles.
        maps = [
            b.op(
                "Squeeze",
                [b.resize(b.op("Unsqueeze", [m, b.const([1], "axes")]), out_h, out_w, "nearest"), b.const([1], "axes")],
            )
            for m in maps
        ]
    b.op("Cast", [maps[0]], out=LABELS_NAME, to=TensorProto.UINT8)
    b.op("Cast", [maps[1]], out=CONFIDENCE_NAME, to=TensorProto.UINT8)
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.UINT8, [batch, out_h, out_w])
        for n in (LABELS_NAME, CONFIDENCE_NAME)
    ]
    return b.model(inputs, outputs, ir)


def _spatial(info_dims: tuple[int | str | None, ...], head: HeadSpec, spec: ModelSpec) -> tuple[int, int]:
    """Static (h, w) of a head; unknown dims fall back to the model input size."""
    rank = len(info_dims)
    if head.kind == "labels":
        h, w = info_dims[-2], info_dims[-1]
    else:
        axis = (head.channel_axis or 1) % rank
        h, w = [d for i, d in enumerate(info_dims) if i not in (0, axis)][:2]
    return (h if isinstance(h, int) else spec.input.height, w if isinstance(w, int) else spec.input.width)


def compile_fused_graph(
    spec: ModelSpec,
    camera_width: int,
    camera_height: int,
    camera_order: str = "RGB",
    output_resolution: OutputResolution = "input",
    batch: int | None = None,
    confidence: bool = True,
) -> onnx.ModelProto:
    """The fused graph for one camera size: uint8 [N, H, W, 3] in, uint8 labels (and confidence) out.

    Without `confidence` the graph has only the labels output and none of the work behind the other.
    """
    if camera_order not in ("RGB", "BGR"):
        raise ModelSpecError(f"camera channel order {camera_order!r} is not RGB or BGR")
    if output_resolution not in ("input", "model"):
        raise ModelSpecError(f"output resolution {output_resolution!r} is not 'input' or 'model'")
    if camera_width < 1 or camera_height < 1:
        raise ModelSpecError(f"camera size {camera_width}x{camera_height} is empty")
    model = load_onnx(spec.onnx_path)
    check_spec_against_onnx(spec, model)
    model = _upgrade(model)
    opset, ir = _opset_of(model), model.ir_version
    inputs, outputs = graph_io(model)
    input_dims = inputs[spec.input.name].dims
    n = _batch_dim(input_dims[0], batch)
    geo = input_geometry(spec, camera_width, camera_height)

    pre_out = "seg_pre/model_input"
    pre = _preprocess(spec, geo, camera_order, n, opset, ir, pre_out)
    head_infos = []
    for i, head in enumerate(spec.heads):
        info = outputs[head.name]
        head_infos.append((f"seg_post/head_{i}", info.elem_type, info.rank, _spatial(info.dims, head, spec)))
    post = _postprocess(spec, geo, head_infos, output_resolution, n, opset, ir)

    # The model's own input disappears into the io_map: the fused graph's input (and batch) are ours.
    fused = compose.merge_models(pre, model, io_map=[(pre_out, spec.input.name)], prefix2="model/")
    fused = compose.merge_models(
        fused,
        post,
        io_map=[(f"model/{h.name}", hi[0]) for h, hi in zip(spec.heads, head_infos, strict=True)],
        outputs=[LABELS_NAME, CONFIDENCE_NAME] if confidence else [LABELS_NAME],
    )
    # merge_models lists the default opset once per merged model; keep one entry per domain.
    versions: dict[str, int] = {}
    for entry in fused.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        versions[domain] = max(versions.get(domain, 0), int(entry.version))
    del fused.opset_import[:]
    fused.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    fused.graph.name = f"seg_perception_fused_{spec.name}"
    fused.doc_string = (
        f"seg_perception fused graph for {spec.name}: camera {camera_width}x{camera_height} {camera_order}, "
        f"outputs at {output_resolution} resolution"
    )
    del fused.metadata_props[:]
    for key, value in {
        "seg_perception.model": spec.name,
        "seg_perception.camera_size": f"{camera_width}x{camera_height}",
        "seg_perception.camera_order": camera_order,
        "seg_perception.output_resolution": output_resolution,
    }.items():
        fused.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    try:
        onnx.checker.check_model(fused)
    except onnx.checker.ValidationError as exc:
        raise ModelSpecError(f"the fused graph for {spec.name} is invalid: {exc}") from exc
    return fused


def graph_digest(model: onnx.ModelProto) -> str:
    """sha256 of the serialized graph: the identity engine caches key on."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()

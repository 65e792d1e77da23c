"""Reduced-precision copies of the fused graph, made and measured on CPU with ONNX Runtime.

* INT8 by explicit quantization: ``calibrate_fused_graph`` finds activation ranges (``core.calibration``:
  minmax, percentile or entropy, with settings that hold on real activations) and ``qdq_from_ranges``
  turns them into a QDQ graph with ``onnxruntime.quantization.quantize_static`` (QuantizeLinear /
  DequantizeLinear around the model's Conv/MatMul/Gemm inputs), as often as mixed precision needs, with
  any weighted nodes kept in fp32 (``exclude``). TensorRT builds Q/DQ graphs as INT8 on every supported
  version (8.6 and 10.x with the INT8 builder flag, 11.x natively, where implicit INT8 calibration is
  gone), and ONNX Runtime runs the very same graph here, so its accuracy is measured before any car sees
  it (``core.int8_gate``). Two recipes (``core.qdq_recipes``), chosen by ``target``: ``tensorrt`` (the
  explicit-quantization placement the engine builder parses: symmetric int8, Q/DQ on weighted layers'
  inputs, fp32 biases) and ``onnxruntime`` (the CPU variant: the ops between weighted layers quantized
  too, uint8 activations, int32 biases, so ONNX Runtime fuses its integer kernels). Each is gated on its own.
* FP16 for strongly typed TensorRT (11.x removed ``BuilderFlag.FP16``): ``fp16_fused_graph`` converts the
  model part of the graph to float16 with ONNX Runtime's float16 converter, keeping our pre/post-processing
  in fp32 so the uint8 pixels in and the argmax/confidence out are computed exactly as before.

Measured figures (demo model and fixture nets, per method) are in the README's "Deploying on Jetson".

The camera input (uint8, Cast, resize, normalisation) and the post-processing (softmax/argmax, head merge,
uint8 casts) are never quantized: ``nodes_to_exclude`` names every ``seg_pre/`` and ``seg_post/`` node and
only the op types of the target's recipe are considered.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto

from seg_perception.core.calibration import QUANTIZED_OP_TYPES, calibrate
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.graph_compiler import CONFIDENCE_NAME, INPUT_NAME, LABELS_NAME
from seg_perception.core.image_files import IMAGE_SUFFIXES, input_images
from seg_perception.core.qdq_recipes import TARGET_METADATA, TENSORRT_RECIPE, narrow_input_convs, recipe_for

LOG = logging.getLogger(__name__)
PRE_PREFIX = "seg_pre/"
POST_PREFIX = "seg_post/"
QUANTIZER_VERSION = TENSORRT_RECIPE.version  # part of cache keys (core.qdq_recipes: one version per target)
_OUTSIDE = (PRE_PREFIX, POST_PREFIX)


class QuantizationError(SegPerceptionError):
    """Calibration data or the quantizer could not produce a usable QDQ graph."""


@dataclass(frozen=True)
class FusedGraphInput:
    """What the fused graph expects from the camera: size and channel order."""

    width: int
    height: int
    channel_order: str


def fused_graph_input(fused: onnx.ModelProto) -> FusedGraphInput:
    """Camera size and channel order of a fused graph (from its uint8 input and metadata)."""
    meta = {p.key: p.value for p in fused.metadata_props}
    for value in fused.graph.input:
        if value.name == INPUT_NAME:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value") and dims[2].HasField("dim_value"):
                order = meta.get("seg_perception.camera_order", "RGB")
                return FusedGraphInput(int(dims[2].dim_value), int(dims[1].dim_value), order)
    raise QuantizationError(f"the graph has no uint8 [N, H, W, 3] input named {INPUT_NAME!r}; is it a fused graph?")


def image_files(directory: Path) -> list[Path]:
    """Calibration images in a directory, sorted; label/overlay images written next to frames are skipped."""
    if not directory.is_dir():
        raise QuantizationError(f"calibration directory {directory} does not exist")
    return input_images(directory)


def frames_from_directory(directory: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames read from image files (unreadable files are skipped with a warning)."""
    files = image_files(directory)
    if not files:
        raise QuantizationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    count = 0
    for path in files:
        if limit is not None and count >= limit:
            return
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            LOG.warning("skipping %s: not a readable image", path)
            continue
        count += 1
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def camera_frame(rgb: np.ndarray, target: FusedGraphInput) -> np.ndarray:
    """An RGB frame as the fused graph's camera delivers it: its size, its channel order, [1, H, W, 3]."""
    if rgb.shape[:2] != (target.height, target.width):
        rgb = cv2.resize(rgb, (target.width, target.height), interpolation=cv2.INTER_AREA)
    if target.channel_order == "BGR":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb[np.newaxis], dtype=np.uint8)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy: the quantizer and the float16 converter modify the model they are given."""
    return onnx.ModelProto.FromString(model.SerializeToString())


def _nodes_outside_model(model: onnx.ModelProto) -> list[str]:
    return [n.name for n in model.graph.node if n.name.startswith((PRE_PREFIX, POST_PREFIX))]


def _io_signature(model: onnx.ModelProto) -> list[tuple[str, int]]:
    return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]


def _check_same_io(fused: onnx.ModelProto, derived: onnx.ModelProto, what: str) -> None:
    """The camera-facing contract (uint8 image in, uint8 labels/confidence out) must survive conversion."""
    before, after = _io_signature(fused), _io_signature(derived)
    if before != after:
        raise QuantizationError(f"the {what} graph changed the fused graph's I/O: {before} became {after}")
    expected = {INPUT_NAME: TensorProto.UINT8, LABELS_NAME: TensorProto.UINT8, CONFIDENCE_NAME: TensorProto.UINT8}
    wrong = [n for n, t in after if n in expected and expected[n] != t]
    if wrong:
        raise QuantizationError(f"the {what} graph's {', '.join(wrong)} are no longer uint8")


def _set_metadata(model: onnx.ModelProto, **entries: str) -> None:
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in entries.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def weighted_nodes(fused: onnx.ModelProto, target: str = "tensorrt") -> list[str]:
    """Names of the model's nodes that INT8 quantizes for `target` (its Conv/MatMul/Gemm, never our
    pre/post-processing, and for the CPU variant not the narrow-input convs and the float tail its recipe keeps
    in fp32)."""
    model = _named(fused)
    narrow, tail = _fp32_kept(model, target)
    kept = set(narrow) | set(tail)
    return [
        n.name
        for n in model.graph.node
        if n.op_type in QUANTIZED_OP_TYPES and not n.name.startswith(_OUTSIDE) and n.name not in kept
    ]


def _float_tail(model: onnx.ModelProto) -> list[str]:
    """The ops between the model's last weighted layers and the post-processing (walking back from every
    tensor a ``seg_post/`` node reads, through any op, up to the first weighted layer), and the weighted
    layers that feed those ops. A last layer that hands its output straight to the post-processing is not
    part of it: it runs float on a dequantized input anyway, its int8 weights are all it is quantized by."""
    producer = {o: n for n in model.graph.node for o in n.output}
    start = [i for n in model.graph.node if n.name.startswith(POST_PREFIX) for i in n.input]
    seen: set[str] = set()
    todo = [(producer[name], False) for name in start if name in producer]  # (node, read by a tail op)
    while todo:
        node, behind_op = todo.pop()
        if node.name.startswith(_OUTSIDE) or node.op_type == "Constant":
            continue
        if node.op_type in QUANTIZED_OP_TYPES:
            if behind_op:
                seen.add(node.name)
            continue
        if node.name not in seen:
            seen.add(node.name)
            if node.op_type in _METADATA_OPS:
                continue  # reads only its input's shape: the layer behind it is no part of the tail
            data = node.input[:1] if node.op_type in _ONE_DATA_INPUT else node.input
            todo += [(producer[name], True) for name in data if name in producer]
    return [n.name for n in model.graph.node if n.name in seen]


# Ops whose output is shape metadata, and ops whose inputs after the first are sizes, indices or shapes: the
# float tail follows the data only (a torch export's logit Resize often takes its `sizes` from
# Shape(an encoder feature map), which must not pull that encoder layer into fp32).
_METADATA_OPS = frozenset({"Shape", "Size"})
_ONE_DATA_INPUT = frozenset(
    {"Resize", "Upsample", "Reshape", "Slice", "Expand", "Pad", "Tile", "Gather", "Squeeze", "Unsqueeze"}
)


def _fp32_kept(model: onnx.ModelProto, target: str) -> tuple[list[str], list[str]]:
    """The nodes `target`'s recipe keeps in fp32 for speed: (the convs reading the 3-channel image, the float
    tail of ``_float_tail`` when the recipe sends the logits to post-processing in fp32). Neither when they
    hold every weighted layer: INT8 was asked for, and there is no faster integer part to keep them from."""
    recipe = recipe_for(target)
    narrow = [n for n in narrow_input_convs(model, recipe.min_input_channels) if not n.startswith(_OUTSIDE)]
    tail = [n for n in _float_tail(model) if n not in narrow] if recipe.float_into_post else []
    weighted = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OP_TYPES and not n.name.startswith(_OUTSIDE)]
    return ([], []) if set(weighted) <= set(narrow) | set(tail) else (narrow, tail)


def _float_into_post(qdq: onnx.ModelProto) -> int:
    """Drop the Q/DQ pairs on the tensors the model hands to post-processing (its logits), in place, so
    argmax and softmax read them in fp32 as on TensorRT's graph: an 8-bit logit turns every near-tie
    into a tie (a random 1x1-conv net lost 7 points of agreement). The last layer then runs float on
    its dequantized input, a small cost. Returns how many pairs were dropped."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in qdq.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    drop: list[onnx.NodeProto] = []
    for q in (n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and not n.name.startswith(_OUTSIDE)):
        dqs = consumers.get(q.output[0], [])
        if len(dqs) != 1 or dqs[0].op_type != "DequantizeLinear":
            continue
        users = consumers.get(dqs[0].output[0], [])
        if users and all(u.name.startswith(POST_PREFIX) for u in users):
            for user in users:
                user.input[:] = [q.input[0] if i == dqs[0].output[0] else i for i in user.input]
            drop += [q, dqs[0]]
    kept = [n for n in qdq.graph.node if all(n is not d for d in drop)]
    del qdq.graph.node[:]
    qdq.graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    unused = [i for i in qdq.graph.initializer if i.name not in used]  # the dropped pairs' scales/zero points
    for init in unused:
        qdq.graph.initializer.remove(init)
    return len(drop) // 2


def _named(fused: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose nodes all have names (nodes_to_exclude and mixed precision address nodes by name)."""
    model = _copy(fused)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"seg_model/{node.op_type}_{i}"
    return model


def calibration_batches(fused: onnx.ModelProto, frames: Iterable[np.ndarray]) -> list[np.ndarray]:
    """RGB frames of any size as the fused graph's camera delivers them ([1, H, W, 3] each)."""
    target = fused_graph_input(fused)
    return [camera_frame(f, target) for f in frames]


def calibrate_fused_graph(
    fused: onnx.ModelProto, frames: Iterable[np.ndarray], method: str = "percentile", target: str = "tensorrt"
) -> Any:
    """Activation ranges of the fused graph's model part on RGB `frames` (see ``core.calibration``): the
    tensors `target`'s recipe quantizes (the CPU variant also needs the ranges between weighted layers)."""
    batches = calibration_batches(fused, frames)
    if not batches:
        raise QuantizationError("no calibration frames")
    return calibrate(_named(fused), INPUT_NAME, batches, method, recipe_for(target).op_types)


def _preprocess_advice(record: logging.LogRecord) -> bool:
    """Drop quantize_static's root-logger advice to run its pre-processing: it targets exporter graphs
    without shapes; the fused graph has static shapes, and mixed precision would repeat the line per try."""
    return not record.getMessage().startswith(
        ("Please consider to run pre-processing", "Please consider pre-processing")
    )


INT8_QUANTIZER_NEEDS = "INT8 needs onnxruntime >= 1.32 (quantize_static with a calibration cache; Python >= 3.11)"


def int8_quantizer_available() -> bool:
    """Whether this onnxruntime can re-quantize from a calibration cache (1.32+), which INT8 here relies on."""
    import inspect

    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def qdq_from_ranges(
    fused: onnx.ModelProto,
    ranges: Any,
    exclude: Sequence[str] = (),
    per_channel: bool = True,
    calibration_frames: int = 0,
    target: str = "tensorrt",
) -> onnx.ModelProto:
    """The QDQ graph for calibrated `ranges` and an INT8 `target` (``core.qdq_recipes``: tensorrt, or the
    onnxruntime CPU variant), keeping the nodes named in `exclude` in fp32."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static, save_tensors_data

    if not int8_quantizer_available():
        raise QuantizationError(INT8_QUANTIZER_NEEDS)
    recipe = recipe_for(target)
    model = _named(fused)
    narrow, tail = _fp32_kept(model, target)
    with tempfile.TemporaryDirectory(prefix="seg_qdq_") as tmp:
        out = Path(tmp) / "qdq.onnx"
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges, cache)
        root = logging.getLogger()
        root.addFilter(_preprocess_advice)
        try:
            quantize_static(
                model,
                out,
                None,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(recipe.op_types),
                nodes_to_exclude=[*_nodes_outside_model(model), *exclude, *narrow, *tail],
                per_channel=per_channel,
                activation_type=QuantType.QUInt8 if recipe.activation_unsigned else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=ranges.calibration_method,
                calibration_cache_path=cache,
                extra_options=dict(recipe.extra_options),
            )
        except Exception as exc:
            raise QuantizationError(f"onnxruntime could not quantize the fused graph: {exc}") from exc
        finally:
            root.removeFilter(_preprocess_advice)
        qdq = onnx.load(str(out))
    if recipe.float_into_post:
        _float_into_post(qdq)
    _check_same_io(fused, qdq, "QDQ")
    q_nodes = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    if q_nodes == 0 and set(weighted_nodes(fused, target)) - set(exclude):
        raise QuantizationError(
            f"nothing was quantized: the model has no {', '.join(QUANTIZED_OP_TYPES)} nodes outside pre/post-processing"
        )
    _set_metadata(
        qdq,
        **{
            "seg_perception.precision": recipe.precision,
            TARGET_METADATA: recipe.target,
            "seg_perception.calibration_frames": str(calibration_frames),
            "seg_perception.fp32_nodes": ",".join(exclude),
            "seg_perception.fp32_narrow_convs": ",".join(narrow),
            "seg_perception.fp32_tail": ",".join(tail),
        },
    )
    LOG.debug(
        "quantized %d tensors for %s, %d weighted nodes kept in fp32 (+%d narrow-input convs, %d float-tail nodes)",
        q_nodes,
        recipe.target,
        len(exclude),
        len(narrow),
        len(tail),
    )
    return qdq


def quantize_fused_graph(
    fused: onnx.ModelProto,
    frames: Iterable[np.ndarray],
    method: str = "percentile",
    per_channel: bool = True,
    exclude: Sequence[str] = (),
    target: str = "tensorrt",
) -> onnx.ModelProto:
    """A QDQ copy of the fused graph for `target`, calibrated on RGB `frames` (any size: resized to the camera's)."""
    batches = calibration_batches(fused, frames)
    if not batches:
        raise QuantizationError("no calibration frames")
    ranges = calibrate(_named(fused), INPUT_NAME, batches, method, recipe_for(target).op_types)
    qdq = qdq_from_ranges(fused, ranges, exclude, per_channel, calibration_frames=len(batches), target=target)
    LOG.info("quantized for %s with %d calibration frames (%s)", target, len(batches), method)
    return qdq


def fp16_fused_graph(fused: onnx.ModelProto) -> onnx.ModelProto:
    """The model part in float16, pre/post-processing in float32: FP16 for strongly typed TensorRT."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        half = convert_float_to_float16(
            _copy(fused),
            keep_io_types=True,
            node_block_list=_nodes_outside_model(fused),
            disable_shape_infer=False,
        )
    except Exception as exc:
        raise QuantizationError(f"could not convert the fused graph to float16: {exc}") from exc
    _check_same_io(fused, half, "float16")
    _set_metadata(half, **{"seg_perception.precision": "fp16-graph"})
    return half

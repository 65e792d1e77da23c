"""What a careful newcomer writes without fusing: the baseline the benchmark measures us against.

bytes -> numpy, cv2.resize (stretch, or letterbox with cv2.copyMakeBorder), numpy normalise and
transpose, float32 model on ONNX Runtime, numpy argmax per head, heads merged in spec order (a head's
null classes paint nothing), letterbox crop, cv2.resize nearest back to the camera size, colourise
every frame. It covers every spec option the fused graph compiler knows; a spec option it does not
know makes it refuse with BaselineUnsupportedError naming the option, so the benchmark can skip it and say why.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from seg_perception.core.graph_preprocess import Geometry, letterbox_crop
from seg_perception.core.model_spec import HeadSpec, ModelSpec

# The spec fields this baseline implements. A field added to the spec later (with a non-default value in
# a spec) is something the baseline would silently get wrong, so it refuses instead.
KNOWN_INPUT_FIELDS = {
    "name",
    "layout",
    "width",
    "height",
    "channel_order",
    "pixel_range",
    "mean",
    "std",
    "resize",
    "pad_value",
}
KNOWN_HEAD_FIELDS = {"name", "kind", "channel_axis", "class_ids"}
KNOWN_MODEL_FIELDS = {
    "name",
    "onnx_path",
    "input",
    "heads",
    "classes",
    "ignore_id",
    "description",
    "spec_path",
    "metrics",
}
KNOWN = {"resize": ("stretch", "letterbox"), "kind": ("logits", "probabilities", "labels"), "layout": ("NCHW", "NHWC")}


class BaselineUnsupportedError(Exception):
    """The spec uses an option the straightforward baseline does not implement; the message names it."""


def _unknown_options(item: object, known: set[str], where: str) -> list[str]:
    found = []
    for f in dataclasses.fields(item):  # type: ignore[arg-type]
        if f.name in known:
            continue
        value = getattr(item, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if value != default:
            found.append(f"{where}{f.name}={value!r}")
    return found


def check_supported(spec: ModelSpec) -> None:
    """Raise BaselineUnsupportedError unless every option `spec` uses is one this baseline implements."""
    problems = _unknown_options(spec, KNOWN_MODEL_FIELDS, "")
    problems += _unknown_options(spec.input, KNOWN_INPUT_FIELDS, "input.")
    for i, head in enumerate(spec.heads):
        problems += _unknown_options(head, KNOWN_HEAD_FIELDS, f"outputs[{i}].")
        if head.kind not in KNOWN["kind"]:
            problems.append(f"outputs[{i}].kind={head.kind!r}")
    if spec.input.resize not in KNOWN["resize"]:
        problems.append(f"input.resize={spec.input.resize!r}")
    if spec.input.layout not in KNOWN["layout"]:
        problems.append(f"input.layout={spec.input.layout!r}")
    if problems:
        raise BaselineUnsupportedError(f"the straightforward baseline does not implement {', '.join(problems)}")


def _head_labels(head: HeadSpec, value: np.ndarray) -> np.ndarray:
    """Head-local class indices [h, w] of the first image of one head output."""
    if head.kind == "labels":
        labels = value[0]
        return (labels[0] if labels.ndim == 3 else labels).astype(np.int64)
    axis = head.channel_axis if head.channel_axis is not None else 1
    axis = axis % value.ndim - 1  # the same axis once the batch is dropped
    return np.argmax(value[0], axis=axis)


class StraightforwardSegmenter:
    """Unfused pre/post-processing around the bare model."""

    def __init__(self, spec: ModelSpec, threads: int = 0) -> None:
        import onnxruntime as ort

        check_supported(spec)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
        self.spec = spec
        inp = spec.input
        self.mean = np.array(inp.mean, np.float32)
        self.std = np.array(inp.std, np.float32)
        self.scale = np.float32(inp.pixel_range / 255.0)
        self.tables = [np.array([c if c is not None else 0 for c in h.class_ids], np.uint8) for h in spec.heads]
        self.paints = [np.array([c is not None for c in h.class_ids], bool) for h in spec.heads]
        self.palette = np.zeros((256, 3), np.uint8)
        for i, cls in enumerate(spec.classes):
            self.palette[i] = cls.color

    def _fit(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The frame at model size, and where the picture sits in it: (top, left, height, width)."""
        inp = self.spec.input
        if inp.resize == "stretch":
            small = cv2.resize(frame, (inp.width, inp.height), interpolation=cv2.INTER_LINEAR)
            return small, (0, 0, inp.height, inp.width)
        height, width = frame.shape[:2]
        scale = min(inp.width / width, inp.height / height)
        new_w = min(inp.width, max(1, round(width * scale)))
        new_h = min(inp.height, max(1, round(height * scale)))
        top, left = (inp.height - new_h) // 2, (inp.width - new_w) // 2
        small = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        pad = inp.pad_value
        boxed = cv2.copyMakeBorder(
            small,
            top,
            inp.height - new_h - top,
            left,
            inp.width - new_w - left,
            cv2.BORDER_CONSTANT,
            value=(pad, pad, pad),
        )
        return boxed, (top, left, new_h, new_w)

    def segment(self, data: bytes, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """rgb8 bytes in; (labels at camera size, colour mask) out."""
        inp = self.spec.input
        frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
        small, (top, left, inner_h, inner_w) = self._fit(frame.astype(np.float32))
        if inp.channel_order == "BGR":
            small = small[..., ::-1]
        x = (small * self.scale - self.mean) / self.std
        if inp.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        x = np.ascontiguousarray(x[np.newaxis])
        values = self.session.run([h.name for h in self.spec.heads], {inp.name: x})
        labels: np.ndarray = self.tables[0][_head_labels(self.spec.heads[0], values[0])]
        for i in range(1, len(values)):
            local = _head_labels(self.spec.heads[i], values[i])
            labels = np.where(self.paints[i][local], self.tables[i][local], labels)
        if (inner_h, inner_w) != (inp.height, inp.width):  # crop the letterbox, in head pixels
            geo = Geometry(width, height, inner_w, inner_h, left, top, inp.width, inp.height)
            y0, x0, crop_h, crop_w = letterbox_crop(geo, *labels.shape[:2])
            labels = labels[y0 : y0 + crop_h, x0 : x0 + crop_w]
        labels = cv2.resize(np.ascontiguousarray(labels), (width, height), interpolation=cv2.INTER_NEAREST)
        return labels, self.palette[labels]

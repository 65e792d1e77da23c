"""A plain numpy/OpenCV implementation of what a model spec means, written independently of the
graph compiler, so the fused graph can be checked against it pixel by pixel.

The conventions come from the code people compare our outputs with, not from our compiler:
* letterbox: Ultralytics' ``LetterBox`` (scale ``r = min(new/old)``, ``round(old * r)`` resized size,
  the padding split ``round(d/2 - 0.1)`` before and ``round(d/2 + 0.1)`` after, ``cv2.INTER_LINEAR``);
* crop of a head back to the image: YOLOv5's ``scale_image`` with the letterbox's ``ratio_pad``
  (half-pads scaled to the head, ``top = int(pad)``, ``bottom = int(head - pad)``), which is YOLOP's too;
* label upsampling to the camera: ``cv2.resize(..., interpolation=cv2.INTER_NEAREST)``;
* logit upsampling (mmsegmentation, Hugging Face, Ultralytics ``scale_masks``): bilinear with half-pixel
  centres (``align_corners=False``), which is ``cv2.INTER_LINEAR``; see ``zoo_reference_labels``.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from seg_perception.core.model_spec import ModelSpec


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST))


def letterbox_geometry(cam_w: int, cam_h: int, model_w: int, model_h: int) -> tuple[int, int, int, int, float, float]:
    """(resized_w, resized_h, pad_top, pad_left, half_pad_h, half_pad_w) as Ultralytics' LetterBox computes them."""
    r = min(model_h / cam_h, model_w / cam_w)
    new_w, new_h = round(cam_w * r), round(cam_h * r)
    dw, dh = (model_w - new_w) / 2, (model_h - new_h) / 2
    return new_w, new_h, round(dh - 0.1), round(dw - 0.1), dh, dw


def crop_box(
    head_h: int, head_w: int, model_h: int, model_w: int, half_pad_h: float, half_pad_w: float
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the image inside a head map, as YOLOv5's scale_image with ratio_pad."""
    pad_h, pad_w = half_pad_h * head_h / model_h, half_pad_w * head_w / model_w
    return int(pad_h), int(head_h - pad_h), int(pad_w), int(head_w - pad_w)


def model_outputs(
    spec: ModelSpec, frame: np.ndarray, camera_order: str = "RGB"
) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The user's model run on the letterboxed/resized, normalised frame: (outputs by name, half pads h, w)."""
    inp = spec.input
    cam_h, cam_w = frame.shape[:2]
    x = frame.astype(np.float32)
    if inp.resize == "letterbox":
        rw, rh, top, left, half_pad_h, half_pad_w = letterbox_geometry(cam_w, cam_h, inp.width, inp.height)
    else:
        rw, rh, top, left, half_pad_h, half_pad_w = inp.width, inp.height, 0, 0, 0.0, 0.0
    if (rh, rw) != (cam_h, cam_w):
        x = cv2.resize(x, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if camera_order != inp.channel_order:
        x = x[..., ::-1]
    canvas = np.full((inp.height, inp.width, 3), float(inp.pad_value), np.float32)
    canvas[top : top + rh, left : left + rw] = x
    x = (canvas * (inp.pixel_range / 255.0) - np.array(inp.mean, np.float32)) / np.array(inp.std, np.float32)
    x = x[np.newaxis].astype(np.float32)
    if inp.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outs = dict(zip(names, session.run(None, {inp.name: np.ascontiguousarray(x)}), strict=True))
    return outs, (half_pad_h, half_pad_w)


def reference_segment(
    spec: ModelSpec, frame: np.ndarray, camera_order: str = "RGB", output_resolution: str = "input"
) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, confidence uint8) for one (H, W, 3) uint8 frame: argmax at head resolution, then
    the letterbox crop and a nearest upsampling of the labels (what the fused graph promises)."""
    inp = spec.input
    cam_h, cam_w = frame.shape[:2]
    outs, (half_pad_h, half_pad_w) = model_outputs(spec, frame, camera_order)

    merged = conf = None
    for k, head in enumerate(spec.heads):
        y = outs[head.name][0]
        if head.kind == "labels":
            local = y.reshape(y.shape[-2:]).astype(np.int64)
            c = np.ones(local.shape, np.float32)
        else:
            axis = (head.channel_axis % 4) - 1  # batch removed
            local = y.argmax(axis=axis)
            p = _softmax(y, axis) if head.kind == "logits" else y
            c = p.max(axis=axis)
        table = np.array([i if i is not None else 0 for i in head.class_ids])
        ids = table[local]
        if k == 0:
            merged, conf = ids, c
        else:
            paint = np.array([i is not None for i in head.class_ids])[local]
            merged = np.where(paint, ids, merged)
            conf = np.where(paint, c, conf)
    assert merged is not None and conf is not None
    t, b, lft, r = crop_box(*merged.shape, inp.height, inp.width, half_pad_h, half_pad_w)
    merged, conf = merged[t:b, lft:r].astype(np.uint8), conf[t:b, lft:r].astype(np.float32)
    if output_resolution == "input":
        merged, conf = _nearest(merged, cam_h, cam_w), _nearest(conf, cam_h, cam_w)
    return merged, np.clip(np.floor(conf * 255 + 0.5), 0, 255).astype(np.uint8)


def zoo_reference_labels(spec: ModelSpec, frame: np.ndarray, camera_order: str = "RGB") -> np.ndarray:
    """Labels the way mmsegmentation / Hugging Face / Ultralytics post-process a single logits head:
    crop the letterbox, upsample the *logits* bilinearly (half-pixel centres) to the camera, then argmax."""
    (head,) = spec.heads
    outs, (half_pad_h, half_pad_w) = model_outputs(spec, frame, camera_order)
    y = np.moveaxis(outs[head.name][0], (head.channel_axis % 4) - 1, -1).astype(np.float32)  # (h, w, classes)
    t, b, lft, r = crop_box(y.shape[0], y.shape[1], spec.input.height, spec.input.width, half_pad_h, half_pad_w)
    y = np.ascontiguousarray(y[t:b, lft:r])
    cam_h, cam_w = frame.shape[:2]
    planes = [cv2.resize(y[..., c], (cam_w, cam_h), interpolation=cv2.INTER_LINEAR) for c in range(y.shape[-1])]
    local = np.argmax(np.stack(planes, axis=-1), axis=-1)
    table = np.array([i if i is not None else 0 for i in head.class_ids])
    return table[local].astype(np.uint8)

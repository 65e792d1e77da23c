"""A plain numpy/OpenCV implementation of what a model spec means, written independently of the
graph compiler, so the fused graph can be checked against it pixel by pixel."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from seg_perception.core.model_spec import ModelSpec


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = np.floor(np.arange(height) * (img.shape[0] / height)).astype(int)
    cols = np.floor(np.arange(width) * (img.shape[1] / width)).astype(int)
    return img[rows][:, cols]


def reference_segment(
    spec: ModelSpec, frame: np.ndarray, camera_order: str = "RGB", output_resolution: str = "input"
) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, confidence uint8) for one (H, W, 3) uint8 frame."""
    inp = spec.input
    cam_h, cam_w = frame.shape[:2]
    x = frame.astype(np.float32)
    if inp.resize == "letterbox":
        s = min(inp.width / cam_w, inp.height / cam_h)
        rw, rh = min(inp.width, round(cam_w * s)), min(inp.height, round(cam_h * s))
    else:
        rw, rh = inp.width, inp.height
    if (rh, rw) != (cam_h, cam_w):
        x = cv2.resize(x, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if camera_order != inp.channel_order:
        x = x[..., ::-1]
    top, left = (inp.height - rh) // 2, (inp.width - rw) // 2
    canvas = np.full((inp.height, inp.width, 3), float(inp.pad_value), np.float32)
    canvas[top : top + rh, left : left + rw] = x
    x = (canvas * (inp.pixel_range / 255.0) - np.array(inp.mean, np.float32)) / np.array(inp.std, np.float32)
    x = x[np.newaxis].astype(np.float32)
    if inp.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outs = dict(zip(names, session.run(None, {inp.name: np.ascontiguousarray(x)}), strict=True))

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
    hh, hw = merged.shape
    sy, sx = hh / inp.height, hw / inp.width
    t, lft = round(top * sy), round(left * sx)
    oh, ow = max(1, round(rh * sy)), max(1, round(rw * sx))
    merged, conf = merged[t : t + oh, lft : lft + ow], conf[t : t + oh, lft : lft + ow]
    if output_resolution == "input":
        merged, conf = _nearest(merged, cam_h, cam_w), _nearest(conf, cam_h, cam_w)
    return merged.astype(np.uint8), np.clip(np.floor(conf * 255 + 0.5), 0, 255).astype(np.uint8)

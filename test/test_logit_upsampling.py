"""Low-resolution heads: logits resized bilinearly before the argmax (as Hugging Face's
post_process_semantic_segmentation and mmsegmentation do), or the cheap argmax-then-nearest path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import TINY_CLASSES, conv_logits_model, model_input, smooth_image, spec_dict, write_spec

from seg_perception.core.model_spec import ModelSpec
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter

CAMERA_H, CAMERA_W = 90, 160
STRIDE = 4  # a 1/4-resolution head, as SegFormer's


def _spec(directory: Path, **upsampling: Any) -> ModelSpec:
    conv_logits_model(directory / "coarse.onnx", len(TINY_CLASSES), 48, 64, stride=STRIDE)
    d = spec_dict("coarse.onnx", TINY_CLASSES)
    if upsampling:
        d["upsampling"] = upsampling
    return load_model_spec(write_spec(directory / f"coarse_{len(upsampling)}.yaml", d))


def bilinear(x: np.ndarray, height: int, width: int, align_corners: bool) -> np.ndarray:
    """[C, h, w] -> [C, height, width] as torch.nn.functional.interpolate(mode='bilinear')."""

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if align_corners:
            src = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), (src - lo).astype(np.float32)

    y0, y1, wy = taps(x.shape[1], height)
    x0, x1, wx = taps(x.shape[2], width)
    rows = x[:, y0] * (1 - wy)[None, :, None] + x[:, y1] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


def head_logits(spec: ModelSpec, frame: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    x = model_input(frame, spec.input.width, spec.input.height, spec.input.mean, spec.input.std)
    return session.run(None, {spec.input.name: x})[0][0]


@pytest.mark.parametrize("align_corners", [False, True])
def test_logits_bilinear_matches_the_reference_post_processing(tmp_path: Path, align_corners: bool) -> None:
    spec = _spec(tmp_path, method="logits_bilinear", align_corners=align_corners)
    with Segmenter(spec, backend="onnxruntime") as seg:
        for seed in range(3):
            frame = smooth_image(CAMERA_H, CAMERA_W, seed=seed)
            expected = bilinear(head_logits(spec, frame), CAMERA_H, CAMERA_W, align_corners).argmax(0)
            r = seg.segment(frame, "RGB", OutputSelection(confidence=True))
            agreement = float(np.mean(r.labels == expected))
            assert agreement >= 0.999, f"seed {seed}: {agreement:.4%}"
            assert r.confidence is not None and r.confidence.shape == (CAMERA_H, CAMERA_W)


def test_cheap_path_is_argmax_at_head_resolution_then_nearest(tmp_path: Path) -> None:
    cheap, smooth = _spec(tmp_path), _spec(tmp_path, method="logits_bilinear")
    assert cheap.upsampling.method == "labels_nearest"
    frame = smooth_image(CAMERA_H, CAMERA_W, seed=5)
    logits = head_logits(cheap, frame)
    nearest = cv2.resize(logits.argmax(0).astype(np.uint8), (CAMERA_W, CAMERA_H), interpolation=cv2.INTER_NEAREST)
    with Segmenter(cheap, backend="onnxruntime") as a, Segmenter(smooth, backend="onnxruntime") as b:
        blocky, fine = a.segment(frame).labels, b.segment(frame).labels
    assert np.array_equal(blocky, nearest)
    reference = bilinear(logits, CAMERA_H, CAMERA_W, False).argmax(0)
    # The option matters on a 1/4-resolution head: the cheap path misses the reference at boundaries.
    assert np.mean(blocky != reference) > 0.01 > np.mean(fine != reference)


@pytest.mark.parametrize("align_corners", [False, True])
def test_letterbox_follows_mmsegmentation_resize_crop_resize(tmp_path: Path, align_corners: bool) -> None:
    """mmsegmentation's decode head resizes the logits to the padded input size, the segmentor crops the
    padding and resizes to the original size; both resizes honour the head's align_corners."""
    conv_logits_model(tmp_path / "coarse.onnx", len(TINY_CLASSES), 48, 64, stride=STRIDE)
    d = spec_dict("coarse.onnx", TINY_CLASSES, resize="letterbox", pad_value=0)
    d["upsampling"] = {"method": "logits_bilinear", "align_corners": align_corners}
    spec = load_model_spec(write_spec(tmp_path / "lb.yaml", d))
    camera_h, camera_w = 120, 120  # square into 64x48: 48x48 centred, 8 columns of padding each side
    frame = smooth_image(camera_h, camera_w, seed=2)
    x = cv2.resize(frame.astype(np.float32), (48, 48), interpolation=cv2.INTER_LINEAR)
    padded = np.zeros((48, 64, 3), np.float32)
    padded[:, 8:56] = x
    net_in = ((padded / 255.0 - np.asarray(spec.input.mean)) / np.asarray(spec.input.std)).astype(np.float32)
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": net_in.transpose(2, 0, 1)[np.newaxis].copy()})[0][0]
    at_input = bilinear(logits, 48, 64, align_corners)[:, :, 8:56]  # mmseg: to the input size, crop the padding,
    expected = bilinear(at_input, camera_h, camera_w, align_corners).argmax(0)  # then to the original size
    with Segmenter(spec, backend="onnxruntime") as seg:
        got = seg.segment(frame).labels
    agreement = float(np.mean(got == expected))
    assert agreement >= 0.999, f"{agreement:.4%} of pixels agree with the reference"


def test_model_resolution_output_is_the_frame_inside_the_model_input(tmp_path: Path) -> None:
    spec = _spec(tmp_path, method="logits_bilinear")
    frame = smooth_image(CAMERA_H, CAMERA_W, seed=8)
    with Segmenter(spec, backend="onnxruntime", output_resolution="model") as seg:
        labels = seg.segment(frame).labels
    assert labels.shape == (48, 64)
    expected = bilinear(head_logits(spec, frame), 48, 64, False).argmax(0)
    assert float(np.mean(labels == expected)) >= 0.999

"""Segmenter outputs derived from labels: drivable mask, colour mask, overlay, confidence, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import conv_logits_model, smooth_image, spec_dict, write_spec

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import ALL_OUTPUTS, OutputSelection, Segmenter

CLASSES = ["road", "sidewalk", "building", "car"]


@pytest.fixture
def segmenter(tmp_path: Path) -> Segmenter:
    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 48, 64)
    d = spec_dict("m.onnx", CLASSES)
    d["classes"][1]["drivable"] = True  # road and sidewalk drivable here
    return Segmenter(load_model_spec(write_spec(tmp_path / "m.yaml", d)), backend="onnxruntime", overlay_alpha=0.25)


def test_masks_follow_the_labels(segmenter: Segmenter) -> None:
    frame = smooth_image(90, 160, seed=1)
    r = segmenter.segment(frame, "RGB", ALL_OUTPUTS)
    assert r.drivable is not None and r.color_mask is not None and r.overlay is not None
    assert r.confidence is not None and r.confidence.dtype == np.uint8
    assert len(np.unique(r.labels)) >= 3
    assert np.array_equal(r.drivable, np.where(np.isin(r.labels, [0, 1]), 255, 0).astype(np.uint8))
    for k, cls in enumerate(segmenter.spec.classes):
        assert (r.color_mask[r.labels == k] == cls.color).all()
    blend = 0.75 * frame.astype(float) + 0.25 * r.color_mask.astype(float)
    assert np.abs(r.overlay.astype(float) - blend).max() <= 1.0
    assert set(r.timings_ms) == {"prepare", "inference", "postprocess", "total"}


def test_bgr_frames_give_an_rgb_overlay(segmenter: Segmenter) -> None:
    frame = smooth_image(90, 160, seed=2)
    rgb = segmenter.segment(frame, "RGB", ALL_OUTPUTS)
    rgb_overlay, rgb_labels = rgb.overlay.copy(), rgb.labels.copy()  # type: ignore[union-attr]
    bgr = segmenter.segment(np.ascontiguousarray(frame[..., ::-1]), "BGR", ALL_OUTPUTS)
    assert np.array_equal(bgr.labels, rgb_labels)
    assert np.array_equal(bgr.overlay, rgb_overlay)


def test_only_requested_outputs_are_computed(segmenter: Segmenter) -> None:
    r = segmenter.segment(smooth_image(90, 160, seed=3), "RGB", OutputSelection(drivable=False))
    assert r.drivable is None and r.color_mask is None and r.overlay is None and r.confidence is None


def test_batch_equals_single_frames(segmenter: Segmenter) -> None:
    frames = [smooth_image(90, 160, seed=s) for s in range(3)]
    # Results live in reused buffers (callers copy what they keep), so copy each one at once.
    single_labels = [segmenter.segment(f, "RGB", ALL_OUTPUTS).labels.copy() for f in frames]
    assert not np.array_equal(single_labels[0], single_labels[1])
    batch = segmenter.segment_batch(frames, "RGB", [ALL_OUTPUTS] * 3)
    for got, want in zip(batch, single_labels, strict=True):
        assert np.array_equal(got.labels, want)
    with pytest.raises(SegPerceptionError, match="same-sized"):
        segmenter.segment_batch([frames[0], smooth_image(50, 60, seed=9)])


def test_buffers_stay_bounded_when_the_frame_size_keeps_changing(segmenter: Segmenter) -> None:
    from seg_perception.pipeline import MAX_BUFFER_SETS

    for width in range(40, 40 + 2 * MAX_BUFFER_SETS):
        segmenter.segment(smooth_image(30, width, seed=width), "RGB", ALL_OUTPUTS)
    assert len(segmenter._buffers) <= MAX_BUFFER_SETS


@pytest.mark.parametrize(
    "drivable",
    [(0, 1), (2,), (1, 2, 3), (0, 2), (0, 1, 3), ()],
    ids=["first-two", "one-in-the-middle", "last-three", "gap", "run-and-one", "none"],
)
def test_drivable_mask_is_the_table_lookup_whichever_ids_are_drivable(
    tmp_path: Path, drivable: tuple[int, ...]
) -> None:
    """A contiguous run of drivable ids takes cv2.inRange, any other set the lookup table: both must give
    exactly 255 on drivable labels and 0 elsewhere."""
    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 48, 64)
    d = spec_dict("m.onnx", CLASSES)
    for i, cls in enumerate(d["classes"]):
        cls["drivable"] = i in drivable
    seg = Segmenter(load_model_spec(write_spec(tmp_path / "m.yaml", d)), backend="onnxruntime")
    r = seg.segment(smooth_image(90, 160, seed=4), "RGB", OutputSelection(drivable=True))
    assert r.drivable is not None and r.drivable.dtype == np.uint8 and r.drivable.shape == r.labels.shape
    assert len(np.unique(r.labels)) == len(CLASSES)  # every class occurs, so every id is checked
    assert np.array_equal(r.drivable, np.where(np.isin(r.labels, drivable), 255, 0).astype(np.uint8))

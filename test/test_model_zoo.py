"""The model zoo: each family's committed export, run through its spec, gives the labels its library's own
post-processing gave on the committed frames (references written by models/zoo/export_zoo.py, dev-only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.core.model_spec import ModelSpec, UpsamplingSpec
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter

ZOO = Path(__file__).resolve().parent.parent / "models" / "zoo"
FAMILIES = sorted(p.parent.name for p in ZOO.glob("*/spec.yaml"))
MIN_AGREEMENT = 0.995


def _frames() -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1].copy() for p in sorted((ZOO / "frames").glob("*.png"))]


def _agreement(spec: ModelSpec, key: str = "labels", mask: str | None = None) -> list[float]:
    """Per frame, the share of pixels where our output equals the reference's `key` array."""
    reference = np.load(ZOO / spec.onnx_path.parent.name / "reference.npz")[key]
    scores = []
    with Segmenter(spec, backend="onnxruntime") as seg:
        for frame, expected in zip(_frames(), reference, strict=True):
            r = seg.segment(frame, "RGB", OutputSelection(drivable=True, masks=True))
            got = r.labels if mask is None else (r.masks[mask] == 255).astype(np.uint8)
            assert got.shape == expected.shape
            scores.append(float(np.mean(got == expected)))
    return scores


def test_the_zoo_has_every_family_the_readme_lists() -> None:
    assert FAMILIES == [
        "dict_outputs",
        "labels_int64",
        "multitask_drivable_lane",
        "probabilities_nhwc",
        "segformer",
        "unet_imagenet",
    ]
    assert len(_frames()) == 3


@pytest.mark.parametrize("family", FAMILIES)
def test_zoo_family_agrees_with_its_library_reference(family: str) -> None:
    scores = _agreement(load_model_spec(ZOO / family / "spec.yaml"))
    assert min(scores) >= MIN_AGREEMENT, f"{family}: per-frame agreement {scores}"


def test_multitask_masks_are_each_heads_own_argmax() -> None:
    spec = load_model_spec(ZOO / "multitask_drivable_lane" / "spec.yaml")
    for head in ("drivable", "lane"):
        scores = _agreement(spec, head, mask=head)
        assert min(scores) >= 0.999, f"{head} mask agreement {scores}"


def test_segformer_needs_logit_upsampling_to_match_hugging_face() -> None:
    spec = load_model_spec(ZOO / "segformer" / "spec.yaml")
    assert spec.upsampling.method == "logits_bilinear"
    cheap = _agreement(dataclasses.replace(spec, upsampling=UpsamplingSpec("labels_nearest")))
    assert max(cheap) < MIN_AGREEMENT  # argmax at 1/4 resolution + nearest is blocky against the reference


def test_static_and_dynamic_batch_exports_are_both_in_the_zoo() -> None:
    modes = {}
    for family in FAMILIES:
        with Segmenter(load_model_spec(ZOO / family / "spec.yaml"), backend="onnxruntime") as seg:
            modes[family] = seg.batch_mode
    assert modes["unet_imagenet"] == modes["multitask_drivable_lane"] == "fixed 1"
    assert modes["segformer"] == modes["labels_int64"] == "dynamic"

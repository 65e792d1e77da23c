"""The model zoo: each family's committed export, run through its spec, gives the labels its library's own
post-processing gave on the committed frames (references written by models/zoo/export_zoo.py and, for the
families exported by smp, torchvision and transformers themselves with each library's default inference
path, models/zoo/export_library_zoo.py; both dev-only, no PyTorch here)."""

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
LIBRARY_FAMILIES = [  # exported by the library itself, reference = that library's default inference path
    "hf_segformer",
    "hf_upernet",
    "smp_deeplabv3plus",
    "smp_unet_resnet18",
    "tv_deeplabv3_mobilenet_v3",
    "tv_lraspp_mobilenet_v3",
]
LIBRARY_MIN_AGREEMENT = 0.999  # every library family, the torchvision ones included (antialias_uint8)


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
    assert (
        sorted(
            [
                "dict_outputs",
                "labels_int64",
                "multitask_drivable_lane",
                "probabilities_nhwc",
                "segformer",
                "unet_imagenet",
                *LIBRARY_FAMILIES,
            ]
        )
        == FAMILIES
    )
    assert len(_frames()) == 3


@pytest.mark.parametrize("family", FAMILIES)
def test_zoo_family_agrees_with_its_library_reference(family: str) -> None:
    scores = _agreement(load_model_spec(ZOO / family / "spec.yaml"))
    floor = LIBRARY_MIN_AGREEMENT if family in LIBRARY_FAMILIES else MIN_AGREEMENT
    assert min(scores) >= floor, f"{family}: per-frame agreement {scores}"


@pytest.mark.parametrize(
    ("family", "interpolation"),
    [("hf_segformer", "pil_bilinear"), ("hf_upernet", "pil_bilinear"), ("tv_lraspp_mobilenet_v3", "antialias_uint8")],
)
def test_library_default_resize_is_what_the_spec_must_name(family: str, interpolation: str) -> None:
    """The library's default resize matters: the plain float bilinear of the README's first spec misses it."""
    spec = load_model_spec(ZOO / family / "spec.yaml")
    assert spec.input.interpolation == interpolation
    plain = _agreement(dataclasses.replace(spec, input=dataclasses.replace(spec.input, interpolation="bilinear")))
    assert max(plain) < min(_agreement(spec)) - 0.005, f"{family}: float bilinear agrees {plain}"


def test_library_exports_keep_their_shapes() -> None:
    """smp nets run at the camera's own size; torchvision's keep-ratio 520 and its dict {out, aux} survive."""
    tv = load_model_spec(ZOO / "tv_deeplabv3_mobilenet_v3" / "spec.yaml")
    assert (tv.input.resize, tv.input.shorter_side, tv.heads[0].name) == ("shorter_side", 520, "out")
    for family in ("smp_unet_resnet18", "smp_deeplabv3plus"):
        assert load_model_spec(ZOO / family / "spec.yaml").input.resize == "native"
    exporters = {f: str(np.load(ZOO / f / "reference.npz")["exporter"]) for f in LIBRARY_FAMILIES}
    for family, library in (("hf", "transformers"), ("smp", "segmentation_models_pytorch"), ("tv", "torchvision")):
        assert all(library in e for f, e in exporters.items() if f.startswith(family)), exporters


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


def test_torchvision_presets_run_the_float_kernel_not_the_uint8_one() -> None:
    """weights.transforms() resizes a uint8 tensor with transforms v1: float kernel, one rounding
    (antialias_uint8), not PyTorch's uint8 fixed-point kernel that transforms.v2 runs (antialias_uint8_fixed_point)."""
    spec = load_model_spec(ZOO / "tv_lraspp_mobilenet_v3" / "spec.yaml")
    uint8 = _agreement(
        dataclasses.replace(spec, input=dataclasses.replace(spec.input, interpolation="antialias_uint8_fixed_point"))
    )
    assert max(uint8) < min(_agreement(spec)) - 0.005, f"the uint8 kernel agrees {uint8}"

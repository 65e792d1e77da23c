"""Where a camera frame lands in the model input (core/graph_preprocess: stretch, letterbox, shorter side,
native with a stride), where it lands in a coarser head's output, and the scale/offset pair that normalises
it: exact numbers worked out by hand, with the rounding boundaries on both sides."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from seg_perception.core.graph_preprocess import (
    Geometry,
    input_geometry,
    letterbox_crop,
    normalization_coefficients,
    shorter_side_size,
)
from seg_perception.core.model_spec import InputSpec, ModelSpec

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _spec(width: int = 64, height: int = 48, **fields: Any) -> ModelSpec:
    """geometry reads only spec.input: a real InputSpec inside a stand-in spec."""
    inp = InputSpec("input", "NCHW", width, height, "RGB", 1.0, MEAN, STD, **fields)
    return cast(ModelSpec, SimpleNamespace(input=inp))


def test_shorter_side_truncates_the_longer_side_as_torchvision_does() -> None:
    assert shorter_side_size(1280, 720, 520) == (924, 520)  # 924.44
    assert shorter_side_size(720, 1280, 520) == (520, 924)
    assert shorter_side_size(300, 200, 100) == (150, 100)  # exact
    assert shorter_side_size(299, 200, 100) == (149, 100)  # 149.5: truncated, not rounded
    assert shorter_side_size(200, 299, 100) == (100, 149)
    assert shorter_side_size(200, 201, 100) == (100, 100)  # 100.5
    assert shorter_side_size(201, 200, 100) == (100, 100)
    assert shorter_side_size(64, 64, 32) == (32, 32)


def test_stretch_fills_the_model_input() -> None:
    assert input_geometry(_spec(), 1280, 720) == Geometry(1280, 720, 64, 48, 0, 0, 64, 48, centred=True)


def test_letterbox_scales_by_the_tighter_side_and_centres_with_the_smaller_half_first() -> None:
    spec = _spec(640, 640, resize="letterbox")
    assert input_geometry(spec, 1280, 720) == Geometry(1280, 720, 640, 360, 0, 140, 640, 640)
    assert input_geometry(spec, 720, 1280) == Geometry(720, 1280, 360, 640, 140, 0, 640, 640)
    spec = _spec(64, 48, resize="letterbox")
    assert input_geometry(spec, 64, 43) == Geometry(64, 43, 64, 43, 0, 2, 64, 48)  # pad 5: 2 above, 3 below
    assert input_geometry(spec, 59, 48) == Geometry(59, 48, 59, 48, 2, 0, 64, 48)  # pad 5: 2 left, 3 right
    assert input_geometry(spec, 60, 48) == Geometry(60, 48, 60, 48, 2, 0, 64, 48)  # pad 4: 2 and 2
    assert input_geometry(spec, 32, 24) == Geometry(32, 24, 64, 48, 0, 0, 64, 48)  # upscaled, no pad


def test_letterbox_rounds_the_scaled_size_to_nearest() -> None:
    spec = _spec(100, 100, resize="letterbox")
    assert input_geometry(spec, 200, 101).resized_height == 50  # 50.5 -> round half to even: 50
    assert input_geometry(spec, 200, 103).resized_height == 52  # 51.5 -> 52
    assert input_geometry(spec, 300, 137).resized_height == 46  # 45.67 -> 46, not truncated to 45
    assert input_geometry(spec, 300, 136).resized_height == 45  # 45.33 -> 45


def test_a_sliver_of_a_camera_keeps_one_row_or_column() -> None:
    spec = _spec(64, 48, resize="letterbox")
    geo = input_geometry(spec, 10000, 2)
    assert (geo.resized_width, geo.resized_height, geo.pad_left, geo.pad_top) == (64, 1, 0, 23)  # 0.0128 -> 1
    geo = input_geometry(spec, 1, 10000)
    assert (geo.resized_width, geo.resized_height, geo.pad_left, geo.pad_top) == (1, 48, 31, 0)
    geo = input_geometry(spec, 1000, 15)  # 0.96: rounds to 1 by itself
    assert (geo.resized_width, geo.resized_height) == (64, 1)
    geo = input_geometry(spec, 1000, 24)  # 1.536: 2
    assert (geo.resized_width, geo.resized_height) == (64, 2)


def test_native_pads_bottom_right_to_the_stride() -> None:
    spec = _spec(resize="native", pad_to_multiple=8)
    assert input_geometry(spec, 100, 60) == Geometry(100, 60, 100, 60, 0, 0, 104, 64, centred=False)
    assert input_geometry(spec, 104, 64) == Geometry(104, 64, 104, 64, 0, 0, 104, 64, centred=False)  # exact
    assert input_geometry(spec, 105, 57) == Geometry(105, 57, 105, 57, 0, 0, 112, 64, centred=False)
    spec = _spec(resize="native")  # pad_to_multiple 1: nothing padded
    assert input_geometry(spec, 99, 61) == Geometry(99, 61, 99, 61, 0, 0, 99, 61, centred=False)


def test_shorter_side_resizes_then_pads_to_the_stride() -> None:
    spec = _spec(resize="shorter_side", shorter_side=520, pad_to_multiple=32)
    assert input_geometry(spec, 1280, 720) == Geometry(1280, 720, 924, 520, 0, 0, 928, 544, centred=False)
    spec = _spec(resize="shorter_side", shorter_side=512)
    assert input_geometry(spec, 1920, 1080) == Geometry(1920, 1080, 910, 512, 0, 0, 910, 512, centred=False)


def test_a_centred_crop_takes_half_the_padding_scaled_to_the_head_and_truncated() -> None:
    geo = Geometry(1280, 720, 640, 360, 0, 140, 640, 640)
    assert letterbox_crop(geo, 640, 640) == (140, 0, 360, 640)
    assert letterbox_crop(geo, 160, 160) == (35, 0, 90, 160)  # exact quarter
    assert letterbox_crop(geo, 80, 80) == (17, 0, 45, 80)  # 17.5 above: top 17, int(80 - 17.5) - 17 = 45
    assert letterbox_crop(geo, 81, 81) == (17, 0, 46, 81)  # 17.72 above: 17; int(81 - 17.72) - 17 = 46
    geo = Geometry(720, 1280, 360, 640, 140, 0, 640, 640)
    assert letterbox_crop(geo, 80, 80) == (0, 17, 80, 45)
    geo = Geometry(64, 43, 64, 43, 0, 2, 64, 48)  # an odd pad: 2.5 rows per side in input pixels
    assert letterbox_crop(geo, 48, 64) == (2, 0, 43, 64)  # int(48 - 2.5) - 2 = 43
    assert letterbox_crop(geo, 24, 32) == (1, 0, 21, 32)  # 1.25 above: 1; int(22.75) - 1 = 21


def test_a_centred_crop_keeps_at_least_one_cell() -> None:
    geo = Geometry(10000, 2, 64, 1, 0, 23, 64, 48)
    assert letterbox_crop(geo, 6, 8) == (2, 0, 1, 8)  # 2.9375 above and below: int(3.0625) - 2 = 1
    assert letterbox_crop(geo, 3, 4) == (1, 0, 1, 4)  # 1.46875 each side: int(1.53125) - 1 = 0 -> 1
    geo = Geometry(2, 10000, 1, 48, 31, 0, 64, 48)
    assert letterbox_crop(geo, 3, 4) == (0, 1, 3, 1)  # 1.96875 each side: int(2.03125) - 1 = 1
    assert letterbox_crop(geo, 3, 2) == (0, 0, 3, 1)  # 0.984 each side: int(1.016) - 0 = 1


def test_a_bottom_right_padded_crop_keeps_every_head_cell_the_frame_reaches() -> None:
    geo = Geometry(100, 60, 100, 60, 0, 0, 104, 64, centred=False)
    assert letterbox_crop(geo, 8, 13) == (0, 0, 8, 13)  # 7.5 and 12.5 cells: rounded up
    assert letterbox_crop(geo, 64, 104) == (0, 0, 60, 100)  # at input resolution: exactly the frame
    assert letterbox_crop(geo, 16, 26) == (0, 0, 15, 25)  # exactly 15 and 25: not one more
    geo = Geometry(1, 1, 1, 1, 0, 0, 64, 64, centred=False)
    assert letterbox_crop(geo, 2, 2) == (0, 0, 1, 1)  # 1/32 of a cell: one cell


@pytest.mark.parametrize("pixel_range", [1.0, 255.0, 2.0])
def test_normalisation_is_pixel_times_a_plus_b(pixel_range: float) -> None:
    inp = InputSpec("input", "NCHW", 64, 48, "RGB", pixel_range, MEAN, STD)
    a, b = normalization_coefficients(cast(ModelSpec, SimpleNamespace(input=inp)))
    assert a.dtype == np.float32 and b.dtype == np.float32
    assert a.shape == (3,) and b.shape == (3,)
    mean, std = np.asarray(MEAN), np.asarray(STD)
    np.testing.assert_allclose(a, pixel_range / 255.0 / std, rtol=1e-7)
    np.testing.assert_allclose(b, -mean / std, rtol=1e-7)
    for pixel in (0.0, 51.0, 255.0):
        np.testing.assert_allclose(pixel * a + b, (pixel / 255.0 * pixel_range - mean) / std, rtol=1e-6, atol=1e-6)

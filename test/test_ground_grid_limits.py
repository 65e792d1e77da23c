"""The ground grid at its limits: which layouts and intrinsics are refused (word for word), the range and
depth cut-offs exactly at their boundary, the top image row, the int8 tables, and no numpy warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.ground_grid import (
    FREE,
    OCCUPIED,
    UNSEEN,
    GridSpec,
    GroundProjector,
    MountPose,
    fuse,
    occupancy_table,
)

K = np.array([[100.0, 0, 50.0], [0, 100.0, 40.0], [0, 0, 1]])
W, H = 100, 80


def _seen(k: np.ndarray, pose: MountPose, grid: GridSpec) -> np.ndarray:
    """The grid of an all-drivable image: FREE where a pixel sees the cell, UNSEEN elsewhere."""
    return GroundProjector(k, pose, grid, W, H).project(np.ones((H, W), np.uint8), occupancy_table([1], 2))


@pytest.mark.parametrize(
    "bad",
    [
        {"resolution": 0.0},
        {"resolution": -0.1},
        {"width": 0},
        {"height": 0},
        {"max_range": 0.0},
    ],
)
def test_each_bad_layout_value_alone_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(SegPerceptionError) as err:
        GridSpec(**bad)  # type: ignore[arg-type]
    assert str(err.value) == (
        f"invalid grid GridSpec(resolution={bad.get('resolution', 0.2)}, width={bad.get('width', 200)}, "
        f"height={bad.get('height', 200)}, origin_x=0.0, origin_y=-20.0, max_range={bad.get('max_range', 40.0)}): "
        "resolution, sizes and range must be positive"
    )


def test_small_positive_layouts_are_fine() -> None:
    grid = GridSpec(resolution=0.01, width=1, height=1, max_range=0.5)
    assert (grid.resolution, grid.width, grid.height, grid.max_range) == (0.01, 1, 1, 0.5)


@pytest.mark.parametrize(("fx", "fy"), [(0, 100), (100, 0), (-5, 100), (100, -5)])
def test_intrinsics_without_a_focal_length_are_refused(fx: int, fy: int) -> None:
    k = [[fx, 0, 50], [0, fy, 40], [0, 0, 1]]  # integers, as a YAML list may give them
    with pytest.raises(SegPerceptionError) as err:
        GroundProjector(np.array(k), MountPose(), GridSpec(), W, H)
    want = [float(v) for row in k for v in row]
    assert str(err.value) == f"camera intrinsics have no focal length: K = {want}"


def test_a_focal_length_below_one_pixel_and_a_zero_principal_point_are_fine() -> None:
    k = np.array([[0.5, 0, 0.0], [0, 0.5, 0.0], [0, 0, 1]])
    GroundProjector(k, MountPose(), GridSpec(), W, H)


def _one_cell(x: float, y: float, resolution: float, max_range: float) -> GridSpec:
    return GridSpec(resolution, 1, 1, x - resolution / 2, y - resolution / 2, max_range)


def test_max_range_is_the_horizontal_distance_and_includes_the_boundary() -> None:
    # A tall mast (5 m): the cell 10 m ahead is 10 m away on the ground but 11.2 m from the lens.
    pose = MountPose(z=5.0, pitch=np.arctan2(5.0, 10.0))
    assert _seen(K, pose, _one_cell(10.0, 0.0, 0.5, 10.0)).tolist() == [[FREE]]  # exactly at max_range
    assert _seen(K, pose, _one_cell(10.0, 0.0, 0.5, 9.99)).tolist() == [[UNSEEN]]


def test_a_cell_half_a_metre_ahead_of_a_low_camera_is_seen() -> None:
    pose = MountPose(z=0.1, pitch=np.arctan2(0.1, 0.5))
    assert _seen(K, pose, _one_cell(0.5, 0.0, 0.1, 40.0)).tolist() == [[FREE]]


def test_a_cell_at_most_a_millimetre_in_front_of_the_lens_is_unseen() -> None:
    # Cell centre 1 mm ahead (exactly: 0 + 0.5 * 0.002) of a lens 1 micrometre above the ground: it would
    # land at (cx, cy + 0.1) in the image, but depth <= 1 mm is treated as behind the camera.
    pose = MountPose(z=1e-6)
    grid = GridSpec(resolution=0.002, width=1, height=1, origin_x=0.0, origin_y=-0.001, max_range=1.0)
    assert _seen(K, pose, grid).tolist() == [[UNSEEN]]
    beyond = GridSpec(resolution=0.004, width=1, height=1, origin_x=0.0, origin_y=-0.002, max_range=1.0)
    assert _seen(K, pose, beyond).tolist() == [[FREE]]


def test_the_top_image_row_is_read_and_the_row_above_is_not() -> None:
    # Level camera 1 m up, cell 10 m ahead: row = floor(f * h / d + cy) = floor(10 + cy).
    grid = _one_cell(10.0, 0.0, 0.5, 40.0)
    labels = np.zeros((H, W), np.uint8)
    labels[0] = 1  # only the top row is drivable
    for cy, want in ((-9.5, FREE), (-10.5, UNSEEN), (-8.5, OCCUPIED)):
        k = np.array([[100.0, 0, 50.0], [0, 100.0, cy], [0, 0, 1]])
        proj = GroundProjector(k, MountPose(z=1.0), grid, W, H)
        assert proj.project(labels, occupancy_table([1], 2)).tolist() == [[want]], cy


def test_cells_level_with_the_lens_raise_no_numpy_warning() -> None:
    # The cells straight below and beside a level camera have depth 0: 0/0 and x/0, both unseen, silently.
    grid = GridSpec(resolution=1.0, width=3, height=3, origin_x=-1.5, origin_y=-1.5, max_range=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _seen(K, MountPose(z=1.0), grid).tolist() == [[UNSEEN] * 3] * 3


def test_project_checks_the_label_size_and_fills_the_given_grid() -> None:
    proj = GroundProjector(K, MountPose(), GridSpec(resolution=0.5, width=7, height=5), W, H)
    with pytest.raises(SegPerceptionError) as err:
        proj.project(np.zeros((30, 20), np.uint8), occupancy_table([1], 2))
    assert str(err.value) == "labels are 20x30, projector expects 100x80"
    out = np.full((5, 7), 42, np.int8)
    got = proj.project(np.zeros((H, W), np.uint8), occupancy_table([1], 2), out=out)
    assert got is out and set(np.unique(out).tolist()) <= {UNSEEN, OCCUPIED}
    fresh = proj.project(np.zeros((H, W), np.uint8), occupancy_table([1], 2))
    assert fresh.dtype == np.int8 and fresh.shape == (5, 7) and np.array_equal(fresh, out)


def test_the_occupancy_table_is_256_int8_entries() -> None:
    table = occupancy_table([0, 3], 5)
    assert table.dtype == np.int8 and table.shape == (256,)
    assert table.tolist() == [FREE, OCCUPIED, OCCUPIED, FREE, OCCUPIED] + [UNSEEN] * 251


def test_fusing_nothing_is_refused_in_words() -> None:
    with pytest.raises(SegPerceptionError) as err:
        fuse([])
    assert str(err.value) == "no grids to fuse"

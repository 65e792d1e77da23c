"""Ground projection: cells land on the right pixels, road edges land on the right cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ground_reference import body_axes_in_grid, reference_cell_pixels

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

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
W, H = 640, 480
ROAD, SIDEWALK = 0, 1
LUT = occupancy_table([ROAD], 2)


def render_flat_road(pose: MountPose, half_width: float, k: np.ndarray = K) -> np.ndarray:
    """Ray-cast every pixel onto z = 0 (independently of GroundProjector): road where |y| < half_width."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays_opt = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    body = np.stack([rays_opt[..., 2], -rays_opt[..., 0], -rays_opt[..., 1]], axis=-1)  # optical -> body
    rays = body @ body_axes_in_grid(pose.roll, pose.pitch, pose.yaw).T
    t = -pose.z / rays[..., 2]
    y = pose.y + t * rays[..., 1]
    labels = np.full((H, W), SIDEWALK, np.uint8)
    labels[(t > 0) & (np.abs(y) < half_width)] = ROAD
    return labels


def test_a_cell_lands_on_its_pixel() -> None:
    grid = GridSpec(resolution=1.0, width=30, height=21, origin_x=0.0, origin_y=-10.5, max_range=50)
    proj = GroundProjector(K, MountPose(z=1.5), grid, W, H)
    labels = np.full((H, W), SIDEWALK, np.uint8)
    # cell centre (x=10.5, y=0) -> optical (0, 1.5, 10.5) -> u = 320, v = 240 + 500 * 1.5 / 10.5
    labels[int(240 + 500 * 1.5 / 10.5), 320] = ROAD
    out = proj.project(labels, LUT)
    assert out[10, 10] == FREE
    assert (out == FREE).sum() == 1


@pytest.mark.parametrize(
    "pose",
    [
        MountPose(z=1.4, pitch=0.06),
        MountPose(x=1.2, y=0.3, z=1.6, pitch=0.1, yaw=0.05),
        MountPose(z=1.5, roll=0.02, pitch=0.04, yaw=-0.08),
    ],
)
def test_road_edges_within_one_cell_to_20m(pose: MountPose) -> None:
    half = 3.5
    grid = GridSpec(resolution=0.2, width=150, height=100, origin_x=0.0, origin_y=-10.0, max_range=30)
    out = GroundProjector(K, pose, grid, W, H).project(render_flat_road(pose, half), LUT)
    ys = grid.origin_y + (np.arange(grid.height) + 0.5) * grid.resolution
    checked = 0
    for col in range(grid.width):
        x = grid.origin_x + (col + 0.5) * grid.resolution
        near_road = np.abs(ys) <= half + 1.0
        column = out[near_road, col]
        if not 6.0 <= x <= 20.0 or (column == UNSEEN).any():
            continue
        free = ys[near_road][column == FREE]
        assert abs(free.min() - (-half)) <= grid.resolution + 1e-9
        assert abs(free.max() - half) <= grid.resolution + 1e-9
        checked += 1
    assert checked > 40


def test_unseen_behind_and_beyond_range() -> None:
    grid = GridSpec(resolution=0.5, width=120, height=40, origin_x=-20.0, origin_y=-10.0, max_range=25)
    out = GroundProjector(K, MountPose(z=1.5, pitch=0.05), grid, W, H).project(np.zeros((H, W), np.uint8), LUT)
    xs = grid.origin_x + (np.arange(grid.width) + 0.5) * grid.resolution
    assert (out[:, xs < 0] == UNSEEN).all()  # behind the camera
    assert (out[:, xs > 25.5] == UNSEEN).all()  # beyond max range
    assert (out == FREE).sum() > 100


def test_fuse_prefers_occupied_then_free() -> None:
    a = np.array([[UNSEEN, FREE, OCCUPIED, UNSEEN]], np.int8)
    b = np.array([[FREE, OCCUPIED, FREE, UNSEEN]], np.int8)
    assert fuse([a, b]).tolist() == [[FREE, OCCUPIED, OCCUPIED, UNSEEN]]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(SegPerceptionError, match="focal length"):
        GroundProjector(np.zeros((3, 3)), MountPose(), GridSpec(), W, H)
    with pytest.raises(SegPerceptionError, match="mount pose"):
        MountPose.from_list([1.0, 2.0])
    with pytest.raises(SegPerceptionError, match="projector expects"):
        GroundProjector(K, MountPose(), GridSpec(), W, H).project(np.zeros((10, 10), np.uint8), LUT)


# Principal point mid-pixel, so hand-derived pixels on the optical axis sit far from pixel edges.
K_MID = np.array([[500.0, 0, 320.5], [0, 500.0, 240.5], [0, 0, 1]])


def projector_cell_pixels(proj: GroundProjector) -> tuple[np.ndarray, np.ndarray]:
    """(col, row) of the pixel each cell reads, -1 where unseen, decoded through the public `project`.

    One projection per bit of the column and row index: pixels whose index has that bit set are
    labelled drivable, so each cell's FREE/OCCUPIED answer is that bit of the pixel it samples.
    """
    width, height = proj.image_size
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    lut = occupancy_table([1], 2)
    decoded = []
    for index, size in ((cols, width), (rows, height)):
        value = np.zeros((proj.grid.height, proj.grid.width), np.int64)
        seen = np.zeros(value.shape, bool)
        for bit in range(max(1, (size - 1).bit_length())):
            out = proj.project(((index >> bit) & 1).astype(np.uint8), lut)
            value |= (out == FREE).astype(np.int64) << bit
            seen = out != UNSEEN
        decoded.append(np.where(seen, value, -1))
    return decoded[0], decoded[1]


def _pixel_of_cell(k: np.ndarray, pose: list[float], x: float, y: float) -> tuple[int, int]:
    """The pixel GroundProjector reads for the ground point (x, y) (a 1-cell grid centred on it)."""
    grid = GridSpec(resolution=0.1, width=1, height=1, origin_x=x - 0.05, origin_y=y - 0.05, max_range=100)
    col, row = projector_cell_pixels(GroundProjector(k, MountPose.from_list(pose), grid, W, H))
    return int(col[0, 0]), int(row[0, 0])


F, CX, CY = 500.0, 320.5, 240.5


def test_level_camera_sees_a_point_d_ahead_at_row_cy_plus_f_h_over_d() -> None:
    h, d = 1.5, 10.5
    assert _pixel_of_cell(K_MID, [0, 0, h, 0, 0, 0], d, 0.0) == (int(CX), math.floor(CY + F * h / d))
    # 1 m to the left of the axis is f / d pixels to the left in the image
    assert _pixel_of_cell(K_MID, [0, 0, h, 0, 0, 0], d, 1.0) == (math.floor(CX - F / d), math.floor(CY + F * h / d))


def test_pitched_camera_row_follows_the_depression_angle() -> None:
    h, d, pitch = 1.4, 9.0, 0.05  # positive pitch looks down: the point rises towards the centre row
    want_row = math.floor(CY + F * math.tan(math.atan2(h, d) - pitch))
    assert _pixel_of_cell(K_MID, [0, 0, h, 0, pitch, 0], d, 0.0) == (int(CX), want_row)
    # pitched down by exactly the depression angle, the point sits on the principal point
    assert _pixel_of_cell(K_MID, [0, 0, h, 0, math.atan2(h, d), 0], d, 0.0) == (int(CX), int(CY))


def test_rolled_camera_moves_a_point_below_the_centre_to_the_right() -> None:
    # Positive roll (about x forward) lifts the camera's left side: the image turns clockwise, so a
    # point straight ahead on the ground (below the centre) moves right: u = cx + f h sin(r) / d.
    h, d, roll = 1.5, 10.5, 0.2
    want = (math.floor(CX + F * h * math.sin(roll) / d), math.floor(CY + F * h * math.cos(roll) / d))
    assert want[0] > CX + 10  # far enough to tell from the flipped sign
    assert _pixel_of_cell(K_MID, [0, 0, h, roll, 0, 0], d, 0.0) == want


def test_camera_yawed_90_degrees_looks_along_plus_y() -> None:
    h, d = 1.5, 10.5
    pose = [0, 0, h, 0, 0, math.pi / 2]
    assert _pixel_of_cell(K_MID, pose, 0.0, d) == (int(CX), math.floor(CY + F * h / d))
    assert _pixel_of_cell(K_MID, pose, d, 0.0) == (-1, -1)  # straight ahead of the car is beside the camera
    assert _pixel_of_cell(K_MID, pose, 0.0, -d) == (-1, -1)  # the right of the car is behind it
    # yawed by +30 degrees, a point ahead of the car lies to the camera's right: u > cx
    col, _ = _pixel_of_cell(K_MID, [0, 0, h, 0, 0, math.radians(30)], d, 0.0)
    assert col == math.floor(CX + F * math.tan(math.radians(30)))


def test_mount_offset_moves_the_camera_not_the_grid() -> None:
    h, d = 1.5, 8.0
    pose = [2.0, -1.0, h, 0, 0, 0]  # 2 m forward, 1 m to the right of the grid origin
    assert _pixel_of_cell(K_MID, pose, 2.0 + d, -1.0) == (int(CX), math.floor(CY + F * h / d))
    # the grid's own axis (y = 0) is 1 m to the camera's left
    assert _pixel_of_cell(K_MID, pose, 2.0 + d, 0.0) == (math.floor(CX - F / d), math.floor(CY + F * h / d))


@pytest.mark.parametrize(
    "pose",
    [
        [0.0, 0.0, 1.5, 0.0, 0.0, 0.0],
        [1.2, 0.3, 1.6, 0.0, 0.1, 0.05],
        [0.0, 0.0, 1.5, 0.02, 0.04, -0.08],
        [0.5, -0.4, 1.3, -0.1, 0.12, 0.3],
        [-0.8, 1.1, 2.0, 0.15, 0.2, -0.6],
        [0.0, 0.0, 1.8, 0.0, 0.1, math.pi / 2],
        [0.3, 0.0, 1.4, 0.05, 0.08, math.pi],
    ],
)
def test_every_cell_reads_the_pixel_opencv_projects_it_to(pose: list[float]) -> None:
    layout = (0.25, 120, 100, -15.0, -12.5, 25.0)
    grid = GridSpec(*layout)
    col, row = projector_cell_pixels(GroundProjector(K_MID, MountPose.from_list(pose), grid, W, H))
    want_col, want_row, ambiguous = reference_cell_pixels(K_MID, pose, layout, W, H)
    assert ambiguous.mean() < 0.01
    clear = ~ambiguous
    assert (want_col[clear] >= 0).sum() > 500, "the pose should see a good part of the grid"
    assert np.array_equal(col[clear], want_col[clear]), f"{(col[clear] != want_col[clear]).sum()} cells differ"
    assert np.array_equal(row[clear], want_row[clear])

"""Ground projection: cells land on the right pixels, road edges land on the right cells."""

from __future__ import annotations

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

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
W, H = 640, 480
ROAD, SIDEWALK = 0, 1
LUT = occupancy_table([ROAD], 2)


def render_flat_road(pose: MountPose, half_width: float, k: np.ndarray = K) -> np.ndarray:
    """Ray-cast every pixel onto z = 0 (independently of GroundProjector): road where |y| < half_width."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays_opt = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    body = np.stack([rays_opt[..., 2], -rays_opt[..., 0], -rays_opt[..., 1]], axis=-1)  # optical -> body
    rays = body @ pose.rotation().T
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

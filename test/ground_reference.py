"""Where a ground point lands in the image, computed without seg_perception's pose code.

The camera pose follows REP 103 (x forward, y left, z up; roll, pitch, yaw about the *fixed* x, y
and z axes, applied in that order). The rotation is composed from three axis-angle rotations by
OpenCV's Rodrigues formula, the optical frame (x right, y down, z forward) is read off the rotated
body axes, and the pinhole projection is OpenCV's `cv2.projectPoints`. Nothing here imports
`seg_perception.core.ground_grid`, so a sign or axis error there cannot cancel out in a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# A reference coordinate this close to a pixel edge may floor either way in a different float path.
EDGE_EPS = 1e-6


def body_axes_in_grid(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 whose columns are the camera body's forward, left and up axes in the grid frame."""
    rot = np.eye(3)
    for axis, angle in ((0, roll), (1, pitch), (2, yaw)):  # fixed axes: each new turn multiplies from the left
        rvec = np.zeros(3)
        rvec[axis] = angle
        rot = cv2.Rodrigues(rvec)[0] @ rot
    return rot


def project_ground_points(
    k: np.ndarray, pose_xyz_rpy: Sequence[float], xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, depth) of ground points (xs, ys, 0) for a camera at pose [x, y, z, roll, pitch, yaw]."""
    x, y, z, roll, pitch, yaw = (float(p) for p in pose_xyz_rpy)
    forward, left, up = body_axes_in_grid(roll, pitch, yaw).T
    world_to_optical = np.stack([-left, -up, forward])  # rows: optical x (right), y (down), z (forward)
    centre = np.array([x, y, z])
    points = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], axis=-1).astype(np.float64)
    depth = (points - centre) @ forward
    rvec = cv2.Rodrigues(world_to_optical)[0]
    tvec = -world_to_optical @ centre
    pixels = cv2.projectPoints(points, rvec, tvec, np.asarray(k, np.float64).reshape(3, 3), None)[0].reshape(-1, 2)
    shape = np.shape(xs)
    return pixels[:, 0].reshape(shape), pixels[:, 1].reshape(shape), depth.reshape(shape)


def cell_centres(
    resolution: float, width: int, height: int, origin_x: float, origin_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every cell centre of an OccupancyGrid layout, each (height, width)."""
    xs = origin_x + (np.arange(width) + 0.5) * resolution
    ys = origin_y + (np.arange(height) + 0.5) * resolution
    return np.meshgrid(xs, ys)


def reference_cell_pixels(
    k: np.ndarray,
    pose_xyz_rpy: Sequence[float],
    grid: tuple[float, int, int, float, float, float],
    image_width: int,
    image_height: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(col, row, ambiguous) per grid cell: the pixel that sees the cell centre, -1 where none does.

    grid is (resolution, width, height, origin_x, origin_y, max_range). `ambiguous` marks cells whose
    projection lies within EDGE_EPS of a pixel edge (or of the image border, the range limit or the
    horizon), where two correct float paths may disagree.
    """
    res, width, height, ox, oy, max_range = grid
    xs, ys = cell_centres(res, width, height, ox, oy)
    u, v, depth = project_ground_points(k, pose_xyz_rpy, xs, ys)
    distance = np.hypot(xs - pose_xyz_rpy[0], ys - pose_xyz_rpy[1])
    with np.errstate(invalid="ignore"):
        col, row = np.floor(u), np.floor(v)
        seen = (depth > 1e-3) & (distance <= max_range) & (col >= 0) & (col < image_width)
        seen &= (row >= 0) & (row < image_height)
        near_edge = (np.abs(u - np.round(u)) < EDGE_EPS) | (np.abs(v - np.round(v)) < EDGE_EPS)
    ahead = depth > 1e-3
    ambiguous = (ahead & near_edge) | (np.abs(distance - max_range) < EDGE_EPS) | (np.abs(depth - 1e-3) < EDGE_EPS)
    col = np.where(seen, col, -1).astype(np.int64)
    row = np.where(seen, row, -1).astype(np.int64)
    return col, row, ambiguous


def reference_grid(
    labels: np.ndarray,
    occupancy: np.ndarray,
    k: np.ndarray,
    pose_xyz_rpy: Sequence[float],
    grid: tuple[float, int, int, float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """(int8 grid, ambiguous mask): each cell takes occupancy[label] of the pixel that sees it, -1 if none."""
    col, row, ambiguous = reference_cell_pixels(k, pose_xyz_rpy, grid, labels.shape[1], labels.shape[0])
    out = np.full(col.shape, -1, np.int8)
    seen = col >= 0
    out[seen] = occupancy[labels[row[seen], col[seen]]]
    return out, ambiguous

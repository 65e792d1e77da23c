"""Bird's-eye drivable-area grid: labels projected onto the ground plane (z = 0 of the grid frame).

For every grid cell the pixel that sees its centre is computed once per (intrinsics, pose, image
size) by projecting the cell centre through a pinhole camera; per frame the grid is a single
gather from the label image and a 256-entry lookup. Cells: 0 drivable, 100 anything seen that is
not drivable (obstacle classes included), -1 unseen, behind the camera or beyond max range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.core.errors import SegPerceptionError

UNSEEN = -1
FREE = 0
OCCUPIED = 100


@dataclass(frozen=True)
class MountPose:
    """Camera body frame (x forward, y left, z up) in the grid frame; angles in radians, ROS RPY order."""

    x: float = 0.0
    y: float = 0.0
    z: float = 1.5
    roll: float = 0.0
    pitch: float = 0.0  # positive looks down
    yaw: float = 0.0

    @classmethod
    def from_list(cls, values: Sequence[float]) -> MountPose:
        if len(values) != 6:
            raise SegPerceptionError(f"a mount pose is [x, y, z, roll, pitch, yaw], got {list(values)}")
        return cls(*(float(v) for v in values))

    def rotation(self) -> np.ndarray:
        """Grid <- camera-body rotation, Rz(yaw) Ry(pitch) Rx(roll)."""
        cr, sr = np.cos(self.roll), np.sin(self.roll)
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        cy, sy = np.cos(self.yaw), np.sin(self.yaw)
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        return rz @ ry @ rx


@dataclass(frozen=True)
class GridSpec:
    """An OccupancyGrid layout: `width` cells along x, `height` cells along y, cell (0, 0) at the origin."""

    resolution: float = 0.2
    width: int = 200
    height: int = 200
    origin_x: float = 0.0
    origin_y: float = -20.0
    max_range: float = 40.0

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.width < 1 or self.height < 1 or self.max_range <= 0:
            raise SegPerceptionError(f"invalid grid {self}: resolution, sizes and range must be positive")

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y of every cell centre, each (height, width)."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        return np.meshgrid(xs, ys)


# Camera body (x forward, y left, z up) -> optical (x right, y down, z forward).
_BODY_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


class GroundProjector:
    """Projects a label image of a fixed size onto a grid; the lookup is built once."""

    def __init__(self, k: np.ndarray, pose: MountPose, grid: GridSpec, image_width: int, image_height: int) -> None:
        k = np.asarray(k, np.float64).reshape(3, 3)
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise SegPerceptionError(f"camera intrinsics have no focal length: K = {k.ravel().tolist()}")
        self.grid, self.image_size = grid, (image_width, image_height)
        gx, gy = grid.cell_centres()
        rel = np.stack([gx - pose.x, gy - pose.y, np.full_like(gx, -pose.z)], axis=-1)  # (h, w, 3), grid frame
        optical = rel @ (_BODY_TO_OPTICAL @ pose.rotation().T).T
        z = optical[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.floor(k[0, 0] * optical[..., 0] / z + k[0, 2])
            v = np.floor(k[1, 1] * optical[..., 1] / z + k[1, 2])
        in_range = np.hypot(rel[..., 0], rel[..., 1]) <= grid.max_range
        visible = (z > 1e-3) & in_range & (u >= 0) & (u < image_width) & (v >= 0) & (v < image_height)
        self._cells = np.flatnonzero(visible.ravel())  # grid cells that some pixel sees
        self._pixels = (v.ravel()[self._cells] * image_width + u.ravel()[self._cells]).astype(np.intp)

    def project(self, labels: np.ndarray, occupancy_lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """int8 (height, width) grid from a label image, via a [256] int8 class -> occupancy table."""
        if labels.shape[::-1] != self.image_size:
            raise SegPerceptionError(
                f"labels are {labels.shape[1]}x{labels.shape[0]}, projector expects "
                f"{self.image_size[0]}x{self.image_size[1]}"
            )
        grid = out if out is not None else np.empty((self.grid.height, self.grid.width), np.int8)
        grid.fill(UNSEEN)
        grid.ravel()[self._cells] = occupancy_lut[labels.ravel()[self._pixels]]
        return grid


def occupancy_table(drivable_ids: Sequence[int], num_classes: int) -> np.ndarray:
    """[256] int8: FREE for drivable ids, OCCUPIED for other class ids, UNSEEN for ids outside the classes."""
    table = np.full(256, UNSEEN, np.int8)
    table[:num_classes] = OCCUPIED
    table[list(drivable_ids)] = FREE
    return table


def fuse(grids: Sequence[np.ndarray]) -> np.ndarray:
    """Several cameras' grids in one: a cell seen as occupied by any camera is occupied, unseen stays -1."""
    if not grids:
        raise SegPerceptionError("no grids to fuse")
    out = grids[0].copy()
    for g in grids[1:]:
        np.maximum(out, g, out=out)
    return out

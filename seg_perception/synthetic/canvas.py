"""The drawing surface of one camera pose: projection of road-frame points and paired image/label fills."""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.synthetic.world import _D_GRID, _D_NEAR, _Camera, _World

Color = tuple[int, int, int]


class _Canvas:
    """Image + labels + the projection of one camera pose; every `fill` writes both arrays identically."""

    def __init__(self, world: _World, cam: _Camera, s_cam: float, lateral: float, width: int, height: int) -> None:
        self.world, self.road, self.look = world, world.road, world.look
        self.w, self.h = width, height
        self.f, self.cx, self.v0 = cam.focal * width, cam.cx * width, cam.horizon * height
        self.cam_h, self.cam_x, self.s_cam = cam.height, lateral, s_cam
        self.grid_x, self.grid_y = self.road.centre(s_cam, _D_GRID)
        v = self.v0 - (self.grid_y - self.cam_h) * self.f / _D_GRID
        # Past a crest the road turns away below the line of sight; everything beyond is hidden.
        rising = np.flatnonzero(np.diff(v) >= 0)
        last = int(rising[0]) if len(rising) else len(_D_GRID) - 1
        self.d_far = float(_D_GRID[last])
        self.ground_row = int(np.clip(v[last], 1, height - 1))
        self.image = np.empty((height, width, 3), np.uint8)
        self.labels = np.empty((height, width), np.uint8)
        self.tint, self.gamma = world.look.tint, world.look.gamma

    def col(self, color: np.ndarray | tuple[float, float, float], gain: float = 1.0) -> Color:
        """A surface colour as the camera records it: exposure, white balance and gamma, applied per colour
        rather than per pixel because every pixel comes from a drawn colour (and it is much cheaper)."""
        r, g, b = color.tolist() if isinstance(color, np.ndarray) else color
        t, e = self.tint, self.gamma
        return (
            int(255 * min(r * gain * t[0] / 255, 1.0) ** e),
            int(255 * min(g * gain * t[1] / 255, 1.0) ** e),
            int(255 * min(b * gain * t[2] / 255, 1.0) ** e),
        )

    def tone(self, colors: np.ndarray) -> np.ndarray:
        """`col` for an array of colours (..., 3)."""
        return (255 * np.minimum(colors * np.array(self.tint[:3]) / 255, 1.0) ** self.gamma).astype(np.uint8)

    def project(self, s: np.ndarray | float, y: np.ndarray | float, d: np.ndarray) -> np.ndarray:
        """(..., 2) pixel coordinates of road-frame points (lateral s, height y above the road, distance d).

        `d` must already have the full shape; `s` and `y` broadcast against it."""
        k = self.f / d
        out = np.empty((*d.shape, 2))
        out[..., 0] = (np.interp(d, _D_GRID, self.grid_x) + s - self.cam_x) * k + self.cx
        out[..., 1] = self.v0 - (np.interp(d, _D_GRID, self.grid_y) + y - self.cam_h) * k
        return out

    def ribbon(self, s0: float, y0: float, s1: float, y1: float, d0: float, d1: float) -> np.ndarray | None:
        """Polygon of the surface swept along the road between (s0, y0) and (s1, y1) from d0 to d1."""
        d0, d1 = max(d0, _D_NEAR), min(d1, self.d_far)
        if d1 <= d0:
            return None
        i0, i1 = np.searchsorted(_D_GRID, (d0, d1))
        d = np.concatenate(([d0], _D_GRID[i0:i1], [d1]))
        n = len(d)
        s = np.full(2 * n, s1)
        s[:n] = s0
        y = np.full(2 * n, y1)
        y[:n] = y0
        return np.rint(self.project(s, y, np.concatenate((d, d[::-1])))).astype(np.int32)

    def fill(self, pts: np.ndarray | None, color: Color, cls: int) -> None:
        if pts is not None:
            cv2.fillPoly(self.image, [pts], color)
            cv2.fillPoly(self.labels, [pts], cls)

    def paint(self, pts: np.ndarray | list[np.ndarray] | None, color: Color) -> None:
        """Image-only detail (windows, lights, patches) on a surface whose label is already drawn."""
        if pts is not None and len(pts):
            cv2.fillPoly(self.image, list(pts) if isinstance(pts, list) else [pts], color)

    def box(
        self, s0: float, s1: float, y0: float, y1: float, d0: float, d1: float, color: np.ndarray, cls: int
    ) -> bool:
        """Visible faces of a short axis-aligned box, far faces first; returns whether its near face is drawn."""
        near, far = max(d0, _D_NEAR), min(d1, self.d_far)
        if far <= near:
            return False
        corners = np.array(
            [
                [s0, s1, s1, s0, s0, s1, s1, s0],
                [y0, y0, y1, y1, y0, y0, y1, y1],
                [near, near, near, near, far, far, far, far],
            ]
        )
        p = np.rint(self.project(corners[0], corners[1], corners[2])).astype(np.int32)
        if y1 < self.cam_h:
            self.fill(p[[3, 2, 6, 7]], self.col(color, 1.12), cls)
        if s1 < self.cam_x:
            self.fill(p[[1, 5, 6, 2]], self.col(color, 0.8), cls)
        elif s0 > self.cam_x:
            self.fill(p[[0, 4, 7, 3]], self.col(color, 0.8), cls)
        if near != d0:
            return False
        self.fill(p[:4], self.col(color), cls)
        return True

    def faces(self, rects: list[tuple[float, float, float, float]], d: float) -> np.ndarray:
        """(N, 4, 2) polygons of rectangles (s0, s1, y0, y1) facing the camera at distance d."""
        r = np.asarray(rects, dtype=np.float64)
        s = r[:, [0, 1, 1, 0]]
        y = r[:, [2, 2, 3, 3]]
        return np.rint(self.project(s, y, np.full(s.shape, d))).astype(np.int32)

    def strips(self, lateral: np.ndarray, half: float, d0: np.ndarray, d1: np.ndarray) -> list[np.ndarray]:
        """Short flat road quads (dashes, crosswalk bars) centred on `lateral`, clipped to the visible range."""
        d0, d1 = np.maximum(d0, _D_NEAR), np.minimum(d1, self.d_far)
        keep = d1 > d0
        lat = lateral[keep, None] + half * np.array([-1.0, 1.0, 1.0, -1.0])
        d = np.stack([d0[keep], d0[keep], d1[keep], d1[keep]], axis=1)
        return list(np.rint(self.project(lat, 0.0, d)).astype(np.int32))

    def fill_many(self, polys: list[np.ndarray], color: Color, cls: int) -> None:
        """Fill non-overlapping polygons in one call (overlaps would cancel out)."""
        if polys:
            cv2.fillPoly(self.image, polys, color)
            cv2.fillPoly(self.labels, polys, cls)

"""Procedural front-camera driving scenes with exact per-pixel labels (demo model label space).

Every surface is a polygon drawn twice with the same integer vertices and no antialiasing: once in a
realistic colour into the RGB image and once as its class id into the label map, so the labels are exact.
Only image-only effects (shadows, lighting, blur, sensor noise) come afterwards, and they leave labels alone.

Geometry: a pinhole camera rides above a road whose curvature and grade are sums of sinusoids of the
distance travelled, so a world can be rendered from any point along it; that is what makes
`generate_drive` temporally coherent. Distances ahead (`d`) are approximated by depth (small-angle road).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class SceneClass:
    """One class of a label space: its display colour and what a planner may do with it."""

    name: str
    color: tuple[int, int, int]
    drivable: bool = False
    obstacle: bool = False


DEMO_CLASSES: tuple[SceneClass, ...] = (
    SceneClass("road", (128, 64, 128), drivable=True),
    SceneClass("lane_marking", (255, 255, 255), drivable=True),
    SceneClass("sidewalk", (244, 35, 232)),
    SceneClass("terrain", (107, 142, 35)),
    SceneClass("building", (70, 70, 70)),
    SceneClass("sky", (70, 130, 180)),
    SceneClass("vehicle", (0, 0, 142), obstacle=True),
    SceneClass("pedestrian", (220, 20, 60), obstacle=True),
)
IGNORE_ID = 255
ROAD, LANE_MARKING, SIDEWALK, TERRAIN, BUILDING, SKY, VEHICLE, PEDESTRIAN = range(8)


@dataclass(frozen=True)
class Scene:
    """An RGB uint8 image (H, W, 3) and its exact class-id map (H, W) uint8."""

    image: np.ndarray
    labels: np.ndarray


Color = tuple[int, int, int]
_D_NEAR = 1.0  # metres; well below the bottom image row for every camera we draw
_D_GRID = np.geomspace(_D_NEAR, 400.0, 90)
_VEHICLE_COLORS = np.array(
    [
        [235, 235, 235],
        [25, 25, 28],
        [160, 163, 168],
        [95, 98, 104],
        [165, 25, 30],
        [30, 60, 140],
        [20, 35, 70],
        [40, 90, 60],
        [225, 180, 30],
        [120, 30, 40],
        [200, 200, 190],
    ],
    dtype=np.float64,
)
_VEHICLE_KINDS = ("car",) * 7 + ("van", "van", "truck", "bus")  # parked: the first 8 only
_VEHICLE_DIMS = np.array([[4.5, 1.8, 1.45]] * 7 + [[5.2, 2.0, 2.2]] * 2 + [[9.0, 2.5, 3.5], [12.0, 2.55, 3.1]])
_FACADE_COLORS = np.array(
    [
        [150, 78, 60],
        [205, 185, 150],
        [140, 140, 138],
        [215, 213, 205],
        [70, 85, 100],
        [205, 175, 105],
        [170, 120, 95],
        [110, 105, 100],
    ],
    dtype=np.float64,
)


def _jitter(rng: np.random.Generator, base: np.ndarray | list[float], amount: float) -> np.ndarray:
    return np.abs(np.asarray(base, dtype=np.float64) + rng.uniform(-amount, amount, 3))


@dataclass(frozen=True)
class _Road:
    curvature: np.ndarray  # rows of (amplitude 1/m, angular frequency rad/m, phase)
    grade: np.ndarray  # rows of (amplitude, angular frequency, phase)
    lanes: int
    oncoming_lanes: int  # the leftmost lanes carry oncoming traffic
    lane_width: float
    parking: float  # width of a parking strip outside each edge line (0: none)
    sidewalk: float  # 0: rural shoulder of terrain instead
    curb: float
    line_width: float
    dash_len: float
    dash_period: float
    dashed: tuple[bool, ...]  # per interior lane boundary
    centre_yellow: bool
    crosswalks: tuple[float, ...]  # world positions

    @property
    def half_width(self) -> float:
        return self.lanes * self.lane_width / 2 + self.parking

    def lane_centre(self, lane: int) -> float:
        return -self.lanes * self.lane_width / 2 + (lane + 0.5) * self.lane_width

    def centre(self, s_cam: float, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Road centre lateral offset and elevation at distance d, in the frame of a camera at s_cam."""
        x = np.zeros_like(d)
        for a, w, p in self.curvature:
            x -= a / w * ((np.sin(w * (s_cam + d) + p) - np.sin(w * s_cam + p)) / w - d * np.cos(w * s_cam + p))
        y = np.zeros_like(d)
        for b, w, p in self.grade:
            y += b * ((np.cos(w * s_cam + p) - np.cos(w * (s_cam + d) + p)) / w - d * np.sin(w * s_cam + p))
        return x, y


@dataclass(frozen=True)
class _Camera:
    focal: float  # fraction of image width
    cx: float  # fraction of image width
    horizon: float  # fraction of image height (row of the flat-ground horizon)
    height: float  # metres above the road


@dataclass(frozen=True)
class _Building:
    side: int
    s0: float  # world start along the road
    length: float
    setback: float  # lateral distance of the facade from the road edge
    height: float
    color: np.ndarray
    window: np.ndarray  # glass colour
    floors: int
    bays: int


@dataclass(frozen=True)
class _Tree:
    lateral: float
    s: float
    trunk: float
    radius: float
    color: np.ndarray


@dataclass(frozen=True)
class _Vehicle:
    lateral: float
    s0: float
    speed: float
    length: float
    width: float
    height: float
    kind: str  # car, van, truck, bus
    color: np.ndarray
    oncoming: bool


@dataclass(frozen=True)
class _Pedestrian:
    lateral: float
    s0: float
    speed: float  # along the road
    cross_speed: float  # across the road
    height: float
    colors: np.ndarray  # (4, 3): legs, torso, skin, hair


@dataclass(frozen=True)
class _Look:
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    haze: np.ndarray
    grass: np.ndarray
    asphalt: np.ndarray
    sidewalk: np.ndarray
    curb: np.ndarray
    marking: np.ndarray
    yellow: np.ndarray
    shadow: float  # brightness factor inside shadows
    sun_side: int  # shadows fall towards this side
    sun_reach: float  # shadow length per metre of height
    tint: tuple[float, float, float]  # exposure x white balance per channel
    gamma: float
    noise: float
    blur: float
    skyline: int  # 0 treeline, 1 city
    clouds: int


@dataclass(frozen=True)
class _World:
    road: _Road
    look: _Look
    buildings: tuple[_Building, ...]
    trees: tuple[_Tree, ...]
    vehicles: tuple[_Vehicle, ...]
    pedestrians: tuple[_Pedestrian, ...]
    patches: np.ndarray  # rows of (lateral, s, half width, half length, brightness)


def _make_road(rng: np.random.Generator, kind: str, s_start: float, s_end: float) -> _Road:
    lanes = {"urban": int(rng.integers(2, 5)), "suburban": 2, "rural": 2, "highway": int(rng.integers(3, 5))}[kind]
    oncoming = 0 if kind == "highway" or rng.random() < 0.25 else lanes // 2
    curv = np.column_stack(
        [
            rng.uniform(-1, 1, 3) * np.array([1 / 250, 1 / 600, 1 / 1500]) * rng.uniform(0, 1.5),
            2 * np.pi / rng.uniform([80, 250, 600], [250, 600, 1500]),
            rng.uniform(0, 2 * np.pi, 3),
        ]
    )
    grade = np.column_stack(
        [
            rng.uniform(-1, 1, 2) * np.array([0.035, 0.05]) * rng.uniform(0, 1.2),
            2 * np.pi / rng.uniform([150, 400], [400, 900]),
            rng.uniform(0, 2 * np.pi, 2),
        ]
    )
    crosswalks = tuple(
        float(s)
        for s in np.arange(s_start + rng.uniform(15, 90), s_end, rng.uniform(80, 200))
        if kind == "urban" and rng.random() < 0.5
    )
    return _Road(
        curvature=curv,
        grade=grade,
        lanes=lanes,
        oncoming_lanes=oncoming,
        lane_width=rng.uniform(3.0, 3.8),
        parking=rng.uniform(1.8, 2.4) if kind == "urban" and rng.random() < 0.6 else 0.0,
        sidewalk=rng.uniform(1.8, 4.5) if kind in ("urban", "suburban") else 0.0,
        curb=rng.uniform(0.1, 0.2),
        line_width=rng.uniform(0.12, 0.22),
        dash_len=rng.uniform(2.0, 4.0),
        dash_period=rng.uniform(7.0, 12.0),
        dashed=tuple(bool(rng.random() < 0.85) for _ in range(lanes - 1)),
        centre_yellow=bool(rng.random() < 0.3 and oncoming > 0),
        crosswalks=crosswalks,
    )


def _tint(gains: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in gains)
    return (r, g, b)


def _make_look(rng: np.random.Generator, kind: str) -> _Look:
    weather = rng.choice(["clear", "clear", "overcast", "dusk"])
    if weather == "clear":
        top, horizon = _jitter(rng, [70, 125, 200], 25), _jitter(rng, [185, 210, 235], 20)
    elif weather == "overcast":
        top, horizon = _jitter(rng, [150, 155, 165], 25), _jitter(rng, [200, 202, 205], 20)
    else:
        top, horizon = _jitter(rng, [80, 95, 145], 25), _jitter(rng, [235, 170, 120], 20)
    grey = rng.uniform(70, 125)
    dry = rng.random() < 0.3
    return _Look(
        sky_top=top,
        sky_horizon=horizon,
        haze=(horizon * 0.6 + 70),
        grass=_jitter(rng, [140, 130, 80] if dry else [75, 115, 50], 20),
        asphalt=_jitter(rng, [grey, grey, grey * 1.03], 6),
        sidewalk=_jitter(rng, [175, 170, 160] if rng.random() < 0.7 else [170, 120, 105], 20),
        curb=_jitter(rng, [195, 195, 190], 15),
        marking=_jitter(rng, [238, 238, 232], 15),
        yellow=_jitter(rng, [225, 185, 50], 15),
        shadow=float(rng.uniform(0.4, 0.65)) if weather == "clear" else float(rng.uniform(0.75, 0.9)),
        sun_side=int(rng.choice([-1, 1])),
        sun_reach=float(rng.uniform(0.3, 1.2)),
        tint=_tint(rng.uniform(0.88, 1.12, 3) * rng.uniform(0.65, 1.2)),
        gamma=float(rng.uniform(0.8, 1.25)),
        noise=float(rng.uniform(0.3, 1.6)),
        blur=float(rng.uniform(0.3, 1.1)),
        skyline=int(kind == "urban" or (kind == "suburban" and rng.random() < 0.4)),
        clouds=int(rng.integers(0, 6)),
    )


def _spaced(rng: np.random.Generator, start: float, end: float, steps: np.ndarray) -> np.ndarray:
    """Positions from `start` separated by `steps`, kept below `end`."""
    s = start + np.concatenate(([0.0], np.cumsum(steps[:-1])))
    return s[s < end]


def _make_world(
    rng: np.random.Generator, s_cam: float, s_end: float, ego_speed: float, duration: float, crossing: bool = True
) -> tuple[_World, int]:
    """A random world from just behind the camera's start `s_cam` to `s_end`; returns it and the ego lane."""
    kind = str(rng.choice(["urban", "urban", "suburban", "rural", "highway"]))
    s_start = s_cam - 30
    road = _make_road(rng, kind, s_cam, s_end)
    look = _make_look(rng, kind)
    ego = int(rng.integers(road.oncoming_lanes, road.lanes))
    hw, span = road.half_width, s_end - s_start
    urban = kind == "urban"
    buildings: list[_Building] = []
    trees: list[_Tree] = []
    pedestrians: list[_Pedestrian] = []
    density = {"urban": 0.9, "suburban": 0.55, "rural": 0.12, "highway": 0.15}[kind]
    tree_gap = {"urban": 25.0, "suburban": 12.0, "rural": 9.0, "highway": 20.0}[kind]
    ped_gap = {"urban": 7.0, "suburban": 14.0, "rural": 35.0, "highway": 1e9}[kind]
    for side in (-1, 1):
        n = int(span / 8) + 2
        lengths = rng.uniform(8, 35, n)
        starts = _spaced(rng, s_start - rng.uniform(0, 20), s_end, lengths + rng.uniform(0, 3 if urban else 25, n))
        n = len(starts)
        setbacks = road.sidewalk + (rng.uniform(0, 2, n) if urban else rng.uniform(4, 25, n))
        heights = rng.uniform(8, 35, n) if urban else rng.uniform(4, 10, n)
        colors = np.abs(_FACADE_COLORS[rng.integers(len(_FACADE_COLORS), size=n)] + rng.uniform(-20, 20, (n, 3)))
        windows = np.abs(np.array([60.0, 75.0, 90.0]) + rng.uniform(-25, 25, (n, 3)))
        floors, bays, present = rng.integers(2, 10, n), rng.integers(2, 8, n), rng.random(n) < density
        buildings += [
            _Building(
                side,
                float(starts[i]),
                float(lengths[i]),
                float(setbacks[i]),
                float(heights[i]),
                colors[i],
                windows[i],
                int(floors[i]),
                int(bays[i]),
            )
            for i in np.flatnonzero(present)
        ]
        pos = _spaced(
            rng, s_start + rng.uniform(0, 15), s_end, rng.uniform(0.4, 2.0, int(span / tree_gap * 2.5) + 2) * tree_gap
        )
        n = len(pos)
        lateral = side * (hw + road.sidewalk + rng.uniform(0.5, 1.0 if road.sidewalk else 8.0, n))
        trunk, radius = rng.uniform(1.5, 3.5, n), rng.uniform(1.5, 4.0, n)
        colors = np.abs(np.array([50.0, 85.0, 40.0]) + rng.uniform(-20, 20, (n, 3)))
        trees += [
            _Tree(float(lateral[i]), float(pos[i]), float(trunk[i]), float(radius[i]), colors[i]) for i in range(n)
        ]
        pos = _spaced(
            rng,
            s_start + rng.exponential(min(ped_gap, 1e4)),
            s_end,
            rng.uniform(0.1, 1.9, int(span / min(ped_gap, 1e4) * 10) + 2) * ped_gap,
        )
        lateral = side * rng.uniform(hw + 0.4, hw + (road.sidewalk or 2.0) - 0.3, len(pos))
        walk = rng.choice([-1, 1], len(pos)) * rng.uniform(0.8, 1.6, len(pos))
        pedestrians += _pedestrians(rng, lateral, pos, speed=walk, cross_speed=np.zeros(len(pos)))
    if crossing:
        for s in road.crosswalks:
            n = int(rng.integers(0, 4))
            pedestrians += _pedestrians(
                rng,
                rng.uniform(-hw, hw, n),
                s + rng.uniform(0.5, 3.0, n),
                speed=np.zeros(n),
                cross_speed=rng.choice([-1, 1], n) * rng.uniform(0.8, 1.5, n),
            )
    vehicles: list[_Vehicle] = []
    lanes = [(lane, road.lane_centre(lane)) for lane in range(road.lanes)]
    if road.parking:
        lanes += [(-1, -hw + road.parking / 2), (-2, hw - road.parking / 2)]
    for lane, centre in lanes:
        oncoming = 0 <= lane < road.oncoming_lanes
        if lane < 0:
            speed = 0.0
        elif lane == ego:
            speed = ego_speed
        elif oncoming:
            speed = -float(rng.uniform(6, 14))
        else:
            speed = ego_speed * float(rng.uniform(0.4, 0.9))
        # Spawn every vehicle that could come into view during the drive: the lane moves relative to the camera.
        rel = (ego_speed - speed) * duration
        first = min(0.0, -rel) + (s_cam + rng.uniform(9, 40) if lane == ego else s_start + rng.uniform(0, 40))
        last = max(0.0, -rel) + s_end
        n = int((last - first) / 6) + 2
        kinds = rng.integers(len(_VEHICLE_KINDS) if lane >= 0 else 8, size=n)
        dims = _VEHICLE_DIMS[kinds] * rng.uniform(0.92, 1.08, (n, 3))
        gaps = rng.uniform(1.5, 30, n) if lane < 0 else rng.uniform(8, 70, n)
        pos = _spaced(rng, first, last, dims[:, 0] + gaps)
        lateral = centre + rng.uniform(-0.3, 0.3, len(pos))
        colors = np.abs(
            _VEHICLE_COLORS[rng.integers(len(_VEHICLE_COLORS), size=len(pos))] + rng.uniform(-12, 12, (len(pos), 3))
        )
        vehicles += [
            _Vehicle(
                float(lateral[i]),
                float(pos[i]),
                speed,
                float(dims[i, 0]),
                float(dims[i, 1]),
                float(dims[i, 2]),
                _VEHICLE_KINDS[kinds[i]],
                colors[i],
                oncoming,
            )
            for i in range(len(pos))
        ]
    n_patch = int(rng.integers(0, 12))
    patches = np.column_stack(
        [
            rng.uniform(-hw, hw, n_patch),
            rng.uniform(s_start, s_end, n_patch),
            rng.uniform(0.3, 2.0, n_patch),
            rng.uniform(0.5, 6.0, n_patch),
            rng.uniform(0.75, 1.2, n_patch),
        ]
    )
    world = _World(
        road=road,
        look=look,
        buildings=tuple(buildings),
        trees=tuple(trees),
        vehicles=tuple(vehicles),
        pedestrians=tuple(pedestrians),
        patches=patches,
    )
    return world, ego


def _pedestrians(
    rng: np.random.Generator, lateral: np.ndarray, s0: np.ndarray, speed: np.ndarray, cross_speed: np.ndarray
) -> list[_Pedestrian]:
    n = len(s0)
    skins = np.array([[225.0, 185.0, 160.0], [190.0, 140.0, 105.0], [120.0, 80.0, 55.0]])
    colors = np.stack(
        [
            rng.uniform(20, 200, (n, 3)),
            rng.uniform(20, 240, (n, 3)),
            np.abs(skins[rng.integers(3, size=n)] + rng.uniform(-12, 12, (n, 3))),
            np.repeat(rng.uniform(10, 90, (n, 1)), 3, axis=1),
        ],
        axis=1,
    )
    height = rng.uniform(1.5, 1.95, n)
    return [
        _Pedestrian(
            float(lateral[i]), float(s0[i]), float(speed[i]), float(cross_speed[i]), float(height[i]), colors[i]
        )
        for i in range(n)
    ]


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


@functools.lru_cache(maxsize=4)
def _noise_bank(width: int, height: int) -> np.ndarray:
    """Fixed sensor-noise texture around 128, cropped at a random offset per frame."""
    rng = np.random.default_rng(1234)
    return np.clip(rng.normal(128.0, 5.0, (height + 32, width + 32, 3)), 0, 255).astype(np.uint8)


def _draw_background(cv: _Canvas, rng: np.random.Generator) -> None:
    look, h, w, g = cv.look, cv.h, cv.w, cv.ground_row
    rows = np.arange(h, dtype=np.float64)[:, None]
    a = np.clip(rows / max(g, 1), 0, 1) ** 1.5
    sky = look.sky_top * (1 - a) + look.sky_horizon * a
    b = np.clip((rows - g) / max(h - g, 1), 0, 1) ** 0.5
    ground = look.haze * (1 - b) + look.grass * b
    column = cv.tone(np.where(rows < g, sky, ground))[:, None, :]
    cv.image[:] = cv2.resize(column, (w, h), interpolation=cv2.INTER_NEAREST)
    cv.labels[:g] = SKY
    cv.labels[g:] = TERRAIN
    sky_view = cv.image[:g]
    for _ in range(look.clouds):
        center = (int(rng.uniform(0, w)), int(rng.uniform(0, g * 0.7)))
        axes = (int(rng.uniform(0.03, 0.15) * w), int(rng.uniform(0.01, 0.04) * w))
        cv2.ellipse(sky_view, center, axes, 0, 0, 360, cv.col(look.sky_horizon * 0.5 + 125), -1)
    # Distant silhouette sitting on the far ground: a city skyline or a treeline.
    scale = w / 1280
    if look.skyline:
        xs = np.cumsum(rng.uniform(15, 70, 64) * scale)
        xs = np.concatenate([[0], xs[xs < w], [w]])
        tops = g - rng.uniform(4, 45, len(xs)) * scale * (rng.random(len(xs)) < 0.8)
        pts = np.stack([np.repeat(xs, 2)[1:-1], np.repeat(tops[:-1], 2)], axis=1)
        cls, color = BUILDING, look.haze * 0.7
    else:
        xs = np.linspace(0, w, 48)
        tops = g - rng.uniform(2, 16, 48) * scale
        pts = np.stack([xs, tops], axis=1)
        cls, color = TERRAIN, look.grass * 0.6 + look.haze * 0.3
    pts = np.concatenate([pts, [[w, g + 1], [0, g + 1]]])
    cv.fill(np.rint(pts).astype(np.int32), cv.col(color), cls)


def _draw_ground(cv: _Canvas) -> None:
    road, look = cv.road, cv.look
    hw, far, s_cam = road.half_width, cv.d_far, cv.s_cam
    if road.sidewalk:
        for side in (-1, 1):
            outer = side * (hw + road.sidewalk)
            cv.fill(cv.ribbon(side * hw, road.curb, outer, road.curb, 0, far), cv.col(look.sidewalk), SIDEWALK)
            cv.fill(cv.ribbon(side * hw, 0, side * hw, road.curb, 0, far), cv.col(look.curb), SIDEWALK)
    else:
        for side in (-1, 1):  # gravel or dirt shoulder: still terrain
            cv.fill(cv.ribbon(side * hw, 0, side * (hw + 1.5), 0, 0, far), cv.col(look.grass * 0.5 + 60), TERRAIN)
    cv.fill(cv.ribbon(-hw, 0, hw, 0, 0, far), cv.col(look.asphalt), ROAD)
    for lateral, s, half_w, half_l, gain in cv.world.patches:
        d = s - s_cam
        if d + half_l > _D_NEAR and d - half_l < far:
            cv.paint(
                cv.ribbon(lateral - half_w, 0, lateral + half_w, 0, d - half_l, d + half_l), cv.col(look.asphalt, gain)
            )
    lw = road.line_width
    edge = road.lanes * road.lane_width / 2 - 0.2
    for lateral in (-edge, edge):
        cv.fill(cv.ribbon(lateral - lw / 2, 0, lateral + lw / 2, 0, 0, far), cv.col(look.marking), LANE_MARKING)
    for i, dashed in enumerate(road.dashed):
        lateral = -road.lanes * road.lane_width / 2 + (i + 1) * road.lane_width
        color = cv.col(look.yellow if road.centre_yellow and i + 1 == road.oncoming_lanes else look.marking)
        if not dashed:
            cv.fill(cv.ribbon(lateral - lw / 2, 0, lateral + lw / 2, 0, 0, far), color, LANE_MARKING)
            continue
        first = np.ceil((s_cam - road.dash_len) / road.dash_period)
        starts = np.arange(first, (s_cam + far) / road.dash_period + 1) * road.dash_period - s_cam
        dashes = cv.strips(np.full(starts.shape, lateral), lw / 2, starts, starts + road.dash_len)
        cv.fill_many(dashes, color, LANE_MARKING)
    for s in road.crosswalks:
        d = s - s_cam
        if d + 3 < _D_NEAR or d > far:
            continue
        bars = np.arange(-hw + 0.75, hw - 0.5, 1.0)
        cv.fill_many(
            cv.strips(bars, 0.25, np.full(bars.shape, d), np.full(bars.shape, d + 3.0)),
            cv.col(look.marking),
            LANE_MARKING,
        )


_Placed = tuple[list[tuple[float, _Vehicle]], list[tuple[float, float, _Pedestrian]]]


def _positions(world: _World, s_cam: float, t: float) -> _Placed:
    """Vehicles as (distance, vehicle) and pedestrians as (distance, lateral, pedestrian) at time t."""
    vehicles = [(v.s0 + v.speed * t - s_cam, v) for v in world.vehicles]
    peds = [(p.s0 + p.speed * t - s_cam, p.lateral + p.cross_speed * t, p) for p in world.pedestrians]
    hw = world.road.half_width + world.road.sidewalk + 1.5
    return (
        [(d, v) for d, v in vehicles if d + v.length > _D_NEAR],
        [(d, lat, p) for d, lat, p in peds if d > 2.0 and abs(lat) < hw],
    )


def _draw_shadows(
    cv: _Canvas, vehicles: list[tuple[float, _Vehicle]], peds: list[tuple[float, float, _Pedestrian]]
) -> None:
    look = cv.look
    mask = np.zeros((cv.h, cv.w), np.uint8)
    polys: list[np.ndarray | None] = []
    sun = look.sun_side * look.sun_reach
    for b in cv.world.buildings:
        d0 = b.s0 - cv.s_cam
        facade = b.side * (cv.road.half_width + b.setback)
        if b.side == -look.sun_side and d0 + 2 < cv.d_far and d0 + b.length - 2 > _D_NEAR:
            polys.append(cv.ribbon(facade, 0, facade + sun * b.height * 0.5, 0, d0 + 2, d0 + b.length - 2))
    for tree in cv.world.trees:
        d = tree.s - cv.s_cam
        if _D_NEAR + tree.radius < d < cv.d_far:
            ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            s = tree.lateral + sun * (tree.trunk + tree.radius) + tree.radius * np.cos(ang)
            polys.append(np.rint(cv.project(s, 0.0, d + tree.radius * np.sin(ang))).astype(np.int32))
    for d, v in vehicles:
        if _D_NEAR < d < cv.d_far:
            polys.append(
                cv.ribbon(
                    v.lateral - v.width / 2 - 0.1,
                    0,
                    v.lateral + v.width / 2 + 0.1 + sun * 0.5,
                    0,
                    d - 0.2,
                    d + v.length,
                )
            )
    for d, lateral, p in peds:
        if d - 0.2 < cv.d_far:
            polys.append(cv.ribbon(lateral - 0.25, 0, lateral + 0.25 + sun * p.height, 0, d - 0.2, d + 0.3))
    drawn = [p for p in polys if p is not None]
    if not drawn:
        return
    for poly in drawn:  # one call each: overlapping polygons in one call would cancel out
        cv2.fillPoly(mask, [poly], 255)
    cv2.copyTo(cv2.convertScaleAbs(cv.image, alpha=look.shadow), mask, cv.image)


def _draw_building(cv: _Canvas, b: _Building) -> None:
    d0, d1 = b.s0 - cv.s_cam, b.s0 + b.length - cv.s_cam
    facade = b.side * (cv.road.half_width + b.setback)
    back = facade + b.side * 15.0
    s0, s1 = (back, facade) if b.side < 0 else (facade, back)
    if d0 >= _D_NEAR:
        cv.fill(cv.faces([(s0, s1, 0, b.height)], d0)[0], cv.col(b.color, 0.85), BUILDING)
    side = cv.ribbon(facade, 0, facade, b.height, d0, d1)
    if side is None:
        return
    cv.fill(side, cv.col(b.color), BUILDING)
    if d0 > 150:
        return
    # Window grid on the street facade: image only, one call.
    fy = (np.arange(b.floors) + 0.35) * b.height / b.floors
    fd = d0 + (np.arange(b.bays) + 0.25) * b.length / b.bays
    grid_y, grid_d = np.meshgrid(fy, fd)
    wy, wd = grid_y.ravel(), grid_d.ravel()
    keep = (wd > _D_NEAR + 0.5) & (wd + 0.5 * b.length / b.bays < cv.d_far)
    if not keep.any():
        return
    wy, wd = wy[keep], wd[keep]
    dy, dd = 0.45 * b.height / b.floors, 0.5 * b.length / b.bays
    corners_y = np.stack([wy, wy, wy + dy, wy + dy], axis=1)
    corners_d = np.stack([wd, wd + dd, wd + dd, wd], axis=1)
    pts = cv.project(facade, corners_y, corners_d)
    cv.paint(list(np.rint(pts).astype(np.int32)), cv.col(b.window))


def _draw_tree(cv: _Canvas, tree: _Tree) -> None:
    d = tree.s - cv.s_cam
    if not _D_NEAR < d < cv.d_far:
        return
    base = cv.project(tree.lateral, cv.road.curb if cv.road.sidewalk else 0.0, np.array([d]))[0]
    k = cv.f / d
    trunk = np.rint(
        [
            [base[0] - 0.15 * k, base[1]],
            [base[0] + 0.15 * k, base[1]],
            [base[0] + 0.12 * k, base[1] - tree.trunk * k],
            [base[0] - 0.12 * k, base[1] - tree.trunk * k],
        ]
    )
    cv.fill(trunk.astype(np.int32), cv.col((80, 60, 45)), TERRAIN)
    cy = base[1] - (tree.trunk + tree.radius * 0.8) * k
    blobs: tuple[tuple[float, float, float, float], ...] = (
        (0, 0, 1.0, 1.0),
        (-0.5, 0.3, 0.7, 0.85),
        (0.5, 0.25, 0.7, 0.9),
    )
    if tree.radius * k < 6:  # a few pixels across: one blob is all that shows
        blobs = blobs[:1]
    for dx, dy, scale, gain in blobs:
        center = (int(base[0] + dx * tree.radius * k), int(cy + dy * tree.radius * k))
        axes = (max(int(tree.radius * scale * k), 1), max(int(tree.radius * scale * 1.15 * k), 1))
        cv2.ellipse(cv.image, center, axes, 0, 0, 360, cv.col(tree.color, gain), -1)
        cv2.ellipse(cv.labels, center, axes, 0, 0, 360, TERRAIN, -1)
    hi = (int(base[0] - 0.3 * tree.radius * k), int(cy - 0.35 * tree.radius * k))
    if len(blobs) > 1:
        cv2.ellipse(cv.image, hi, (max(int(0.35 * tree.radius * k), 1),) * 2, 0, 0, 360, cv.col(tree.color, 1.25), -1)


def _draw_vehicle(cv: _Canvas, d: float, v: _Vehicle) -> None:
    s0, s1 = v.lateral - v.width / 2, v.lateral + v.width / 2
    dark = np.array([22.0, 22.0, 24.0])
    glass = np.array([45.0, 55.0, 65.0]) + v.color * 0.1
    if d > 80:  # a few pixels across: the silhouette is all that shows
        cv.box(s0, s1, 0.2, v.height if v.kind != "car" else 1.2, d, d + v.length, v.color, VEHICLE)
        return
    for ws in ((s0, s0 + 0.3), (s1 - 0.3, s1)) if d < 60 else ():
        cv.box(ws[0], ws[1], 0.0, 0.7, d + 0.5, d + v.length - 0.5, dark, VEHICLE)
    if v.kind in ("truck", "bus"):
        near = cv.box(s0, s1, 0.35, v.height, d, d + v.length, v.color, VEHICLE)
        if near and (v.kind == "bus" or v.oncoming):
            cv.paint(cv.faces([(s0 + 0.1, s1 - 0.1, v.height * 0.55, v.height - 0.25)], d)[0], cv.col(glass))
        elif near:
            cv.paint(cv.faces([(v.lateral - 0.02, v.lateral + 0.02, 0.6, v.height - 0.1)], d)[0], cv.col(v.color, 0.6))
        body_top = 0.9
    else:
        body_top = 0.95 if v.kind == "car" else v.height * 0.55
        near = cv.box(s0, s1, 0.3, body_top, d, d + v.length, v.color, VEHICLE)
        inset = 0.12
        c0, c1 = (d + 0.25 * v.length, d + 0.8 * v.length) if v.kind == "car" else (d + 0.02, d + v.length - 0.5)
        if not v.oncoming and v.kind == "car":
            c0, c1 = d + 0.2 * v.length, d + 0.75 * v.length
        cabin_near = cv.box(s0 + inset, s1 - inset, body_top, v.height, c0, c1, v.color, VEHICLE)
        if cabin_near:
            window = (s0 + inset + 0.08, s1 - inset - 0.08, body_top + 0.05, v.height - 0.08)
            cv.paint(cv.faces([window], c0)[0], cv.col(glass))
    if near:
        lights = (250, 240, 210) if v.oncoming else (200, 20, 25)
        y0, y1 = body_top - 0.3, body_top - 0.1
        polys = cv.faces(
            [
                (s0 + 0.05, s0 + 0.35, y0, y1),
                (s1 - 0.35, s1 - 0.05, y0, y1),
                (v.lateral - 0.25, v.lateral + 0.25, 0.4, 0.52),
            ],
            d,
        )
        cv.paint(list(polys[:2]), cv.col(lights))
        cv.paint(polys[2], cv.col((225, 225, 215)))


def _draw_pedestrian(cv: _Canvas, d: float, lateral: float, p: _Pedestrian, t: float) -> None:
    on_walk = abs(lateral) > cv.road.half_width and cv.road.sidewalk > 0
    base = cv.project(lateral, cv.road.curb if on_walk else 0.0, np.array([d]))[0]
    k = cv.f / d * p.height / 1.75
    phase = np.sin((p.s0 + t * (abs(p.speed) + abs(p.cross_speed))) * 2.2)
    legs, torso, skin, hair = (cv.col(c) for c in p.colors)

    def quad(x0: float, y0: float, x1: float, y1: float, w0: float, w1: float) -> np.ndarray:
        pts = [[x0 - w0, y0], [x0 + w0, y0], [x1 + w1, y1], [x1 - w1, y1]]
        return np.rint(base + np.array(pts) * [k, -k]).astype(np.int32)

    swing = 0.22 * phase
    cv.fill(quad(-0.09 + swing, 0.0, -0.08, 0.9, 0.07, 0.09), legs, PEDESTRIAN)
    cv.fill(quad(0.09 - swing, 0.0, 0.08, 0.9, 0.07, 0.09), legs, PEDESTRIAN)
    cv.fill(quad(-0.24 - swing * 0.6, 0.8, -0.22, 1.42, 0.05, 0.05), torso, PEDESTRIAN)
    cv.fill(quad(0.24 + swing * 0.6, 0.8, 0.22, 1.42, 0.05, 0.05), torso, PEDESTRIAN)
    cv.fill(quad(0.0, 0.85, 0.0, 1.47, 0.17, 0.22), torso, PEDESTRIAN)
    head = (round(base[0]), round(base[1] - 1.6 * k))
    radius = max(round(0.115 * k), 1)
    cv2.circle(cv.image, head, radius, skin, -1)
    cv2.circle(cv.labels, head, radius, PEDESTRIAN, -1)
    cv2.ellipse(cv.image, head, (radius, radius), 0, 180, 360, hair, -1)


def _render(
    world: _World,
    cam: _Camera,
    s_cam: float,
    lateral: float,
    t: float,
    width: int,
    height: int,
    rng: np.random.Generator,
) -> Scene:
    cv = _Canvas(world, cam, s_cam, lateral, width, height)
    _draw_background(cv, rng)
    _draw_ground(cv)
    vehicles, peds = _positions(world, s_cam, t)
    _draw_shadows(cv, vehicles, peds)
    # Painter's algorithm: everything standing on the ground, far to near.
    items: list[tuple[float, Callable[[], None]]] = []
    items += [
        (b.s0 - s_cam, functools.partial(_draw_building, cv, b))
        for b in world.buildings
        if b.s0 - s_cam < cv.d_far and b.s0 + b.length - s_cam > _D_NEAR
    ]
    items += [
        (tr.s - s_cam, functools.partial(_draw_tree, cv, tr)) for tr in world.trees if _D_NEAR < tr.s - s_cam < cv.d_far
    ]
    # Tiny far obstacles are left out: a few pixels at model resolution, they would only teach noise.
    items += [(d, functools.partial(_draw_vehicle, cv, d, v)) for d, v in vehicles if d < min(cv.d_far, 200.0)]
    items += [
        (d, functools.partial(_draw_pedestrian, cv, d, lat, p, t)) for d, lat, p in peds if d < min(cv.d_far, 120.0)
    ]
    items.sort(key=lambda item: -item[0])
    for _, draw in items:
        draw()
    return Scene(image=_finish(cv.image, world.look, rng), labels=cv.labels)


def _finish(image: np.ndarray, look: _Look, rng: np.random.Generator) -> np.ndarray:
    """Camera effects that leave labels alone: optical blur and sensor noise."""
    h, w = image.shape[:2]
    ksize = 3 if w <= 1280 else 5
    image = cv2.GaussianBlur(image, (ksize, ksize), look.blur * max(w / 1280, 0.5))
    oy, ox = (int(v) for v in rng.integers(0, 32, 2))
    noise = _noise_bank(w, h)[oy : oy + h, ox : ox + w]
    return cv2.addWeighted(image, 1.0, noise, look.noise, -128.0 * look.noise)


def _make_camera(rng: np.random.Generator) -> _Camera:
    return _Camera(
        focal=float(rng.uniform(0.5, 0.75)),
        cx=float(rng.uniform(0.47, 0.53)),
        horizon=float(rng.uniform(0.38, 0.52)),
        height=float(rng.uniform(1.2, 1.7)),
    )


@dataclass(frozen=True)
class SceneGeometry:
    """Camera and road of a generated scene, for checking ground projections against the truth.

    The camera is a pinhole with intrinsics `k`, `camera_height` above the road, looking along the
    road with no pitch, roll or yaw (the horizon row is the principal point's). Edges are in the
    ROS body convention: metres to the left (+) of the camera, at each of `distances` ahead."""

    k: np.ndarray
    camera_height: float
    distances: np.ndarray
    left_edge: np.ndarray
    right_edge: np.ndarray
    elevation: np.ndarray  # road height relative to the road under the camera


def generate_scene(seed: int, width: int = 1280, height: int = 720) -> Scene:
    """One random driving scene, fully determined by `seed`."""
    return generate_scene_with_geometry(seed, width, height)[0]


def generate_scene_with_geometry(
    seed: int, width: int = 1280, height: int = 720, flat: bool = False
) -> tuple[Scene, SceneGeometry]:
    """`generate_scene` plus its geometry; `flat` removes hills (curves stay) so the road is the z = 0 plane."""
    rng = np.random.default_rng([seed, 0x5EE5])
    cam = _make_camera(rng)
    s_cam = float(rng.uniform(0, 5000))
    world, ego = _make_world(rng, s_cam, s_cam + 230, 0.0, 0.0)
    if flat:
        world = dataclasses.replace(world, road=dataclasses.replace(world.road, grade=np.zeros((0, 3))))
    lateral = world.road.lane_centre(ego) + float(rng.uniform(-0.6, 0.6))
    scene = _render(world, cam, s_cam, lateral, 0.0, width, height, rng)
    f = cam.focal * width
    k = np.array([[f, 0.0, cam.cx * width], [0.0, f, cam.horizon * height], [0.0, 0.0, 1.0]])
    centre, elevation = world.road.centre(s_cam, _D_GRID)
    hw = world.road.half_width  # the ROAD surface (lanes and parking strips) spans centre +- hw
    geometry = SceneGeometry(
        k=k,
        camera_height=cam.height,
        distances=_D_GRID.copy(),
        left_edge=lateral + hw - centre,  # image-right is +s in the road frame; ROS left is +y
        right_edge=lateral - hw - centre,
        elevation=elevation,
    )
    return scene, geometry


def generate_drive(
    frames: int, width: int = 1280, height: int = 720, seed: int = 0, fps: float = 15.0
) -> Iterator[Scene]:
    """A temporally coherent sequence: the camera drives along one curving road through one world."""
    rng = np.random.default_rng([seed, 0xD21E])
    cam = _make_camera(rng)
    speed = float(rng.uniform(7, 14))
    duration = frames / fps
    s_start = float(rng.uniform(0, 5000))
    world, ego = _make_world(rng, s_start, s_start + speed * duration + 230, speed, duration, crossing=False)
    centre = world.road.lane_centre(ego)
    sway_amp, sway_freq = float(rng.uniform(0, 0.4)), float(rng.uniform(0.05, 0.2))
    for i in range(frames):
        t = i / fps
        lateral = centre + sway_amp * np.sin(2 * np.pi * sway_freq * t)
        frame_rng = np.random.default_rng([seed, 0xD21E, i])
        yield _render(world, cam, s_start + speed * t, float(lateral), t, width, height, frame_rng)


def write_scenes(out_dir: Path, frames: int, width: int = 1280, height: int = 720, seed: int = 0) -> list[Path]:
    """Write a drive as `<i>.png` (RGB) and `<i>_labels.png` (uint8 class ids); returns the image paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, scene in enumerate(generate_drive(frames, width, height, seed)):
        image_path, label_path = out_dir / f"{i}.png", out_dir / f"{i}_labels.png"
        if not (
            cv2.imwrite(str(image_path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
            and cv2.imwrite(str(label_path), scene.labels)
        ):
            raise OSError(f"could not write scene {i} to {out_dir}")
        paths.append(image_path)
    return paths

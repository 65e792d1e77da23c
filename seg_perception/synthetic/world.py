"""The data model of a synthetic driving world: road, camera, roadside objects, traffic and appearance.

Positions along the road (`s`) are world distances travelled; `lateral` offsets are metres across the road
from its centre line. A world is immutable, so it can be rendered from any camera pose along the road.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_D_NEAR = 1.0  # metres; well below the bottom image row for every camera we draw
_D_GRID = np.geomspace(_D_NEAR, 400.0, 90)  # distances ahead at which the road is sampled and projected


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

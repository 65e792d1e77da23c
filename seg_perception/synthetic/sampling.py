"""Random worlds and cameras: the road, its look, buildings, trees, pedestrians and traffic, all from one rng.

The order of the draws from `rng` is part of the output: reordering them changes every generated scene.
"""

from __future__ import annotations

import numpy as np

from seg_perception.synthetic.world import (
    _Building,
    _Camera,
    _Look,
    _Pedestrian,
    _Road,
    _Tree,
    _Vehicle,
    _World,
)

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


def _make_camera(rng: np.random.Generator) -> _Camera:
    return _Camera(
        focal=float(rng.uniform(0.5, 0.75)),
        cx=float(rng.uniform(0.47, 0.53)),
        horizon=float(rng.uniform(0.38, 0.52)),
        height=float(rng.uniform(1.2, 1.7)),
    )

"""Rendering one frame of a world: sky, ground, shadows, then everything standing, far to near, then camera effects."""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from seg_perception.synthetic.canvas import _Canvas
from seg_perception.synthetic.labels import (
    BUILDING,
    LANE_MARKING,
    PEDESTRIAN,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEHICLE,
    Scene,
)
from seg_perception.synthetic.world import (
    _D_NEAR,
    _Building,
    _Camera,
    _Look,
    _Pedestrian,
    _Tree,
    _Vehicle,
    _World,
)


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

"""Procedural front-camera driving scenes with exact per-pixel labels (demo model label space).

Every surface is a polygon drawn twice with the same integer vertices and no antialiasing: once in a
realistic colour into the RGB image and once as its class id into the label map, so the labels are exact.
Only image-only effects (shadows, lighting, blur, sensor noise) come afterwards, and they leave labels alone.

Geometry: a pinhole camera rides above a road whose curvature and grade are sums of sinusoids of the
distance travelled, so a world can be rendered from any point along it; that is what makes
`generate_drive` temporally coherent. Distances ahead (`d`) are approximated by depth (small-angle road).

This module is the public entry point. The work lives in: `scene_labels` (label space, `Scene`),
`scene_world` (the world's data model), `scene_sampling` (random worlds and cameras), `scene_canvas`
(projection and paired image/label fills) and `scene_render` (drawing one frame).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.image_files import make_output_dir, write_image
from seg_perception.synthetic.canvas import Color
from seg_perception.synthetic.labels import (
    BUILDING,
    DEMO_CLASSES,
    IGNORE_ID,
    LANE_MARKING,
    PEDESTRIAN,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEHICLE,
    Scene,
    SceneClass,
)
from seg_perception.synthetic.render import _render
from seg_perception.synthetic.sampling import _make_camera, _make_world
from seg_perception.synthetic.world import _D_GRID

__all__ = [
    "BUILDING",
    "DEMO_CLASSES",
    "IGNORE_ID",
    "LANE_MARKING",
    "PEDESTRIAN",
    "ROAD",
    "SIDEWALK",
    "SKY",
    "TERRAIN",
    "VEHICLE",
    "Color",
    "Scene",
    "SceneClass",
    "SceneGeometry",
    "generate_drive",
    "generate_scene",
    "generate_scene_with_geometry",
    "generate_scenes",
    "write_scenes",
]


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


DRIVE_LEG_FRAMES = 1800  # frames per world of a drive (2 min at 15 Hz): bounds memory and per-frame work


def generate_drive(
    frames: int, width: int = 1280, height: int = 720, seed: int = 0, fps: float = 15.0
) -> Iterator[Scene]:
    """A temporally coherent sequence: the camera drives along one curving road through one world.

    Frames are made one at a time. A world holds every object the drive can pass, so its size grows
    with the drive's length; drives longer than DRIVE_LEG_FRAMES are therefore made of legs of that many
    frames, each through its own world (a cut, as between two recordings), so memory and the cost of a
    frame stay flat however many frames are asked for. A drive of up to DRIVE_LEG_FRAMES is one leg."""
    for leg, first in enumerate(range(0, frames, DRIVE_LEG_FRAMES)):
        leg_seed = [seed, 0xD21E] if leg == 0 else [seed, 0xD21E, 0x1E6, leg]
        yield from _drive_leg(leg_seed, seed, first, min(DRIVE_LEG_FRAMES, frames - first), width, height, fps)


def _drive_leg(
    leg_seed: list[int], seed: int, first: int, frames: int, width: int, height: int, fps: float
) -> Iterator[Scene]:
    rng = np.random.default_rng(leg_seed)
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
        frame_rng = np.random.default_rng([seed, 0xD21E, first + i])
        yield _render(world, cam, s_start + speed * t, float(lateral), t, width, height, frame_rng)


def generate_scenes(
    frames: int, width: int = 1280, height: int = 720, seed: int = 0, drive: bool = False
) -> Iterator[Scene]:
    """`frames` independent scenes (seeds `seed`, `seed + 1`, ...) or, with `drive`, one drive; lazily."""
    if drive:
        return generate_drive(frames, width, height, seed)
    return (generate_scene(seed + i, width, height) for i in range(frames))


def write_scenes(
    out_dir: Path, frames: int, width: int = 1280, height: int = 720, seed: int = 0, drive: bool = False
) -> int:
    """Write `<i>.png` (RGB) and `<i>_labels.png` (uint8 class ids) for scene i of `generate_scenes`,
    one scene at a time; returns the number written. Each file is renamed into place when complete,
    labels first, so an image on disk always has its labels beside it."""
    from tqdm import tqdm

    out_dir = make_output_dir(Path(out_dir))
    written = 0
    scenes = generate_scenes(frames, width, height, seed, drive)
    for i, scene in enumerate(tqdm(scenes, total=frames, unit="scene", desc="synth", disable=frames < 2)):
        write_image(out_dir / f"{i}_labels.png", scene.labels)
        write_image(out_dir / f"{i}.png", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        written += 1
    return written

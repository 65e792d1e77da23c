"""The demo model's label space and a labelled scene: an image with its exact per-pixel class ids."""

from __future__ import annotations

from dataclasses import dataclass

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

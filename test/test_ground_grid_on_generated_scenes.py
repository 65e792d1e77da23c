"""The bird's-eye grid of generated scenes puts the road edges where the generator drew them."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core.ground_grid import FREE, OCCUPIED, UNSEEN, GridSpec, GroundProjector, MountPose
from seg_perception.synthetic.scenes import DEMO_CLASSES, generate_scene_with_geometry

RES = 0.2
TOLERANCE_CELLS = 2
GRID = GridSpec(resolution=RES, width=110, height=200, origin_x=0.0, origin_y=-20.0, max_range=40.0)


def _lut() -> np.ndarray:
    """Drivable free, obstacles unseen (they hide the road edge: such columns are skipped), rest occupied."""
    table = np.full(256, UNSEEN, np.int8)
    for i, cls in enumerate(DEMO_CLASSES):
        table[i] = FREE if cls.drivable else UNSEEN if cls.obstacle else OCCUPIED
    return table


@pytest.mark.parametrize("seed", [3, 11, 27, 40, 58])
def test_road_edges_within_two_cells_out_to_20m(seed: int) -> None:
    scene, geo = generate_scene_with_geometry(seed, 1280, 720, flat=True)
    grid = GroundProjector(geo.k, MountPose(z=geo.camera_height), GRID, 1280, 720).project(scene.labels, _lut())
    ys = GRID.origin_y + (np.arange(GRID.height) + 0.5) * RES
    checked = 0
    for col in range(GRID.width):
        x = GRID.origin_x + (col + 0.5) * RES
        if not 5.0 <= x <= 20.0:
            continue
        for edge, side in (
            (np.interp(x, geo.distances, geo.left_edge), +1),
            (np.interp(x, geo.distances, geo.right_edge), -1),
        ):
            window = np.abs(ys - edge) <= 1.0
            cells = grid[window, col]
            if (cells == UNSEEN).any():  # outside the image, or hidden behind a vehicle or pedestrian
                continue
            free = ys[window][cells == FREE]
            assert len(free), f"x={x:.1f}: no drivable cell within 1 m of the edge at {edge:.2f}"
            measured = free.max() if side > 0 else free.min()
            assert abs(measured - edge) <= TOLERANCE_CELLS * RES, f"x={x:.1f}: edge {measured:.2f} vs {edge:.2f}"
            checked += 1
    assert checked >= 10, f"only {checked} road edges in view between 5 and 20 m"


def test_flat_option_keeps_the_scene_and_flattens_the_road() -> None:
    plain, geo = generate_scene_with_geometry(5, 320, 192)
    again, flat_geo = generate_scene_with_geometry(5, 320, 192, flat=True)
    assert np.allclose(flat_geo.elevation, 0.0)
    assert np.array_equal(geo.left_edge, flat_geo.left_edge)  # curves stay
    assert plain.labels.shape == again.labels.shape == (192, 320)

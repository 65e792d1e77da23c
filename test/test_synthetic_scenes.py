"""The synthetic scene generator is deterministic, well-formed, plausible and coherent over a drive."""

from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.synthetic.scenes import (
    DEMO_CLASSES,
    IGNORE_ID,
    Scene,
    generate_drive,
    generate_scene,
    write_scenes,
)

W, H = 640, 360
SEEDS = range(12)
ROAD, SKY, VEHICLE, PEDESTRIAN = 0, 5, 6, 7


@pytest.fixture(scope="module")
def sample() -> list[Scene]:
    return [generate_scene(seed, W, H) for seed in SEEDS]


def test_label_space_matches_the_demo_model() -> None:
    names = [c.name for c in DEMO_CLASSES]
    assert names == ["road", "lane_marking", "sidewalk", "terrain", "building", "sky", "vehicle", "pedestrian"]
    assert DEMO_CLASSES[0].color == (128, 64, 128)
    assert [c.name for c in DEMO_CLASSES if c.drivable] == ["road", "lane_marking"]
    assert [c.name for c in DEMO_CLASSES if c.obstacle] == ["vehicle", "pedestrian"]
    assert IGNORE_ID == 255


def test_same_seed_gives_identical_scene_and_different_seed_does_not() -> None:
    a, b, c = generate_scene(7, W, H), generate_scene(7, W, H), generate_scene(8, W, H)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.labels, c.labels)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (320, 192)])
def test_shapes_and_dtypes(width: int, height: int) -> None:
    scene = generate_scene(3, width, height)
    assert scene.image.shape == (height, width, 3)
    assert scene.image.dtype == np.uint8
    assert scene.labels.shape == (height, width)
    assert scene.labels.dtype == np.uint8


def test_every_label_is_a_demo_class(sample: list[Scene]) -> None:
    for scene in sample:
        assert int(scene.labels.max()) < len(DEMO_CLASSES)


def test_road_in_lower_half_and_sky_in_top_rows(sample: list[Scene]) -> None:
    for scene in sample:
        assert (scene.labels[H // 2 :] == ROAD).mean() > 0.05
        assert (scene.labels[: H // 10] == SKY).any()


def test_obstacles_appear_across_seeds(sample: list[Scene]) -> None:
    vehicles = [bool((s.labels == VEHICLE).any()) for s in sample]
    pedestrians = [bool((s.labels == PEDESTRIAN).any()) for s in sample]
    assert sum(vehicles) >= len(sample) // 2
    assert any(pedestrians)


def test_image_is_not_a_flat_palette(sample: list[Scene]) -> None:
    # Noise, blur and lighting make the image differ from the flat class colours everywhere.
    palette = np.array([c.color for c in DEMO_CLASSES], np.uint8)
    scene = sample[0]
    assert (scene.image != palette[scene.labels]).any(axis=-1).mean() > 0.9
    assert len(np.unique(scene.image.reshape(-1, 3), axis=0)) > 1000


def _label_change(a: Scene, b: Scene) -> float:
    return float((a.labels != b.labels).mean())


def _pixel_change(a: Scene, b: Scene) -> float:
    return float(np.abs(a.image.astype(np.int16) - b.image).mean())


def test_drive_frames_are_coherent(sample: list[Scene]) -> None:
    frames = list(generate_drive(6, W, H, seed=5))
    assert len(frames) == 6
    step_labels = np.mean([_label_change(a, b) for a, b in pairwise(frames)])
    step_pixels = np.mean([_pixel_change(a, b) for a, b in pairwise(frames)])
    pairs = list(zip(sample[::2], sample[1::2], strict=True))
    random_labels = np.mean([_label_change(a, b) for a, b in pairs])
    random_pixels = np.mean([_pixel_change(a, b) for a, b in pairs])
    assert step_labels < random_labels / 3
    assert step_pixels < random_pixels / 2
    assert not np.array_equal(frames[0].labels, frames[1].labels)  # the camera does move


def test_drive_is_deterministic_by_seed() -> None:
    a = list(generate_drive(2, 320, 192, seed=1))
    b = list(generate_drive(2, 320, 192, seed=1))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image)
        assert np.array_equal(x.labels, y.labels)


def _read_back(out: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    labels = cv2.imread(str(out / f"{i}_labels.png"), cv2.IMREAD_UNCHANGED)
    bgr = cv2.imread(str(out / f"{i}.png"), cv2.IMREAD_COLOR)
    assert labels is not None and bgr is not None
    assert labels.dtype == np.uint8
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels


def test_write_scenes_writes_independent_scenes_exactly(tmp_path: Path) -> None:
    out = tmp_path / "scenes"
    assert write_scenes(out, 3, 320, 192, seed=2) == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "0.png",
        "0_labels.png",
        "1.png",
        "1_labels.png",
        "2.png",
        "2_labels.png",
    ]
    for i in range(3):
        scene = generate_scene(2 + i, 320, 192)  # scene i is seed + i: independent of the others
        image, labels = _read_back(out, i)
        assert np.array_equal(labels, scene.labels)
        assert np.array_equal(image, scene.image)


def test_write_scenes_as_a_drive_writes_consecutive_frames(tmp_path: Path) -> None:
    out = tmp_path / "drive"
    assert write_scenes(out, 3, 320, 192, seed=2, drive=True) == 3
    for i, scene in enumerate(generate_drive(3, 320, 192, seed=2)):
        image, labels = _read_back(out, i)
        assert np.array_equal(labels, scene.labels)
        assert np.array_equal(image, scene.image)


def test_a_long_drive_is_made_of_legs_through_new_worlds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drive longer than one leg continues frame by frame within a leg and cuts to a new world between legs;
    the first leg is the drive a shorter request gives."""
    import seg_perception.synthetic.scenes as scenes

    monkeypatch.setattr(scenes, "DRIVE_LEG_FRAMES", 3)
    frames = list(scenes.generate_drive(6, W, H, seed=5))
    assert len(frames) == 6
    within = np.mean([_label_change(a, b) for a, b in (frames[0:2], frames[1:3], frames[3:5], frames[4:6])])
    assert within < _label_change(frames[2], frames[3]) / 3  # the cut between legs
    short = list(scenes.generate_drive(3, W, H, seed=5))
    for a, b in zip(frames[:3], short, strict=True):
        assert np.array_equal(a.image, b.image)

"""The health monitors on generated driving data: 2,000 good frames of varied scenes raise no flag, and
each condition made from them (frozen, black, saturated, covered lens, fog) is flagged with its reason
within flag_frames frames and cleared within clear_frames good frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from seg_perception.core.health import SAMPLE_SIZE, HealthMonitor, HealthThresholds
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter, drivable_table
from seg_perception.synthetic.labels import LANE_MARKING, ROAD
from seg_perception.synthetic.scenes import generate_drive, generate_scene

W, H = SAMPLE_SIZE
FLAG, CLEAR = HealthThresholds().flag_frames, HealthThresholds().clear_frames
FRAME_NS = 1_000_000_000 // 15
DRIVES, DRIVE_FRAMES, SCENES = 6, 250, 500  # 6 drives of 250 frames (one weather and road each) + 500 scenes

# The synthetic conditions, as the DDS test sends them too.
CONDITIONS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "black": ("dark", lambda img: np.zeros_like(img)),
    "saturated": ("saturated", lambda img: np.full_like(img, 255)),
    "covered_lens": ("blocked", lambda img: cv2.GaussianBlur(img, (0, 0), img.shape[1] / 50)),
    "fog": ("low_visibility", lambda img: (img.astype(np.float32) * 0.2 + 170).astype(np.uint8)),
}


def _drivable(labels: np.ndarray) -> np.ndarray:
    return np.where((labels == ROAD) | (labels == LANE_MARKING), 255, 0).astype(np.uint8)


def _good_streams() -> Iterator[Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Each drive, then the independent scenes as one stream of cuts: (image, exact labels)."""
    for seed in range(DRIVES):
        yield ((s.image, s.labels) for s in generate_drive(DRIVE_FRAMES, W, H, seed=100 + seed))
    yield ((s.image, s.labels) for s in (generate_scene(5000 + i, W, H) for i in range(SCENES)))


def test_two_thousand_good_frames_raise_no_flag() -> None:
    """The image checks and drivable_collapse over 2,000 varied frames, with the generator's exact labels
    standing in for a perfect model (the demo model's own outputs are the next test)."""
    frames, flagged, worst = 0, [], {"dark": 0.0, "saturated": 0.0, "blocked": 0.0}
    low_range, low_drivable = 255.0, 1.0
    for stream in _good_streams():
        monitor = HealthMonitor()
        for i, (image, labels) in enumerate(stream):
            reading = monitor.update(image, i * FRAME_NS, drivable=_drivable(labels))
            frames += 1
            if reading.flagged:
                flagged.append((frames, sorted(reading.flagged), reading.values))
            for k in worst:
                worst[k] = max(worst[k], reading.values[k])
            low_range = min(low_range, reading.values["low_visibility"])
            base = monitor.baselines["drivable_collapse"]
            if base == base:
                low_drivable = min(low_drivable, reading.values["drivable_collapse"] / base)
    assert frames == DRIVES * DRIVE_FRAMES + SCENES == 2000
    assert flagged == [], flagged[:5]
    # The margins the defaults keep on these frames (a regression that eats them shows here first).
    t = HealthThresholds()
    assert worst["dark"] < t.dark_share / 2 and worst["saturated"] < t.saturated_share / 2
    assert worst["blocked"] < t.blocked_share / 2 and low_range > t.low_visibility_range
    assert low_drivable > t.drivable_ratio


@pytest.fixture(scope="module")
def demo_segmenter() -> Iterator[Segmenter]:
    with Segmenter(load_model_spec(default_spec_path()), backend="onnxruntime") as seg:
        yield seg


def test_demo_model_outputs_on_good_drives_raise_no_flag(demo_segmenter: Segmenter) -> None:
    """Labels, confidence and drivable mask of the bundled model on two drives: no flag, and the learned
    confidence baseline is the model's own."""
    want = OutputSelection(drivable=True, confidence=True)
    for seed in (7, 8):
        monitor = HealthMonitor(drivable_table=drivable_table(demo_segmenter.spec))
        scenes = [s.image for s in generate_drive(120, W, H, seed=seed)]
        for start in range(0, len(scenes), 16):
            batch = scenes[start : start + 16]
            for i, (image, result) in enumerate(
                zip(batch, demo_segmenter.segment_batch(batch, "RGB", [want] * len(batch)), strict=True)
            ):
                reading = monitor.update(image, (start + i) * FRAME_NS, result.confidence, result.drivable)
                assert reading.flagged == frozenset(), (seed, start + i, reading.values)
        assert 0.5 < monitor.baselines["low_confidence"] <= 1.0
        assert 0.2 < monitor.baselines["drivable_collapse"] <= 1.0


@pytest.mark.parametrize("condition", sorted(CONDITIONS))
def test_each_condition_is_flagged_and_cleared(condition: str) -> None:
    reason, make = CONDITIONS[condition]
    scenes = [s.image for s in generate_drive(20 + FLAG + CLEAR, W, H, seed=11)]
    monitor = HealthMonitor()
    stamp = 0
    for image in scenes[:20]:
        assert monitor.update(image, stamp).flagged == frozenset()
        stamp += FRAME_NS
    bad = [
        reason in monitor.update(make(image), stamp + i * FRAME_NS).flagged
        for i, image in enumerate(scenes[20 : 20 + FLAG])
    ]
    assert bad == [False] * (FLAG - 1) + [True]
    stamp += FLAG * FRAME_NS
    good = [
        reason in monitor.update(image, stamp + i * FRAME_NS).flagged for i, image in enumerate(scenes[20 + FLAG :])
    ]
    assert good == [True] * (CLEAR - 1) + [False]


def test_a_frozen_drive_is_flagged_and_cleared() -> None:
    scenes = [s.image for s in generate_drive(10 + CLEAR, W, H, seed=12)]
    monitor = HealthMonitor()
    readings = [monitor.update(scenes[min(i, 9)], i * FRAME_NS) for i in range(10 + FLAG)]
    assert ["frozen" in r.flagged for r in readings[9:]] == [False] * FLAG + [True]  # the FLAG-th repeat
    after = [monitor.update(img, (20 + i) * FRAME_NS) for i, img in enumerate(scenes[10:])]
    assert ["frozen" in r.flagged for r in after] == [True] * (CLEAR - 1) + [False]

"""Each health check on constructed frames: its exact measured value, when it flags and when it clears."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.health import (
    REASONS,
    SAMPLE_SIZE,
    HealthLog,
    HealthMonitor,
    HealthReading,
    HealthThresholds,
    Hysteresis,
    health_report,
    low_detail_share,
)

W, H = SAMPLE_SIZE  # frames at the sample size: the sample is the frame itself, so values are exact
FLAG, CLEAR = HealthThresholds().flag_frames, HealthThresholds().clear_frames
SECOND = 1_000_000_000


def textured(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A frame full of detail and contrast that no check objects to."""
    return np.random.default_rng(seed).integers(30, 220, (h, w, 3), dtype=np.uint8)


def flat(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def feed(
    monitor: HealthMonitor, frames: list[np.ndarray], first_stamp: int = 0, **kw: np.ndarray
) -> list[HealthReading]:
    return [monitor.update(f, (first_stamp + i) * SECOND // 15, **kw) for i, f in enumerate(frames)]


def flagged_at(readings: list[HealthReading], reason: str) -> list[bool]:
    return [reason in r.flagged for r in readings]


def test_hysteresis_flags_after_n_bad_and_clears_after_m_good() -> None:
    h = Hysteresis(3, 5)
    assert [h.update(True) for _ in range(3)] == [False, False, True]
    assert h.update(None) is True  # not measured: no change
    assert [h.update(False) for _ in range(5)] == [True, True, True, True, False]
    assert [h.update(v) for v in (True, True, False, True, True, True)] == [False, False, False, False, False, True]


def test_frozen_counts_repeats_while_stamps_advance() -> None:
    m = HealthMonitor()
    still = textured(1)
    readings = feed(m, [still] * 5)
    assert [r.values["frozen"] for r in readings] == [0, 1, 2, 3, 4]
    assert flagged_at(readings, "frozen") == [False, False, False, True, True]  # the FLAG-th repeat
    # The same message again (its stamp does not advance) is a duplicate, not a frozen camera.
    again = m.update(still, 4 * SECOND // 15)
    assert again.values["frozen"] == 4 and "frozen" in again.flagged
    # One changed pixel of the sample ends the repeat; CLEAR good frames clear the flag.
    moving = [textured(10 + i) for i in range(CLEAR)]
    moving[0] = still.copy()
    moving[0][H // 2, W // 2, 1] ^= 1
    after = feed(m, moving, first_stamp=5)
    assert [r.values["frozen"] for r in after] == [0] * CLEAR
    assert flagged_at(after, "frozen") == [True] * (CLEAR - 1) + [False]


def test_frozen_reads_a_fixed_sample_of_a_large_frame() -> None:
    m = HealthMonitor()
    big = textured(2, 720, 1280)
    feed(m, [big, big.copy()])
    assert m.values["frozen"] == 1
    big2 = big.copy()
    big2[0, 0] ^= 1  # (0, 0) is a sampled pixel
    m.update(big2, 10 * SECOND)
    assert m.values["frozen"] == 0


def test_dark_share_and_flag() -> None:
    frame = textured(3)
    frame[: H * 9 // 10] = 19  # 90 % of the rows very dark (grey 19 < dark_level 20)
    m = HealthMonitor()
    readings = feed(m, [frame] * FLAG)
    assert readings[0].values["dark"] == pytest.approx(0.9, abs=1e-12)
    assert flagged_at(readings, "dark") == [False] * (FLAG - 1) + [True]
    frame[H * 9 // 10 - 1] = 20  # one row fewer (grey 20 is not very dark): 80 of 90 rows, below dark_share
    assert m.update(frame, SECOND).values["dark"] == pytest.approx(80 / 90)
    black = feed(HealthMonitor(), [flat(0)] * FLAG)
    assert black[-1].values["dark"] == 1.0 and {"dark", "blocked", "low_visibility"} <= black[-1].flagged
    assert black[-1].health == "failed"


def test_saturated_share_and_flag() -> None:
    frame = textured(4)
    frame[: H * 6 // 10] = 255
    m = HealthMonitor()
    readings = feed(m, [frame] * FLAG)
    assert readings[0].values["saturated"] == pytest.approx(0.6)
    assert flagged_at(readings, "saturated") == [False] * (FLAG - 1) + [True]
    frame[: H * 6 // 10] = 249  # just under saturated_level: not clipped
    assert m.update(frame, SECOND).values["saturated"] == 0.0
    assert feed(HealthMonitor(), [flat(255)])[0].values["saturated"] == 1.0


def test_blocked_share_of_low_detail_cells() -> None:
    grey = np.full((H, W), 128, np.uint8)
    assert low_detail_share(grey, 3.0) == 1.0
    # A checkerboard inside one grid cell (cells are 20 x 15; its Laplacian stays inside the cell).
    grey[2:13, 2:18] = np.where((np.indices((11, 16)).sum(axis=0) % 2) == 0, 100, 156)
    assert low_detail_share(grey, 3.0) == 47 / 48
    assert low_detail_share(np.random.default_rng(5).integers(0, 256, (H, W), dtype=np.uint8), 3.0) == 0.0
    # A frame whose upper half is featureless (24 of 48 cells) is not blocked; 30 of 48 are (>= 0.6).
    frame = textured(6)
    frame[: H // 2] = 128
    assert feed(HealthMonitor(), [frame])[0].values["blocked"] == 0.5
    frame[: H * 10 // 15 + 1] = 128  # 4 of 6 cell rows flat, and the row the Laplacian reads below them
    readings = feed(HealthMonitor(), [frame] * FLAG)
    assert readings[0].values["blocked"] == 32 / 48
    assert flagged_at(readings, "blocked") == [False] * (FLAG - 1) + [True]


def test_low_visibility_is_the_grey_range_between_percentiles() -> None:
    frame = textured(7)
    frame[:, : W // 2] = 100  # half the pixels at grey 100, half at grey 140
    frame[:, W // 2 :] = 140
    assert feed(HealthMonitor(), [frame])[0].values["low_visibility"] == 40
    frame[:, W // 2 :] = 180
    assert feed(HealthMonitor(), [frame])[0].values["low_visibility"] == 80
    foggy = (textured(8).astype(np.float32) * 0.2 + 160).astype(np.uint8)  # 30..220 pressed into 166..204
    readings = feed(HealthMonitor(), [foggy] * FLAG)
    assert readings[0].values["low_visibility"] < 40
    assert flagged_at(readings, "low_visibility") == [False] * (FLAG - 1) + [True]
    assert readings[-1].health == "degraded"


def test_low_confidence_against_the_learned_baseline() -> None:
    t = HealthThresholds(baseline_frames=4)
    m = HealthMonitor(t)
    frames = [textured(20 + i) for i in range(20)]
    high = np.full((H, W), 204, np.uint8)
    learned = feed(m, frames[:4], confidence=high)
    assert [r.values["low_confidence"] for r in learned] == [0.8] * 4
    assert m.baselines["low_confidence"] == pytest.approx(0.8)
    low = np.full((H, W), 142, np.uint8)  # 0.557 < 0.7 x 0.8 = 0.56
    readings = feed(m, frames[4 : 4 + FLAG], 4, confidence=low)
    assert readings[0].values["low_confidence"] == pytest.approx(142 / 255)
    assert flagged_at(readings, "low_confidence") == [False] * (FLAG - 1) + [True]
    assert readings[-1].health == "degraded"
    ok = np.full((H, W), 143, np.uint8)  # 0.561: above the limit
    cleared = feed(m, frames[10 : 10 + CLEAR], 10, confidence=ok)
    assert flagged_at(cleared, "low_confidence") == [True] * (CLEAR - 1) + [False]
    assert m.baselines["low_confidence"] == pytest.approx(0.8)  # learned once, then fixed


def test_low_confidence_baseline_skips_failed_frames_and_the_check_can_be_off() -> None:
    m = HealthMonitor(HealthThresholds(baseline_frames=2))
    feed(m, [flat(0)] * 3, confidence=np.full((H, W), 10, np.uint8))  # black: failed, not a baseline
    assert math.isnan(m.baselines["low_confidence"])
    off = HealthMonitor(HealthThresholds(confidence_ratio=0.0))
    assert math.isnan(off.update(textured(1), 0, confidence=np.zeros((H, W), np.uint8)).values["low_confidence"])


def test_drivable_collapse_against_the_running_baseline() -> None:
    t = HealthThresholds(baseline_frames=4)
    table = np.zeros(256, np.uint8)
    table[0] = 255  # label 0 is drivable
    m = HealthMonitor(t, table)
    frames = [textured(40 + i) for i in range(20)]
    half = np.zeros((H, W), np.uint8)
    half[H // 2 :, : W // 2] = 255  # half of the lower image
    learned = feed(m, frames[:4], drivable=half)
    assert [r.values["drivable_collapse"] for r in learned] == [0.5] * 4
    assert m.baselines["drivable_collapse"] == 0.5
    labels = np.ones((H, W), np.uint8)  # drivable read from the labels when no mask was computed
    labels[H - 4 :] = 0  # 4 of 45 lower rows: 0.0889 < 0.25 x 0.5
    readings = feed(m, frames[4 : 4 + FLAG], 4, labels=labels)
    assert readings[0].values["drivable_collapse"] == pytest.approx(4 / 45)
    assert flagged_at(readings, "drivable_collapse") == [False] * (FLAG - 1) + [True]
    assert m.baselines["drivable_collapse"] == 0.5  # bad frames do not pull the baseline down
    cleared = feed(m, frames[8 : 8 + CLEAR], 8, drivable=half)
    assert flagged_at(cleared, "drivable_collapse") == [True] * (CLEAR - 1) + [False]
    quarter = np.zeros((H, W), np.uint8)
    quarter[H // 2 :, : W // 4] = 255
    m.update(frames[15], 15 * SECOND, drivable=quarter)  # a good frame moves the running mean by 1/4
    assert m.baselines["drivable_collapse"] == pytest.approx(0.5 + (0.25 - 0.5) / 4)


def test_stale_is_a_gap_between_stamps() -> None:
    m = HealthMonitor(HealthThresholds(stale_s=2.0))
    m.update(textured(1), 0)
    gap = m.update(textured(2), 5 * SECOND // 2)
    assert gap.values["stale"] == 2.5 and gap.flagged == {"stale"} and gap.health == "degraded"
    assert m.update(textured(3), 3 * SECOND).flagged == frozenset()


def test_report_has_every_reason_and_names_the_flagged_ones() -> None:
    m = HealthMonitor()
    report = health_report(m, 0.5)
    assert report.values == {
        "health": "ok",
        **{f"health.{r}": "n/a" for r in REASONS if r != "stale"},
        "health.stale": "0.50",
        "health_baseline.low_confidence": "n/a",
        "health_baseline.drivable_collapse": "n/a",
    }
    assert report.message == ""
    feed(m, [flat(0)] * FLAG)
    report = health_report(m, 0.1)
    assert report.health == "failed" and report.message == "failed: dark, blocked, low_visibility"
    assert report.values["health.dark"] == "1.000" and report.values["health.frozen"] == "2"
    assert report.values["health.low_visibility"] == "0"
    stale = health_report(m, 4.0)
    assert stale.flagged == {"stale"} and stale.message == "degraded: stale"
    assert stale.values["health.stale"] == "4.00" and stale.values["health.dark"] == "1.000"
    good = HealthMonitor()
    feed(good, [textured(i) for i in range(3)])
    assert health_report(good, 3.5).message == "degraded: stale"


def test_log_lists_flagged_frames_and_their_spans() -> None:
    log = HealthLog()
    bad, good = HealthReading({}, frozenset({"dark"})), HealthReading({}, frozenset())
    for i, r in enumerate([good, bad, bad, good, bad, good]):
        log.add(i * 100, r)
    later = HealthLog()
    later.add(600, bad)
    log.extend(later)
    out = log.to_json()
    assert out["frames"] == 7 and out["flagged_frames"]["dark"] == 4 and out["flagged_frames"]["frozen"] == 0
    assert out["spans"] == {
        "dark": [
            {"first_ns": 100, "last_ns": 200, "seconds": 0.0, "frames": 2},
            {"first_ns": 400, "last_ns": 400, "seconds": 0.0, "frames": 1},
            {"first_ns": 600, "last_ns": 600, "seconds": 0.0, "frames": 1},
        ]
    }


def test_span_seconds_are_rounded_to_the_millisecond() -> None:
    log = HealthLog()
    dark = HealthReading({}, frozenset({"dark"}))
    log.add(1 * SECOND, dark)
    log.add(1 * SECOND + 1_234_567_000, dark)
    assert log.to_json()["spans"]["dark"] == [
        {"first_ns": SECOND, "last_ns": SECOND + 1_234_567_000, "seconds": 1.235, "frames": 2}
    ]
    # A span of 23 days keeps its milliseconds (nanoseconds / 1e9, exactly).
    long = HealthLog()
    long.add(0, dark)
    long.add(2_000_000 * SECOND, dark)
    assert long.to_json()["spans"]["dark"][0]["seconds"] == 2_000_000.0


def test_a_later_chunk_keeps_its_span_lengths_and_its_open_span_goes_on() -> None:
    dark = HealthReading({}, frozenset({"dark"}))
    log, later = HealthLog(), HealthLog()
    log.add(0, HealthReading({}, frozenset()))
    for stamp in (100, 200, 300):
        later.add(stamp, dark)
    log.extend(later)
    log.add(400, dark)  # the next frame after the later chunk: still the same span
    log.add(500, HealthReading({}, frozenset()))
    log.add(600, dark)
    assert log.to_json()["spans"]["dark"] == [
        {"first_ns": 100, "last_ns": 400, "seconds": 0.0, "frames": 4},
        {"first_ns": 600, "last_ns": 600, "seconds": 0.0, "frames": 1},
    ]
    assert log.to_json()["flagged_frames"]["dark"] == 5 and log.frames == 7


def test_frame_spans_by_name_for_frames_without_stamps() -> None:
    from seg_perception.core.health import frame_spans

    names = [f"img_{i:02d}.png" for i in range(8)]
    flagged = {
        1: frozenset({"dark"}),
        2: frozenset({"dark", "blocked"}),
        3: frozenset({"dark"}),
        5: frozenset({"dark"}),
        7: frozenset({"blocked"}),
        6: frozenset(),
    }
    out = frame_spans(flagged, names)
    assert out["frames"] == 8
    assert out["flagged_frames"] == {r: {"dark": 4, "blocked": 2}.get(r, 0) for r in REASONS}
    assert list(out["flagged_frames"]) == list(REASONS)
    assert out["spans"] == {
        "dark": [
            {"first": "img_01.png", "last": "img_03.png", "frames": 3},
            {"first": "img_05.png", "last": "img_05.png", "frames": 1},
        ],
        "blocked": [
            {"first": "img_02.png", "last": "img_02.png", "frames": 1},
            {"first": "img_07.png", "last": "img_07.png", "frames": 1},
        ],
    }
    assert frame_spans({}, []) == {"frames": 0, "flagged_frames": dict.fromkeys(REASONS, 0), "spans": {}}


# --- exact values and boundaries (each check on both sides of its threshold) ---------------------------------


def _grey_frame(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)  # R = G = B: the grey value is the level itself


def test_a_new_hysteresis_is_unflagged_and_none_changes_nothing() -> None:
    h = Hysteresis(3, 5)
    assert h.update(None) is False and h.flagged is False


def test_low_detail_share_is_the_mean_absolute_laplacian_per_cell() -> None:
    # Three dark points (75 on 100) in each 20 x 15 cell: |Laplacian| 100 at each point and 25 at its four
    # neighbours, so every cell's mean is (3 * 200) / 300 = 2.0 exactly.
    grey = np.full((H, W), 100, np.uint8)
    for cy in range(0, H, 15):
        for cx in range(0, W, 20):
            for dx, dy in ((3, 3), (9, 3), (15, 3)):
                grey[cy + dy, cx + dx] = 75
    assert low_detail_share(grey, 2.0) == 0.0  # not below 2.0
    assert low_detail_share(grey, 2.0001) == 1.0
    grey[0:15, 0:20] = 100  # one flat cell of 48
    assert low_detail_share(grey, 1.0) == 1 / 48


def test_baselines_are_the_mean_of_the_first_frames_then_a_running_mean() -> None:
    monitor = HealthMonitor(HealthThresholds(baseline_frames=2))
    lower = np.zeros((H, W), np.uint8)
    for i, (share, conf) in enumerate(((0.4, 102), (0.6, 153), (0.9, 51))):
        lower[:] = 0
        lower[H // 2 :].ravel()[: int(share * (H - H // 2) * W)] = 1
        monitor.update(textured(i), i * SECOND // 10, np.full((H, W), conf, np.uint8), lower)
        if i == 0:
            assert all(math.isnan(v) for v in monitor.baselines.values())
        if i == 1:
            assert monitor.baselines == pytest.approx({"low_confidence": 0.5, "drivable_collapse": 0.5})
    # drivable: 0.5 + (0.9 - 0.5) / 2; confidence: learned once, not a running mean
    assert monitor.baselines == pytest.approx({"low_confidence": 0.5, "drivable_collapse": 0.7})


def test_first_frame_and_stamp_values() -> None:
    monitor = HealthMonitor()
    first = monitor.update(np.zeros((H, W, 3), np.uint8), 10 * SECOND)
    assert (first.values["stale"], first.values["frozen"]) == (0.0, 0.0)
    assert monitor.update(textured(1), 10 * SECOND + SECOND // 10).values["stale"] == pytest.approx(0.1)
    monitor.update(textured(2), 5 * SECOND)  # a stamp going backwards
    assert monitor.update(textured(3), 6 * SECOND).values["stale"] == 0.0  # still behind the newest stamp


def test_a_gap_of_exactly_stale_s_is_not_stale() -> None:
    monitor = HealthMonitor()
    monitor.update(textured(0), 0)
    assert "stale" not in monitor.update(textured(1), 3 * SECOND).flagged
    assert "stale" in monitor.update(textured(2), 6 * SECOND + 1).flagged


def test_saturated_counts_the_saturated_level_itself() -> None:
    monitor = HealthMonitor()
    assert monitor.update(np.full((H, W, 3), 250, np.uint8), 0).values["saturated"] == 1.0
    assert monitor.update(np.full((H, W, 3), 249, np.uint8), SECOND // 10).values["saturated"] == 0.0


def test_low_visibility_is_the_2nd_to_98th_percentile_range() -> None:
    rng = np.random.default_rng(5)
    levels = np.array([0] * 144 + [100] * 7128 + [200] * 7128, np.uint8)  # 1 % black
    monitor = HealthMonitor()
    reading = monitor.update(_grey_frame(rng.permutation(levels).reshape(H, W)), 0)
    assert reading.values["low_visibility"] == 100.0  # the black 1 % is below the 2nd percentile
    exact = HealthMonitor()
    levels64 = np.array([100] * 7200 + [164] * 7200, np.uint8)  # a range of exactly 64: not low
    for i in range(FLAG + 1):
        reading = exact.update(_grey_frame(rng.permutation(levels64).reshape(H, W)), i * SECOND // 10)
    assert reading.values["low_visibility"] == 64.0 and "low_visibility" not in reading.flagged


def test_no_baseline_is_learned_while_a_failure_is_still_flagged() -> None:
    monitor = HealthMonitor(HealthThresholds(baseline_frames=1))
    black = np.zeros((H, W, 3), np.uint8)
    conf = np.full((H, W), 200, np.uint8)
    for i in range(FLAG):
        monitor.update(black + i % 2, i * SECOND // 10, conf)
    assert "dark" in monitor.flagged
    reading = monitor.update(textured(9), FLAG * SECOND // 10, conf)  # a good frame, dark still flagged
    assert "dark" in reading.flagged and math.isnan(monitor.baselines["low_confidence"])


def test_low_confidence_and_drivable_collapse_at_their_thresholds() -> None:
    t = HealthThresholds(baseline_frames=1, confidence_ratio=0.5, drivable_ratio=0.25)
    half = np.zeros((H, W), np.uint8)
    half.ravel()[::2] = 1
    conf_at = np.where(half == 1, 127, 128).astype(np.uint8)  # mean 127.5 / 255 = 0.5 exactly
    lower = H - H // 2
    drive_at = np.zeros((H, W), np.uint8)
    drive_at[H // 2 :].ravel()[: lower * W // 4] = 1  # a quarter of the lower half exactly
    for conf, drive, flagged in ((conf_at, drive_at, False), (conf_at - 1, drive_at * 0, True)):
        monitor = HealthMonitor(t)
        monitor.update(textured(0), 0, np.full((H, W), 255, np.uint8), np.ones((H, W), np.uint8))
        for i in range(1, FLAG + 1):
            reading = monitor.update(textured(i), i * SECOND // 10, conf, drive)
        assert ("low_confidence" in reading.flagged) is flagged
        assert ("drivable_collapse" in reading.flagged) is flagged


def test_drivable_collapse_is_not_measured_when_off_or_without_a_mask() -> None:
    table = np.zeros(256, np.uint8)
    table[1] = 1
    labels = np.ones((H, W), np.uint8)
    reading = HealthMonitor(drivable_table=table).update(textured(0), 0)  # neither mask nor labels
    assert math.isnan(reading.values["drivable_collapse"])
    off = HealthMonitor(HealthThresholds(drivable_ratio=0.0), drivable_table=table)
    assert math.isnan(off.update(textured(1), 0, drivable=labels).values["drivable_collapse"])
    assert math.isnan(off.update(textured(2), 1, labels=labels).values["drivable_collapse"])
    on = HealthMonitor(drivable_table=table)
    assert on.update(textured(3), 0, labels=labels).values["drivable_collapse"] == 1.0


def test_large_masks_are_read_at_their_nearest_pixels() -> None:
    # 1280 x 720 is 8 x the sample: nearest reads columns 0, 8, 16, ...; any blend would read the others.
    big = np.random.default_rng(3).integers(30, 220, (720, 1280, 3), dtype=np.uint8)
    every_8th = np.zeros((720, 1280), np.uint8)
    every_8th[:, ::8] = 1
    table = np.zeros(256, np.uint8)
    table[1] = 1
    monitor = HealthMonitor(drivable_table=table)
    reading = monitor.update(big, 0, confidence=every_8th * 255, drivable=(1 - every_8th) * 255)
    assert reading.values["low_confidence"] == 1.0 and reading.values["drivable_collapse"] == 0.0
    assert monitor.update(big[::-1], 1, labels=every_8th).values["drivable_collapse"] == 1.0


def test_the_report_of_a_camera_that_is_live_again_is_not_stale() -> None:
    monitor = HealthMonitor()
    monitor.update(textured(0), 0)
    monitor.update(textured(1), 10 * SECOND)  # a 10 s gap: stale on this frame
    assert "stale" in monitor.flagged
    report = health_report(monitor, since_input_s=0.1)
    assert report.flagged == frozenset() and report.values["health"] == "ok"
    at_limit = health_report(monitor, since_input_s=3.0)  # exactly stale_s: not yet stale
    assert "stale" not in at_limit.flagged and at_limit.values["health.stale"] == "3.00"


def test_blocked_counts_a_share_of_exactly_blocked_share() -> None:
    # Dotted cells (mean |Laplacian| 2.0, as above) in the left half, flat cells in the right: 24 of 48 low.
    grey = np.full((H, W), 100, np.uint8)
    for cy in range(0, H, 15):
        for cx in range(0, W // 2, 20):
            for dx, dy in ((3, 3), (9, 3), (15, 3)):
                grey[cy + dy, cx + dx] = 75
    monitor = HealthMonitor(HealthThresholds(blocked_detail=1.0, blocked_share=0.5))
    for i in range(FLAG):
        reading = monitor.update(_grey_frame(grey), i * SECOND // 10)
    assert reading.values["blocked"] == 0.5 and "blocked" in reading.flagged


def test_a_cell_whose_mean_equals_the_detail_threshold_is_not_below_it() -> None:
    # One point 3 under its flat surround: |Laplacian| 12 there and 3 at its four neighbours, 24 in a cell of
    # 300 pixels, a mean of 0.08 exactly; the other 47 cells are flat (mean 0).
    grey = np.full((H, W), 100, np.uint8)
    grey[7, 10] = 97
    assert low_detail_share(grey, 0.08) == 47 / 48
    assert low_detail_share(grey, math.nextafter(0.08, 1.0)) == 1.0
    assert low_detail_share(grey, 0.0) == 0.0 and low_detail_share(grey, math.nextafter(0.0, 1.0)) == 47 / 48


def test_the_first_frame_is_never_frozen_whatever_the_sample_buffers_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    # The buffers start uninitialised; here they happen to hold zeros, the same pixels as a black first frame.
    monkeypatch.setattr(np, "empty_like", np.zeros_like)
    readings = feed(HealthMonitor(), [flat(0), flat(0)])
    assert [r.values["frozen"] for r in readings] == [0.0, 1.0]

"""Diagnostics counters: received/processed/dropped split into replaced and lost in transport, bad frames per
reason, failures, and input/output rates measured between two snapshots on a controlled clock."""

from __future__ import annotations

import pytest

from seg_perception.core import frame_stats
from seg_perception.core.frame_stats import FrameStats, StatsSnapshot


class _Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_counters_add_up_exactly() -> None:
    stats = FrameStats()
    stats.on_received(False)
    stats.on_received(True)  # replaced the frame still waiting
    stats.on_received(False, lost_before=3)  # three sequence numbers never arrived
    stats.on_received(True, lost_before=2)
    stats.on_processed(5.0)
    stats.on_processed(7.0)
    stats.on_bad_frame("encoding")
    stats.on_bad_frame("encoding")
    stats.on_bad_frame()
    stats.on_failure()
    stats.on_failure()
    snap = stats.snapshot()
    assert (snap.received, snap.processed, snap.bad_frames, snap.failed) == (4, 2, 3, 2)
    assert (snap.replaced, snap.lost_in_transport, snap.dropped) == (2, 5, 7)
    assert snap.bad_by_reason == {"encoding": 2, "invalid": 1}
    assert (snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_max_ms) == pytest.approx((6.0, 6.9, 7.0))
    # The snapshot's dict is a copy: later bad frames do not change a snapshot already taken.
    stats.on_bad_frame("encoding")
    assert snap.bad_by_reason == {"encoding": 2, "invalid": 1}
    assert stats.snapshot().bad_by_reason == {"encoding": 3, "invalid": 1}


def test_lost_units_count_as_lost_and_dropped_without_a_frame_received() -> None:
    stats = FrameStats()
    stats.on_picture(True)
    stats.on_losses(4)  # a video stream's units lost before a resync that returned no picture
    stats.on_losses(1)
    snap = stats.snapshot()
    assert (snap.received, snap.replaced, snap.lost_in_transport, snap.dropped) == (1, 1, 5, 6)


def test_counting_stops_while_losses_cannot_be_told_and_resumes_after() -> None:
    """`loss_counted` follows the newest frame or unit; the frames not counted stay counted apart."""
    stats = FrameStats()
    stats.on_received(False, lost_before=2)
    assert stats.snapshot().loss_counted
    stats.on_received(False, lost_before=None)  # several publishers, none named
    stats.on_losses(None)
    stats.on_picture(False)  # a decoded picture says nothing about losses
    snap = stats.snapshot()
    assert (snap.loss_counted, snap.loss_not_counted, snap.lost_in_transport, snap.received) == (False, 2, 2, 3)
    stats.on_received(False, lost_before=0)  # one publisher again
    stats.on_losses(3)
    snap = stats.snapshot()
    assert (snap.loss_counted, snap.loss_not_counted, snap.lost_in_transport, snap.dropped) == (True, 2, 5, 5)


def test_a_fresh_monitor_reports_zeros() -> None:
    snap = FrameStats().snapshot()
    assert snap == StatsSnapshot(0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, {})


def test_rates_are_frames_since_the_previous_snapshot_over_the_time_between(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(100.0)
    monkeypatch.setattr(frame_stats.time, "monotonic", clock)
    stats = FrameStats()
    for _ in range(20):
        stats.on_received(False)
    for _ in range(10):
        stats.on_processed(1.0)
    clock.now = 102.0
    first = stats.snapshot()
    assert (first.input_rate_hz, first.output_rate_hz) == pytest.approx((10.0, 5.0))
    # The next rates count only what came after the first snapshot, over the time since it.
    for _ in range(3):
        stats.on_received(False)
    stats.on_processed(1.0)
    clock.now = 102.5
    second = stats.snapshot()
    assert (second.input_rate_hz, second.output_rate_hz) == pytest.approx((6.0, 2.0))
    assert (second.received, second.processed) == (23, 11)
    # Two snapshots at the same instant: no division by zero, no frames, rate 0.
    third = stats.snapshot()
    assert (third.input_rate_hz, third.output_rate_hz) == (0.0, 0.0)

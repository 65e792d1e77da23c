"""Diagnostics latency percentiles cover exactly the newest `window` frames, before and after the window wraps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seg_perception.core.frame_stats import FrameStats


def _expected(latencies: list[float], window: int) -> tuple[float, float, float]:
    recent = np.asarray(latencies[-window:], np.float64)
    return float(np.percentile(recent, 50)), float(np.percentile(recent, 95)), float(recent.max())


@pytest.mark.parametrize("frames", [1, 100, 255, 256, 257, 300, 511, 512, 1000])
def test_default_window_percentiles_are_over_the_newest_256_frames(frames: int) -> None:
    rng = np.random.default_rng(frames)
    latencies = list(rng.uniform(1.0, 50.0, frames))
    latencies[-1] = 80.0  # the newest frame is the slowest: the max must see it wherever it lands
    stats = FrameStats()
    for ms in latencies:
        stats.on_processed(ms)
    snap = stats.snapshot()
    assert snap.processed == frames
    got = (snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_max_ms)
    assert got == pytest.approx(_expected(latencies, 256))
    if frames > 256:  # an old outlier that left the window no longer counts
        stats.on_processed(1.0)
        assert stats.snapshot().latency_max_ms == 80.0  # the 80 ms frame is still among the newest 256
        for _ in range(256):
            stats.on_processed(2.0)
        snap = stats.snapshot()
        assert (snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_max_ms) == (2.0, 2.0, 2.0)


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(1, 9),
    latencies=st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=40),
)
def test_any_window_and_any_count_match_the_newest_frames(window: int, latencies: list[float]) -> None:
    stats = FrameStats(window=window)
    for ms in latencies:
        stats.on_processed(ms)
    snap = stats.snapshot()
    assert (snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_max_ms) == pytest.approx(
        _expected(latencies, window)
    )

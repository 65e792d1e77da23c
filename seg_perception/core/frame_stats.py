"""Counters, rates and latency percentiles for diagnostics; thread-safe and allocation-free per frame."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StatsSnapshot:
    """What one diagnostics message reports."""

    received: int
    processed: int
    dropped: int  # replaced + lost_in_transport
    bad_frames: int
    failed: int
    input_rate_hz: float
    output_rate_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_max_ms: float
    replaced: int = 0  # a newer frame replaced this one while it waited in the one-slot buffer
    lost_in_transport: int = 0  # gaps in the publishers' sequence numbers: DDS history overwrote them
    bad_by_reason: dict[str, int] = field(default_factory=dict)  # ImageCodecError.reason -> count
    # frames whose losses before them could not be counted (several publishers, and rclpy names none: Jazzy)
    loss_not_counted: int = 0
    loss_counted: bool = True  # the newest frame's losses were counted (False while they cannot be)


class FrameStats:
    """Totals plus a sliding window of recent latencies; rates are measured between snapshots."""

    def __init__(self, window: int = 256) -> None:
        self._lock = threading.Lock()
        self._latencies = np.zeros(window, np.float64)
        self._count = 0
        self.received = self.processed = self.dropped = self.bad_frames = self.failed = 0
        self.replaced = self.lost_in_transport = self.loss_not_counted = 0
        self.loss_counted = True
        self.bad_by_reason: dict[str, int] = {}
        self._last_time = time.monotonic()
        self._last_received = self._last_processed = 0

    def on_received(self, replaced_waiting: bool, lost_before: int | None = 0) -> None:
        """A frame arrived; it replaced an unprocessed one, and `lost_before` frames never reached us
        (None: how many is unknown)."""
        with self._lock:
            self._arrived(replaced_waiting)
            self._losses(lost_before)

    def on_picture(self, replaced_waiting: bool) -> None:
        """A decoded video picture reached the one-slot buffer; its unit's losses went to `on_losses`."""
        with self._lock:
            self._arrived(replaced_waiting)

    def _arrived(self, replaced_waiting: bool) -> None:
        self.received += 1
        self.replaced += int(replaced_waiting)
        self.dropped += int(replaced_waiting)

    def on_losses(self, lost: int | None) -> None:
        """Before one video unit, `lost` units never reached us (gaps in the publisher's sequence numbers);
        None: how many cannot be told (several publishers, and this rclpy names none)."""
        with self._lock:
            self._losses(lost)

    def _losses(self, lost: int | None) -> None:
        # Counting resumes with the first frame whose losses can be told again (the topic is back to one
        # publisher): the frames not counted meanwhile stay in loss_not_counted.
        self.loss_counted = lost is not None
        if lost is None:
            self.loss_not_counted += 1
            return
        self.lost_in_transport += lost
        self.dropped += lost

    def on_processed(self, latency_ms: float) -> None:
        with self._lock:
            self.processed += 1
            self._latencies[self._count % len(self._latencies)] = latency_ms
            self._count += 1

    def on_bad_frame(self, reason: str = "invalid") -> None:
        """A frame the decoder refused, counted in total and per kind of problem."""
        with self._lock:
            self.bad_frames += 1
            self.bad_by_reason[reason] = self.bad_by_reason.get(reason, 0) + 1

    def on_failure(self) -> None:
        with self._lock:
            self.failed += 1

    def snapshot(self) -> StatsSnapshot:
        """Totals, rates since the previous snapshot, and percentiles over the latency window."""
        with self._lock:
            now = time.monotonic()
            dt = max(now - self._last_time, 1e-9)
            in_rate = (self.received - self._last_received) / dt
            out_rate = (self.processed - self._last_processed) / dt
            self._last_time, self._last_received, self._last_processed = now, self.received, self.processed
            recent = self._latencies[: min(self._count, len(self._latencies))]
            p50, p95, top = (
                (np.percentile(recent, 50), np.percentile(recent, 95), recent.max()) if len(recent) else (0.0, 0.0, 0.0)
            )
            return StatsSnapshot(
                self.received,
                self.processed,
                self.dropped,
                self.bad_frames,
                self.failed,
                in_rate,
                out_rate,
                float(p50),
                float(p95),
                float(top),
                self.replaced,
                self.lost_in_transport,
                dict(self.bad_by_reason),
                self.loss_not_counted,
                self.loss_counted,
            )

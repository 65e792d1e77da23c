"""The node's per-frame time points make a latency budget whose stages add up to the end-to-end latency."""

from __future__ import annotations

import itertools

import pytest
from std_msgs.msg import Header

from seg_perception.bench.node_bench import stage_budget
from seg_perception.ros.drive_player import Received
from seg_perception.ros.stage_times import (
    POINTS,
    SPANS,
    STAGES,
    FrameTimes,
    points_from_message,
    stage_durations_ms,
    stage_times_message,
)

STAMP = 1_700_000_000_123_456_789


def _times(stamp: int = STAMP) -> FrameTimes:
    """Points 1.0 ms, 1.1 ms, 1.2 ms ... apart, so every stage has a different, known length."""
    values, at = {}, stamp
    for i, name in enumerate(POINTS):
        values[name] = at
        at += 1_000_000 + 100_000 * i
    return FrameTimes(**values)


def test_the_stages_run_back_to_back_from_stamp_to_recorder() -> None:
    chain = [(start, end) for _, start, end in STAGES]
    assert chain[0][0] == "stamp_ns" and chain[-1][1] == "recorder_ns"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), "a gap or overlap between stages"
    times = _times()
    points = {name: getattr(times, name) for name in POINTS}
    points |= {
        "recorder_dds_ns": times.labels_published_ns + 2_500_000,
        "recorder_ns": times.labels_published_ns + 7_000_000,
    }
    ms = stage_durations_ms(points)
    assert sum(ms[name] for name, _, _ in STAGES) == pytest.approx(ms["end_to_end"])
    assert ms["dds_in"] == pytest.approx(ms["camera_send"] + ms["dds_transport"] + ms["take"])
    assert ms["camera_send"] == pytest.approx(1.0) and ms["take"] == pytest.approx(1.2)
    assert (ms["dds_out_transport"], ms["recorder_take"], ms["dds_out"]) == pytest.approx((2.5, 4.5, 7.0))
    assert set(ms) == {name for name, _, _ in (*STAGES, *SPANS)}


def test_an_unknown_point_leaves_out_only_the_stages_it_bounds() -> None:
    times = _times()
    times.source_ns = 0  # a DDS that does not stamp samples
    ms = stage_durations_ms({name: getattr(times, name) for name in POINTS})
    assert "camera_send" not in ms and "dds_transport" not in ms and "dds_out" not in ms and "recorder_take" not in ms
    assert ms["take"] == pytest.approx(1.2) and ms["dds_in"] == pytest.approx(3.3)


def test_the_debug_message_carries_the_input_header_and_every_point() -> None:
    header = Header(frame_id="camera_front")
    header.stamp.sec, header.stamp.nanosec = divmod(STAMP, 1_000_000_000)
    msg = stage_times_message(header, _times())
    assert msg.header == header
    times = _times()
    assert points_from_message(msg) == {name: getattr(times, name) for name in POINTS}


def test_the_budget_takes_the_recorder_arrival_of_each_answer() -> None:
    first, second = _times(STAMP), _times(STAMP + 33_000_000)
    points = {t.stamp_ns: {n: getattr(t, n) for n in POINTS} for t in (first, second)}
    answers = [
        Received(first.stamp_ns, first.labels_published_ns + 2_000_000, None, first.labels_published_ns + 500_000),
        Received(second.stamp_ns, second.labels_published_ns + 4_000_000),  # no DDS reception time
        Received(STAMP + 66_000_000, STAMP + 90_000_000),  # no points arrived for it: left out
    ]
    budget = stage_budget(points, answers)
    assert budget["dds_out"] == {"p50": pytest.approx(3.0), "p95": pytest.approx(3.9), "frames": 2}
    assert budget["recorder_take"] == {"p50": pytest.approx(1.5), "p95": pytest.approx(1.5), "frames": 1}
    assert budget["segment"]["frames"] == 2

"""The node's per-frame time points make a latency budget whose stages add up to the end-to-end latency."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import image_msg, node_with_probe, stamp_ns, unique_domain_id
from std_msgs.msg import Header
from tiny_models import smooth_image

from seg_perception.bench.node_bench import stage_budget
from seg_perception.ros.drive_player import Received
from seg_perception.ros.stage_times import (
    POINTS,
    SPANS,
    STAGE_TIMES_TOPIC,
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


def test_the_node_publishes_each_frames_points_in_order_with_its_header(spec_path: Path) -> None:
    """With publish_stage_times the node sends, per frame, its points under the input header; each point
    is at or after the one before it (one clock), from the camera's stamp to the last output published."""
    params = {"model": str(spec_path), "backend": "onnxruntime", "publish_stage_times": True}
    with node_with_probe(unique_domain_id(), params) as (_, probe):
        probe.record(DiagnosticArray, STAGE_TIMES_TOPIC, "stage_times")
        frame = smooth_image(48, 64, seed=5)
        sent: list[int] = []

        def send_until_answered() -> bool:  # our subscription may match after a first frame: resend
            sent.append(time.time_ns())
            probe.image_pub.publish(image_msg(frame, "rgb8", sent[-1], frame_id="cam_stage"))
            return probe.poll_until(lambda: bool(probe.messages("stage_times")), 0.5)

        probe.wait_until(send_until_answered, 30.0, "a stage_times message")
        msg = probe.messages("stage_times")[0]
        assert stamp_ns(msg) in sent and msg.header.frame_id == "cam_stage"
        points = points_from_message(msg)
        assert set(points) == set(POINTS) and points["stamp_ns"] == stamp_ns(msg)
        ordered = [points[name] for name in POINTS if name not in ("source_ns", "dds_received_ns")]
        assert all(a <= b for a, b in itertools.pairwise(ordered)), points
        assert points["stamp_ns"] <= points["source_ns"] <= points["dds_received_ns"] <= points["callback_ns"]
        stamp = stamp_ns(msg)
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("labels")), 10.0, "its labels")

"""VideoCamera (ros/video_input.py) counts each lost unit once, in `frames_lost_in_transport`, even when the
resync that follows returns no picture; units it dropped because decoding fell behind are counted only in
`video_units_dropped_backlog`, never as lost in transport."""

from __future__ import annotations

import threading
import time

from sensor_msgs.msg import Image

from seg_perception.bag.video_topics import COMPRESSED_VIDEO
from seg_perception.ros.camera_channel import CameraChannel
from seg_perception.ros.video_input import MAX_BACKLOG, MAX_QUEUE_AGE_S, VideoCamera


def _info(seq: int) -> dict:
    return {"publication_sequence_number": seq, "publisher_gid": {"data": b"pub"}, "source_timestamp": 0}


def _drained(camera: VideoCamera, bad: int) -> None:
    deadline = time.monotonic() + 20
    while camera.channel.stats.snapshot().bad_frames < bad and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_sequence_gap_is_lost_once_and_a_backlog_drop_is_not_lost_in_transport() -> None:
    channel = CameraChannel("front", "front/")
    release = threading.Event()
    camera = VideoCamera(channel, threading.Condition(), Image, COMPRESSED_VIDEO)  # the bytes are no message
    try:
        camera.store(b"\x01", _info(1))
        camera.store(b"\x01", _info(5))  # units 2..4 never arrived: resync returns no picture
        _drained(camera, 2)
        snap = channel.stats.snapshot()
        assert (snap.lost_in_transport, snap.dropped, snap.bad_frames) == (3, 3, 2)

        camera.on_bad = lambda *_: release.wait(20)  # the decoder thread is stuck on the next unit
        camera.store(b"\x01", _info(6))
        time.sleep(0.2)
        for seq in range(7, 7 + MAX_BACKLOG + 1):  # the queue overflows once
            camera.store(b"\x01", _info(seq))
        release.set()
        _drained(camera, 4)
        time.sleep(0.2)
        snap = channel.stats.snapshot()
        assert camera.dropped_backlog == MAX_BACKLOG
        assert (snap.lost_in_transport, snap.dropped) == (3, 3)
        assert snap.bad_frames == 2 + 1 + 1  # the first two, unit 6, and the one unit left after the drop
    finally:
        release.set()
        camera.stop()


def test_units_queued_longer_than_the_age_limit_are_dropped_once() -> None:
    """A slow decoder must not feed stale pictures: when the oldest queued unit is older than
    MAX_QUEUE_AGE_S, the queue is dropped (counted once, in video_units_dropped_backlog) and decoding resyncs."""
    channel = CameraChannel("front", "front/")
    release = threading.Event()
    camera = VideoCamera(channel, threading.Condition(), Image, COMPRESSED_VIDEO)
    try:
        camera.on_bad = lambda *_: release.wait(20)  # the decoder thread is stuck on the first unit
        camera.store(b"\x01", _info(1))
        time.sleep(0.2)
        camera.store(b"\x01", _info(2))
        camera.store(b"\x01", _info(3))
        time.sleep(MAX_QUEUE_AGE_S + 0.1)
        camera.store(b"\x01", _info(4))  # units 2 and 3 are stale now
        assert camera.dropped_backlog == 2
        release.set()
        _drained(camera, 2)
        time.sleep(0.2)
        snap = channel.stats.snapshot()
        assert (snap.bad_frames, snap.lost_in_transport, snap.dropped) == (2, 0, 0)  # units 1 and 4 decoded
    finally:
        release.set()
        camera.stop()


def test_units_of_several_unnamed_publishers_are_said_not_counted_never_a_silent_0() -> None:
    """Jazzy's rclpy names no publisher: with two publishers on the video topic a gap cannot be told from
    another publisher's numbering, so the units are counted as "not counted" (diagnostics say so); once one
    publisher is left, its gaps count again."""
    channel = CameraChannel("front", "front/")
    camera = VideoCamera(channel, threading.Condition(), Image, COMPRESSED_VIDEO)
    publishers = 2
    camera.gaps.publisher_count = lambda: publishers
    try:
        for seq in (1, 5, 2, 9):
            camera.store(b"\x01", {"publication_sequence_number": seq, "source_timestamp": 0})
        _drained(camera, 4)
        snap = channel.stats.snapshot()
        assert (snap.loss_not_counted, snap.lost_in_transport, snap.dropped, snap.loss_counted) == (4, 0, 0, False)
        publishers = 1
        for seq in (10, 13):  # 11 and 12 lost
            camera.store(b"\x01", {"publication_sequence_number": seq, "source_timestamp": 0})
        _drained(camera, 6)
        snap = channel.stats.snapshot()
        assert (snap.loss_not_counted, snap.lost_in_transport, snap.dropped, snap.loss_counted) == (4, 2, 2, True)
    finally:
        camera.stop()

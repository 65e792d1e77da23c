"""When video decoding falls behind, the queue drops back to its newest fresh keyframe (ros/video_input.py), read
from each unit's serialized bytes in the callback (core/video_cdr.py), so decoding resumes there at once
instead of skipping units until the next keyframe arrives.

The keyframe bit is checked against messages serialized by rclpy itself (foxglove_msgs/CompressedVideo and
ffmpeg_image_transport_msgs/FFMPEGPacket stand-ins built from their definitions, in a child process: their
libraries load only at process start); the queue tests run a VideoCamera in this process on a controlled
clock, with its decoder thread held on a first bad unit while units queue up behind it.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from interface_packages import interface_env
from sensor_msgs.msg import Image

from seg_perception.bag.video_topics import COMPRESSED_VIDEO
from seg_perception.core.image_cdr import CdrReader, header_cdr
from seg_perception.core.video_cdr import compressed_video_keyframe, ffmpeg_packet_keyframe
from seg_perception.core.video_stream import is_keyframe
from seg_perception.ros import video_input
from seg_perception.ros.camera_channel import CameraChannel
from seg_perception.ros.video_input import MAX_BACKLOG, VideoCamera
from seg_perception.synthetic.scenes import generate_drive
from seg_perception.synthetic.video_drive import VideoSettings, encode_frames

W, H, GOP = 160, 96, 6
WAIT_S = 20.0


@pytest.fixture(scope="module")
def units() -> list[bytes]:
    """Two dozen H.264 access units in decode order (B-frames), a keyframe every GOP units."""
    pictures = [scene.image for scene in generate_drive(24, W, H, 0, fps=10.0)]
    out = [data for _, data in encode_frames(pictures, VideoSettings("libx264", gop=GOP, bframes=2), 10.0)]
    assert [k for k, u in enumerate(out) if is_keyframe("h264", u)] == [0, 6, 12, 18]
    return out


def _pad(offset: int, to: int = 4) -> bytes:
    return bytes(-(offset - 4) % to)


def compressed_video_cdr(sec: int, frame_id: str, data: bytes, fmt: str = "h264") -> bytes:
    """A serialized foxglove_msgs/CompressedVideo, little-endian (checked against rclpy's below)."""
    out = b"\x00\x01\x00\x00" + header_cdr(sec, 0, frame_id)
    out += _pad(len(out)) + struct.pack("<I", len(data)) + data
    text = fmt.encode() + b"\0"
    return out + _pad(len(out)) + struct.pack("<I", len(text)) + text


def _parse_compressed_video(raw: bytes, _msg_class: Any) -> Any:
    """rclpy's deserialize_message for the stand-in class this process cannot import."""
    r = CdrReader(raw, "foxglove_msgs/CompressedVideo")
    header = r.header()
    data = bytes(r.sequence("data"))
    (length,) = r.uint32s(1, "I")
    stamp = SimpleNamespace(sec=header.sec, nanosec=header.nanosec)
    return SimpleNamespace(timestamp=stamp, frame_id=header.frame_id, data=data, format=r.text(length, "format"))


SERIALIZE = """
import pickle, sys
from rclpy.serialization import serialize_message
from foxglove_msgs.msg import CompressedVideo
from ffmpeg_image_transport_msgs.msg import FFMPEGPacket
out = []
for k, (fmt, data, flags, frame_id) in enumerate(pickle.load(sys.stdin.buffer)):
    v = CompressedVideo()
    v.timestamp.sec, v.frame_id, v.data, v.format = k, frame_id, data, fmt
    p = FFMPEGPacket()
    p.header.stamp.sec, p.header.frame_id, p.width, p.height = k, frame_id, 160, 96
    p.encoding, p.pts, p.flags, p.is_bigendian, p.data = fmt + ";yuv420p", 1000 + k, flags, False, data
    out.append((bytes(serialize_message(v)), bytes(serialize_message(p))))
sys.stdout.buffer.write(pickle.dumps(out))
"""


def test_the_keyframe_bit_is_read_from_messages_rclpy_serialized(units: list[bytes]) -> None:
    # frame_ids of several lengths move every later field across alignment boundaries
    cases = [
        ("h264", units[0], 1, "cam"),
        ("h264", units[1], 0, "front_camera"),
        ("h264", units[6], 1, "ab"),
        ("h264", units[7], 0, ""),
        ("h264", units[2], 2, "x" * 7),
    ]
    result = subprocess.run(
        [sys.executable, "-c", SERIALIZE],
        input=pickle.dumps(cases),
        env=interface_env("foxglove_msgs", "ffmpeg_image_transport_msgs"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    serialized = pickle.loads(result.stdout)
    for k, ((_, data, flags, frame_id), (video, packet)) in enumerate(zip(cases, serialized, strict=True)):
        assert compressed_video_keyframe(video) is is_keyframe("h264", data), frame_id
        assert ffmpeg_packet_keyframe(packet) is bool(flags & 1), frame_id
        # the queue tests' messages are rclpy's, but for padding bytes (rmw leaves them undefined)
        ours = compressed_video_cdr(k, frame_id, data)
        assert len(ours) == len(video)
        assert _parse_compressed_video(ours, None) == _parse_compressed_video(video, None)
        assert _parse_compressed_video(video, None).data == data
    video, packet = serialized[0]
    assert compressed_video_keyframe(video[:-3]) is None  # truncated: cannot be told
    assert ffmpeg_packet_keyframe(packet[:40]) is None
    assert compressed_video_keyframe(b"") is None
    assert compressed_video_keyframe(compressed_video_cdr(0, "cam", units[0], "av1")) is None  # no keyframe bit
    assert compressed_video_keyframe(compressed_video_cdr(0, "cam", units[0], "mjpeg")) is None  # no such codec


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return time.time_ns()


class _HeldCamera:
    """A VideoCamera whose decoder thread is held on a first bad unit until `release()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = _Clock()
        monkeypatch.setattr(video_input, "time", self.clock)
        monkeypatch.setattr(video_input, "deserialize_message", _parse_compressed_video)
        self.channel = CameraChannel("front", "front/")
        self.camera = VideoCamera(self.channel, threading.Condition(), Image, COMPRESSED_VIDEO)
        self.held, self._release = threading.Event(), threading.Event()
        self.camera.on_bad = self._on_bad
        self.seq = 0
        self.store(b"\x00\x01\x00\x00not a message")
        assert self.held.wait(WAIT_S), "the decoder thread never took the first unit"

    def _on_bad(self, *args: Any) -> None:
        if not self.held.is_set():
            self.held.set()
            self._release.wait(WAIT_S)

    def store(self, raw: bytes) -> None:
        self.seq += 1
        self.camera.store(raw, {"publication_sequence_number": self.seq, "publisher_gid": {"data": b"p"}})

    def queued(self) -> list[tuple[int, bool]]:
        """(stamp second, after_drop) of each unit still queued."""
        return [(_parse_compressed_video(u.raw, None).timestamp.sec, u.after_drop) for u in self.camera._queue]

    def release_and_drain(self) -> None:
        self._release.set()
        deadline = time.monotonic() + WAIT_S
        while self.camera._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the last unit popped is decoded

    def close(self) -> None:
        self._release.set()
        self.camera.stop()


@pytest.fixture()
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[_HeldCamera]:
    camera = _HeldCamera(monkeypatch)
    yield camera
    camera.close()


def _cdr(units: list[bytes], k: int) -> bytes:
    return compressed_video_cdr(k, f"cam_{k}", units[k])


def test_a_stale_queue_drops_back_to_its_newest_fresh_keyframe_and_decoding_resumes_there(
    held: _HeldCamera, units: list[bytes]
) -> None:
    for k in range(6):  # the first GOP ...
        held.store(_cdr(units, k))
    held.clock.now += 0.3
    for k in range(6, 9):  # ... the second one's keyframe and two more
        held.store(_cdr(units, k))
    held.clock.now += 0.3  # the first GOP is stale now (0.6 s > MAX_QUEUE_AGE_S), the keyframe is not (0.3 s)
    held.store(_cdr(units, 9))
    assert held.camera.dropped_backlog == 6
    assert held.queued() == [(6, True), (7, False), (8, False), (9, False)]
    held.release_and_drain()
    counts = held.camera.decoder.counts
    assert counts.skipped_before_keyframe == 0  # resumed at unit 6, no unit waited for a later keyframe
    assert counts.pictures >= 1
    assert held.channel.stats.snapshot().bad_frames == 1  # the first unit only
    assert held.camera.diagnostics()["video_units_dropped_backlog"] == "6"


def test_without_a_fresh_keyframe_queued_the_whole_queue_goes(held: _HeldCamera, units: list[bytes]) -> None:
    for k in range(3, 9):
        held.store(_cdr(units, k))
    held.clock.now += 0.6  # the keyframe queued (unit 6) is stale too: resuming there would feed stale pictures
    held.store(_cdr(units, 9))
    assert held.camera.dropped_backlog == 6
    assert held.queued() == [(9, True)]
    held.release_and_drain()
    assert held.camera.decoder.counts.skipped_before_keyframe == 1  # unit 9 waits for the next keyframe


def test_a_keyframe_arriving_on_a_stale_queue_replaces_all_of_it(held: _HeldCamera, units: list[bytes]) -> None:
    for k in range(6):
        held.store(_cdr(units, k))
    held.clock.now += 0.3
    for k in range(6, 8):
        held.store(_cdr(units, k))
    held.clock.now += 0.3  # unit 0 is stale, keyframe 6 is not, but the new unit is a keyframe: freshest of all
    held.store(_cdr(units, 12))
    assert held.camera.dropped_backlog == 8
    assert held.queued() == [(12, True)]


def test_a_full_queue_drops_back_to_its_newest_keyframe(held: _HeldCamera, units: list[bytes]) -> None:
    stamps = [k % 24 for k in range(MAX_BACKLOG)]  # the stream over and over: a keyframe every 6 units
    for k in stamps:
        held.store(_cdr(units, k))
    assert held.camera.dropped_backlog == 0
    held.store(_cdr(units, 1))  # one more than the queue holds
    newest_key = max(i for i, k in enumerate(stamps) if k % GOP == 0)
    assert held.camera.dropped_backlog == newest_key
    assert held.queued() == [(stamps[newest_key], True)] + [(k, False) for k in stamps[newest_key + 1 :]] + [(1, False)]

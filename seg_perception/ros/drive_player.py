"""Play camera frames into a running node at a fixed rate and record what comes back (demo, benchmarks)."""

from __future__ import annotations

import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.core.image_cdr import header_cdr, image_cdr, parse_image
from seg_perception.ros.distro import MessageInfo
from seg_perception.ros.messages import image_message
from seg_perception.ros.subscription_loop import SubscriptionLoop


@dataclass
class Received:
    """One output message as it arrived: its input stamp, arrival time and (optionally) pixels."""

    stamp_ns: int
    arrived_ns: int  # the recorder's callback began (wall clock)
    pixels: np.ndarray | None = None
    dds_received_ns: int = 0  # DDS reception timestamp of the sample (0: not known)


@dataclass
class PlaybackLog:
    """What was sent and what came back, per output topic."""

    sent_stamps: list[int] = field(default_factory=list)
    outputs: dict[str, list[Received]] = field(default_factory=dict)

    def latencies_ms(self, topic: str) -> np.ndarray:
        """End-to-end latency per answered frame: arrival time minus input stamp (one clock)."""
        return np.array([(r.arrived_ns - r.stamp_ns) / 1e6 for r in self.outputs.get(topic, [])], np.float64)


def _stamp_ns(header: Header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def serialized_frame(frame: np.ndarray, frame_id: str = "camera_front") -> bytes:
    """An rgb8 frame serialized once (stamp 0), for `DrivePlayer.publish` to send with a fresh stamp and
    one copy, as a camera driver in C++ would, rather than building and serialising a Python message."""
    return image_cdr(header_cdr(0, 0, frame_id), frame, "rgb8")


def stamped(serialized: bytes, stamp_ns: int) -> bytes:
    """A little-endian serialized message that starts with a Header, with its stamp set (one copy)."""
    return b"".join((serialized[:4], struct.pack("<iI", *divmod(stamp_ns, 1_000_000_000)), serialized[12:]))


def _pixels(msg: Image) -> np.ndarray:
    """A copy of an 8-bit Image's pixels, (H, W) for mono8 and (H, W, 3) otherwise."""
    channels = 1 if msg.encoding == "mono8" else 3
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    return rows.reshape(shape).copy()


class DrivePlayer:
    """A node of its own context that publishes frames on `<ns>/image` and records `<ns>/segmentation/*`."""

    def __init__(
        self,
        domain_id: int,
        namespace: str,
        topics: Iterable[str],
        keep_pixels: Iterable[str] = (),
        reliable: bool = True,
    ) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("drive_player", namespace=namespace, context=self.context)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        self.publisher = self.node.create_publisher(Image, "image", qos)
        self.log = PlaybackLog()
        self._lock = threading.Lock()
        self.errors: list[str] = []  # a recorder callback that raised ended the recorder thread: its line
        self._loop = SubscriptionLoop(self.context, "drive player recorder", "drive_player_recorder", self._failed)
        keep = set(keep_pixels)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            self.log.outputs[topic] = []
            # Without pixels to keep, outputs are taken serialized: the recorder reads the stamp, and the
            # latency it measures holds no Python deserialisation of the recorder's own.
            # (a partial: rclpy calls it with the message info as it would a two-argument function, and Jazzy's
            # annotations name one-argument callbacks only)
            recorder = partial(self._record, topic, topic in keep)
            self.subscribe(Image, f"segmentation/{topic}", recorder, out_qos, raw=topic not in keep)

    def subscribe(
        self, msg_type: Any, topic: str, callback: Callable[..., None], qos: QoSProfile, **kwargs: Any
    ) -> Any:
        """A subscription on the player's node, taken by its recorder thread (a wait-set loop, not an executor:
        the recorder's `take` is part of the latency the bench measures)."""
        return self._loop.add(self.node.create_subscription(msg_type, topic, callback, qos, **kwargs))

    def _failed(self, line: str) -> None:
        """The recorder thread died: no output is recorded any more. Said on stderr at once, and kept."""
        self.errors.append(line)
        sys.stderr.write(line + "\n")

    def _record(self, topic: str, keep: bool, msg: Any, info: MessageInfo) -> None:
        arrived = time.time_ns()
        if keep:
            item = Received(_stamp_ns(msg.header), arrived, _pixels(msg))
        else:
            item = Received(parse_image(msg).header.stamp_ns, arrived)
        item.dds_received_ns = info.get("received_timestamp", 0)
        with self._lock:
            self.log.outputs[topic].append(item)

    def wait_for_node(self, timeout: float = 60.0, gave_up: Callable[[], bool] = lambda: False) -> bool:
        """True once the node subscribes to our frames and publishes every recorded topic; False after
        `timeout` or as soon as `gave_up()` (e.g. the node process exited)."""
        deadline = time.monotonic() + timeout
        ns = self.node.get_namespace().rstrip("/")
        while time.monotonic() < deadline and not gave_up():
            ready = self.publisher.get_subscription_count() > 0 and all(
                self.node.count_publishers(f"{ns}/segmentation/{t}") > 0 for t in self.log.outputs
            )
            if ready:
                return True
            time.sleep(0.05)
        return False

    def play(
        self,
        frames: Iterable[np.ndarray | bytes],
        rate_hz: float,
        frame_id: str = "camera_front",
        on_frame: Callable[[int], None] | None = None,
    ) -> None:
        """Publish rgb8 frames at a fixed rate (absolute schedule, so jitter does not accumulate)."""
        period = 1.0 / rate_hz
        start = time.monotonic()
        for i, frame in enumerate(frames):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publish(frame, frame_id)
            if on_frame is not None:
                on_frame(i)

    def publish(self, frame: np.ndarray | bytes, frame_id: str = "camera_front") -> int:
        """Publish one rgb8 frame stamped with the current time; returns the stamp in nanoseconds.
        `frame` may be a serialized Image (`serialized_frame`): then only its stamp is written."""
        now = time.time_ns()
        if isinstance(frame, bytes):
            self.publisher.publish(stamped(frame, now))
        else:
            header = Header(frame_id=frame_id)
            header.stamp.sec, header.stamp.nanosec = divmod(now, 1_000_000_000)
            self.publisher.publish(image_message(header, frame, "rgb8"))
        self.log.sent_stamps.append(now)
        return now

    def answered(self, topic: str = "labels") -> int:
        """How many outputs have arrived on a topic so far."""
        with self._lock:
            return len(self.log.outputs[topic])

    def received(self, topic: str = "labels", last: int | None = None) -> list[Received]:
        """A copy of the outputs that arrived on a topic so far (only the newest `last`, when given)."""
        with self._lock:
            items = self.log.outputs[topic]
            return list(items if last is None else items[-last:])

    def settle(self, quiet_s: float = 1.0, timeout: float = 10.0) -> None:
        """Wait until no output has arrived for `quiet_s` (the node has answered what it will)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            count = sum(len(v) for v in self.log.outputs.values())
            if count == last:
                return
            last = count
            time.sleep(quiet_s)

    def close(self) -> None:
        if self._loop.close():  # else a recorder callback still runs: its handles stay until the process ends
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

"""One camera's state inside the node: its one-slot frame buffer, publishers, counters and camera_info."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_perception.core.frame_stats import FrameStats
from seg_perception.core.ground_grid import GridSpec, GroundProjector, MountPose
from seg_perception.core.health import HealthMonitor, HealthThresholds
from seg_perception.core.image_cdr import FrameHeader, compressed_image_cdr, image_cdr
from seg_perception.core.label_png import PNG_MONO8_FORMAT, encode_label_png
from seg_perception.core.video_stream import DecodedPicture
from seg_perception.pipeline import OutputSelection, SegResult
from seg_perception.ros.distro import MessageInfo
from seg_perception.ros.messages import ros_header, scaled_camera_info
from seg_perception.ros.stage_times import FrameTimes

OUTPUT_TOPICS = ("labels", "drivable_mask", "overlay", "color_mask", "confidence")
# Lossless PNG twins (sensor_msgs/CompressedImage) of the mono8 masks -> the SegResult field they encode.
COMPRESSED_TOPICS = {"labels/compressed": "labels", "drivable_mask/compressed": "drivable"}
LISTENERS_REFRESH_S = 0.1  # how stale a subscriber count may be (a new subscriber waits at most this)
LIVE_FOR_S = 1.0  # a camera that sent nothing for this long is not waited for when batching
# Key of the sequence numbers of a topic's only publisher where rclpy gives no publisher_gid (Jazzy's).
SOLE_PUBLISHER = b""


@dataclass
class PendingFrame:
    """The newest unprocessed frame of a camera (serialized, or a message) and when it arrived."""

    msg: bytes | Image | CompressedImage | DecodedPicture  # DecodedPicture: from a video topic
    received: float  # time.monotonic()
    times: FrameTimes = field(default_factory=FrameTimes)


class SequenceGaps:
    """Messages a topic's publishers sent that never reached the callback, from their sequence numbers:
    the image topic's (CameraChannel) and a video topic's (ros/video_input.py) alike."""

    def __init__(self) -> None:
        self._last_sequence: dict[bytes, int] = {}
        # Publishers on the topic now (set by the node); asked only where message info has no
        # publisher_gid (Jazzy), to tell one publisher's sequence numbers from several interleaved ones.
        self.publisher_count: Callable[[], int] | None = None

    def lost_in_transport(self, info: MessageInfo) -> int | None:
        """Frames a publisher sent that never reached the callback (DDS history overwrote them); None when
        that cannot be told.

        Sequence numbers count per publisher: Kilted's rclpy names it (publisher_gid). Jazzy's gives the
        sequence number alone (its rmw message info has the publisher's gid, but rclpy 7.1 does not pass it
        on), so gaps are counted only while the topic has exactly one publisher; with several, None."""
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if not seq:
            return 0
        if gid:
            key = bytes(gid.get("data", b""))
        elif self.publisher_count is not None and self.publisher_count() == 1:
            key = SOLE_PUBLISHER
        else:  # several publishers without their ids: their sequence numbers interleave and tell nothing
            self._last_sequence.pop(SOLE_PUBLISHER, None)
            return None
        last = self._last_sequence.get(key)
        self._last_sequence[key] = seq
        return max(0, seq - last - 1) if last is not None else 0


class CameraChannel(SequenceGaps):
    """Topics of one camera: `<prefix>image` in, `<prefix>segmentation/*` out (prefix '' or 'front/')."""

    def __init__(
        self,
        name: str,
        prefix: str,
        mount: MountPose | None = None,
        health: HealthThresholds | None = None,
        drivable_table: np.ndarray | None = None,
    ) -> None:
        self.name = name
        self.health = HealthMonitor(health or HealthThresholds(), drivable_table)
        self.compute_confidence = False  # for the health checks, on frames nobody asks it of
        self.prefix = prefix
        self.mount = mount or MountPose()
        self._projector: tuple[tuple[float, ...], GroundProjector] | None = None
        self.last_grid: np.ndarray | None = None
        self.last_grid_time = 0.0
        self.stats = FrameStats()
        self.pending: PendingFrame | None = None
        self.camera_info: CameraInfo | None = None
        self.last_input = time.monotonic()
        self.publishers: dict[str, Any] = {}
        self.head_masks: tuple[str, ...] = ()  # per-head masks with a topic of their own (<name>_mask)
        self.info_publisher: Any = None
        self.subscription: Any = None
        self.info_subscription: Any = None
        self.qos_timer: Any = None
        SequenceGaps.__init__(self)
        self._listeners: dict[str, bool] = {}
        self._listeners_read = -math.inf
        self.computed = dict.fromkeys(OUTPUT_TOPICS, 0)  # frames for which each output was computed

    def topic(self, relative: str) -> str:
        return f"{self.prefix}{relative}"

    def is_live(self, now: float) -> bool:
        return now - self.last_input < LIVE_FOR_S

    def store(self, msg: Any, info: MessageInfo, cond: threading.Condition) -> None:
        """Subscription callback body: keep only the newest frame (its serialized bytes, as the node
        subscribes raw) and wake the worker. No parsing and no inference here."""
        times = FrameTimes(
            source_ns=info.get("source_timestamp", 0),
            dds_received_ns=info.get("received_timestamp", 0),
            callback_ns=time.time_ns(),
        )
        pending = PendingFrame(msg, time.monotonic(), times)
        lost = self.lost_in_transport(info)
        with cond:
            replaced = self.pending is not None
            self.pending = pending
            cond.notify()
        self.last_input = pending.received
        self.stats.on_received(replaced, lost)

    def take(self) -> PendingFrame | None:
        """The waiting frame, emptying the slot (the caller holds the condition passed to `store`)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.times.taken_ns = time.time_ns()
        return pending

    def listening(self, topic: str) -> bool:
        """Whether `topic` (a key of `publishers`, or "camera_info") has a subscriber. The counts are
        read from rmw at most every LISTENERS_REFRESH_S, not per frame and output."""
        now = time.monotonic()
        if now - self._listeners_read >= LISTENERS_REFRESH_S:
            pubs = {**self.publishers, "camera_info": self.info_publisher}
            self._listeners = {t: p is not None and p.get_subscription_count() > 0 for t, p in pubs.items()}
            self._listeners_read = now
        return self._listeners.get(topic, False)

    def forget_listeners(self) -> None:
        """Read the subscriber counts afresh next time (publishers were created or destroyed)."""
        self._listeners_read = -math.inf

    def wanted(self) -> OutputSelection:
        """Only outputs somebody subscribes to are computed."""
        has = self.listening
        return OutputSelection(
            drivable=has("drivable_mask") or has("drivable_mask/compressed"),
            color_mask=has("color_mask"),
            overlay=has("overlay"),
            confidence=has("confidence") or self.compute_confidence,  # low_confidence reads it
            masks=frozenset(name for name in self.head_masks if has(f"{name}_mask")),
        )

    def project(self, labels: np.ndarray, grid: GridSpec, lut: np.ndarray) -> np.ndarray | None:
        """This camera's bird's-eye grid from its labels; None until camera_info has arrived."""
        info = self.camera_info
        if info is None or not info.width or not info.height:
            return None
        h, w = labels.shape
        k = np.array(info.k, np.float64).reshape(3, 3)
        k[0] *= w / info.width  # intrinsics of the label image (it may be at model resolution)
        k[1] *= h / info.height
        key = (*k.ravel().tolist(), float(w), float(h))
        if self._projector is None or self._projector[0] != key:
            self._projector = (key, GroundProjector(k, self.mount, grid, w, h))
        self.last_grid = self._projector[1].project(labels, lut, out=self.last_grid)
        self.last_grid_time = time.monotonic()
        return self.last_grid

    def check_health(self, frame: np.ndarray, stamp_ns: int, result: SegResult) -> None:
        """Feed this camera's health checks one segmented frame (core/health.py)."""
        self.health.update(frame, stamp_ns, result.confidence, result.drivable, result.labels)

    def anyone_listening(self) -> bool:
        return any(self.listening(topic) for topic in (*self.publishers, "camera_info"))

    def publish(self, header: FrameHeader, result: SegResult, times: FrameTimes) -> None:
        """Every output carries the input header unchanged; labels go first (the latency that counts).
        Images go out serialized: each is one copy of its pixels behind the header's bytes; only topics
        somebody subscribes to are built (the labels are computed anyway: every other output needs them)."""
        if self.listening("labels"):
            labels = image_cdr(header.cdr, result.labels, "mono8")
            times.labels_built_ns = time.time_ns()
            self.publishers["labels"].publish(labels)
        else:
            times.labels_built_ns = time.time_ns()
        times.labels_published_ns = time.time_ns()
        self.computed["labels"] += 1
        for topic, array, encoding in (
            ("drivable_mask", result.drivable, "mono8"),
            ("overlay", result.overlay, "rgb8"),
            ("color_mask", result.color_mask, "rgb8"),
            ("confidence", result.confidence, "mono8"),
        ):
            self.computed[topic] += array is not None
            pub = self.publishers.get(topic)
            if array is not None and pub is not None and self.listening(topic):  # drivable may be for PNG only
                pub.publish(image_cdr(header.cdr, array, encoding))
        for topic, attr in COMPRESSED_TOPICS.items():  # PNG costs ms: only for somebody listening
            pub = self.publishers.get(topic)
            array = getattr(result, attr)
            if array is not None and pub is not None and self.listening(topic):
                pub.publish(compressed_image_cdr(header.cdr, PNG_MONO8_FORMAT, encode_label_png(array)))
        for name, mask in result.masks.items():
            pub = self.publishers.get(f"{name}_mask")  # head_masks leaves drivable_mask to the loop above
            if pub is not None:
                pub.publish(image_cdr(header.cdr, mask, "mono8"))
        info = self.camera_info
        if info is not None and self.info_publisher is not None and self.listening("camera_info"):
            h, w = result.labels.shape
            self.info_publisher.publish(scaled_camera_info(info, ros_header(header), w, h))
        times.outputs_published_ns = time.time_ns()

"""Video camera topics as node input: `<camera>/image/video`, foxglove_msgs/CompressedVideo or FFMPEGPacket.

With parameter `video_input` each camera also subscribes to `<prefix>image/video`; its message type is read
from the publishers on it (as `qos_reliability: auto` reads their reliability), so one topic name serves
Foxglove's CompressedVideo and ffmpeg_image_transport's FFMPEGPacket. Neither package is on PyPI: where the
publisher's type cannot be imported, the node says so in one warning line and /diagnostics `video_input`,
and the image inputs keep running.

A video decoder must see every access unit (later pictures reference earlier ones), so the subscription
callback only queues the serialized unit (and reads its keyframe bit); one thread per video camera
deserializes and decodes every unit in order (core/video_stream.VideoStreamDecoder: keyframes, B-frame
reordering, mid-GOP start, bad units counted) and puts each decoded picture into the camera's one-slot
buffer, where the next picture replaces it if the segmentation worker has not taken it yet: every unit is
decoded, only the newest picture is segmented. Each picture carries the stamp and frame_id of the message
that carried it.

Units lost on the way (publication sequence numbers) break the reference chain: the decoder waits for the
next keyframe, and the units skipped meanwhile are counted under `video_skipped_before_keyframe`. When
decoding falls behind (`MAX_BACKLOG` units queued, or the oldest queued longer than `MAX_QUEUE_AGE_S`), the
queue is dropped back to its newest keyframe that is still fresh (the callback reads each unit's keyframe bit
from its serialized bytes: core/video_cdr.py), so decoding resumes there at once instead of skipping to the
next keyframe; with none queued (or the new unit a keyframe itself) the whole queue goes. The units dropped
are counted under `video_units_dropped_backlog`.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile
from rclpy.serialization import deserialize_message

from seg_perception.bag.video_topics import COMPRESSED_VIDEO, FFMPEG_PACKET
from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_cdr import FrameHeader, frame_header
from seg_perception.core.video_cdr import AV_PKT_FLAG_KEY, compressed_video_keyframe, ffmpeg_packet_keyframe
from seg_perception.core.video_stream import BEFORE_KEYFRAME, DecodedPicture, VideoStreamDecoder
from seg_perception.ros.camera_channel import CameraChannel, PendingFrame, SequenceGaps
from seg_perception.ros.distro import MessageInfo
from seg_perception.ros.output_qos import RELIABILITY, matched_reliability
from seg_perception.ros.stage_times import FrameTimes

VIDEO_TOPIC: Final = "image/video"
# DDS type name -> (Python module, class) of the two video message types.
VIDEO_TYPES: Final = {
    COMPRESSED_VIDEO: ("foxglove_msgs.msg", "CompressedVideo"),
    FFMPEG_PACKET: ("ffmpeg_image_transport_msgs.msg", "FFMPEGPacket"),
}
# Keep-last depth of the video subscription: units must not be overwritten while the callback is late.
VIDEO_QOS_DEPTH: Final = 64
MAX_BACKLOG: Final = 120  # units queued for decoding; beyond it the queue is dropped and decoding resyncs
# Seconds the oldest queued unit may wait for the decoder; beyond it the queue is dropped and decoding
# resyncs (a slow decoder would otherwise feed pictures seconds stale).
MAX_QUEUE_AGE_S: Final = 0.5
UNDESERIALIZABLE: Final = "undeserializable_message"
TOO_LARGE: Final = "too_many_pixels"


def video_type_class(type_name: str) -> tuple[Any | None, str]:
    """The message class of a video type, or None and why it cannot be imported (the ImportError's text)."""
    module, name = VIDEO_TYPES[type_name]
    try:
        return getattr(importlib.import_module(module), name), ""
    except ImportError as exc:
        return None, str(exc)
    except AttributeError:
        return None, f"{module} has no {name}"


def video_off_reason(type_name: str, import_error: str) -> str:
    """The /diagnostics `video_input` value (and the warning's core) when a type's package is missing."""
    package = VIDEO_TYPES[type_name][0].split(".")[0]
    return f"off: {package} is not importable ({import_error}); install ros-<distro>-{package.replace('_', '-')}"


@dataclass(frozen=True)
class _Unit:
    """One queued access unit: its serialized message, when it arrived, units lost just before it, and
    whether units queued before it were dropped (decoding fell behind): either way the decoder resyncs."""

    raw: bytes
    received: float
    times: FrameTimes
    lost_before: int | None  # None: not countable (several publishers, and this rclpy names none)
    after_drop: bool = False
    keyframe: bool | None = None  # read from the serialized bytes; None: cannot be told


def backlog_cut(queue: deque[_Unit], now: float) -> int:
    """How many queued units to drop when decoding fell behind: those before the newest keyframe received
    within MAX_QUEUE_AGE_S (decoding resumes there), or all of them when no such keyframe is queued after
    the first unit."""
    for index in range(len(queue) - 1, 0, -1):
        unit = queue[index]
        if now - unit.received > MAX_QUEUE_AGE_S:
            break
        if unit.keyframe:
            return index
    return len(queue)


@dataclass(frozen=True)
class _Token:
    header: FrameHeader
    received: float
    times: FrameTimes


class VideoCamera:
    """One camera's video input: the subscription's queue and the thread that decodes it."""

    def __init__(self, channel: CameraChannel, cond: threading.Condition, msg_class: Any, type_name: str) -> None:
        self.channel = channel
        self.type_name = type_name
        self._msg_class = msg_class
        self._cond = cond  # the node's: guards the channel's pending slot and wakes its worker
        self._queue: deque[_Unit] = deque()
        self._queue_cond = threading.Condition()
        self._running = True
        self.decoder: VideoStreamDecoder[_Token] = VideoStreamDecoder(channel.topic(VIDEO_TOPIC))
        self.units = 0
        self.dropped_backlog = 0
        self.max_pixels: int | None = None
        self.on_bad: Any = None  # (channel, reason, text) -> None: the node's rate-limited warning
        self.gaps = SequenceGaps()  # its publisher_count is set by VideoInputs
        self._keyframe = compressed_video_keyframe if type_name == COMPRESSED_VIDEO else ffmpeg_packet_keyframe
        self._thread = threading.Thread(target=self._run, name=f"seg_perception_video_{channel.name}", daemon=True)
        self._thread.start()

    def store(self, msg: bytes, info: MessageInfo) -> None:
        """Subscription callback: queue the serialized unit and wake the decoder. No decoding here."""
        times = FrameTimes(
            source_ns=info.get("source_timestamp", 0),
            dds_received_ns=info.get("received_timestamp", 0),
            callback_ns=time.time_ns(),
        )
        now = time.monotonic()
        raw = bytes(msg)
        unit = _Unit(raw, now, times, self.gaps.lost_in_transport(info), keyframe=self._keyframe(raw))
        with self._queue_cond:
            self.units += 1
            queue = self._queue
            stale = bool(queue) and now - queue[0].received > MAX_QUEUE_AGE_S
            if stale or len(queue) >= MAX_BACKLOG:  # decoding fell behind: resume at the newest fresh keyframe
                cut = len(queue) if unit.keyframe else backlog_cut(queue, now)
                self.dropped_backlog += cut
                for _ in range(cut):
                    queue.popleft()
                if queue:  # the decoder resyncs before the keyframe kept
                    queue[0] = replace(queue[0], after_drop=True)
                else:
                    unit = replace(unit, after_drop=True)
            queue.append(unit)
            self._queue_cond.notify()
        self.channel.last_input = now

    def stop(self) -> None:
        with self._queue_cond:
            self._running = False
            self._queue_cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._queue_cond:
                while self._running and not self._queue:
                    self._queue_cond.wait(timeout=0.5)
                if not self._running:
                    return
                unit = self._queue.popleft()
            try:
                self._decode(unit)
            except Exception as exc:  # noqa: BLE001 - the decoder thread must survive anything a unit does
                self._bad("unexpected", f"unexpected {type(exc).__name__} while decoding video: {exc}")

    def _decode(self, unit: _Unit) -> None:
        # Counted once here, whether or not the resync below returns a picture.
        self.channel.stats.on_losses(unit.lost_before)
        if unit.lost_before or unit.after_drop:  # the reference chain broke: what the decoder holds is shown
            self._offer(self.decoder.resync())
        try:
            msg = deserialize_message(unit.raw, self._msg_class)
        except Exception as exc:  # noqa: BLE001 - rclpy raises its own error types for bad CDR
            self._bad(UNDESERIALIZABLE, f"a {self.type_name} message could not be deserialized: {exc}")
            return
        if self.type_name == COMPRESSED_VIDEO:
            fmt, stamp, frame_id, key = msg.format, msg.timestamp, msg.frame_id, None
        else:
            fmt, stamp, frame_id = msg.encoding, msg.header.stamp, msg.header.frame_id
            key = bool(msg.flags & AV_PKT_FLAG_KEY)
        token = _Token(frame_header(int(stamp.sec), int(stamp.nanosec), frame_id), unit.received, unit.times)
        try:
            pictures = self.decoder.push(fmt, bytes(msg.data), token, key)
        except ImageCodecError as exc:
            self._bad(exc.reason, f"a video unit was dropped: {exc}")
            return
        for _, reason in self.decoder.take_rejected():
            if reason != BEFORE_KEYFRAME:  # skipped, not bad: counted apart
                self._bad(reason, f"a video unit was dropped ({reason}): {self.decoder.last_error}")
        self._offer(pictures)

    def _offer(self, pictures: list[tuple[_Token, Any]]) -> None:
        """Each decoded picture into the one-slot buffer; a picture not yet taken is replaced (stale)."""
        for token, rgb in pictures:
            h, w = rgb.shape[:2]
            if self.max_pixels is not None and h * w > self.max_pixels:
                self._bad(TOO_LARGE, f"a {w}x{h} video picture has more than max_image_pixels")
                continue
            token.times.decoded_ns = time.time_ns()
            pending = PendingFrame(DecodedPicture(rgb, token.header), token.received, token.times)
            with self._cond:
                replaced = self.channel.pending is not None
                self.channel.pending = pending
                self._cond.notify()
            self.channel.stats.on_picture(replaced)

    def _bad(self, reason: str, text: str) -> None:
        self.channel.stats.on_bad_frame(reason)
        if self.on_bad is not None:
            self.on_bad(self.channel, reason, text)

    def diagnostics(self) -> dict[str, str]:
        counts = self.decoder.counts
        return {
            "video_units_received": str(self.units),
            "video_pictures_decoded": str(counts.pictures),
            "video_skipped_before_keyframe": str(counts.skipped_before_keyframe),
            "video_units_dropped_backlog": str(self.dropped_backlog),
        }


class VideoInputs:
    """The node's video subscriptions (parameter `video_input`): found by type, decoded off the callback."""

    def __init__(self, node: Any, enabled: bool) -> None:
        self._node = node
        self.enabled = enabled
        self._cameras: dict[str, VideoCamera] = {}
        self._state: dict[str, str] = {}
        self._subscriptions: dict[str, Any] = {}
        self._timer: Any = None
        self._warned: set[str] = set()
        self._warned_off = False
        self._cond: threading.Condition | None = None
        self._channels: list[CameraChannel] = []
        # The node's camera intake (ros/camera_intake.py), set by the node: the subscriptions live there.
        self.intake: Any = None

    def activate(self, channels: list[CameraChannel], cond: threading.Condition) -> None:
        if not self.enabled:
            return
        self._channels, self._cond = channels, cond
        errors = {t: video_type_class(t)[1] for t in VIDEO_TYPES}
        if all(errors.values()):  # neither type can be subscribed: say so once, the image inputs keep running
            reason = "off: " + " and ".join(f"{VIDEO_TYPES[t][0].split('.')[0]} ({e})" for t, e in errors.items())
            reason += " are not importable; install either message package"
            if not self._warned_off:
                self._warned_off = True
                self._node.get_logger().warning(f"video input is {reason}; the image inputs keep running")
            self._state = {ch.name: reason for ch in channels}
            return
        if not self._try_all():
            self._timer = self._node.create_timer(0.2, self._try_all)

    def _try_all(self) -> bool:
        done = all([self._try(ch) for ch in self._channels])  # a list: every camera is tried every time
        if done and self._timer is not None:
            self._timer.cancel()
            self._node.destroy_timer(self._timer)
            self._timer = None
        return done

    def _try(self, ch: CameraChannel) -> bool:
        """Subscribe once a publisher shows the topic's type; True when done (subscribed or off for good)."""
        if ch.name in self._subscriptions or self._state.get(ch.name, "").startswith("off"):
            return True
        node = self._node
        topic = node.resolve_topic_name(ch.topic(VIDEO_TOPIC))
        infos = [i for i in node.get_publishers_info_by_topic(topic) if i.topic_type in VIDEO_TYPES]
        others = {i.topic_type for i in node.get_publishers_info_by_topic(topic)} - set(VIDEO_TYPES)
        if not infos:
            self._state[ch.name] = f"waiting for a publisher on {topic}"
            if others and topic not in self._warned:
                self._warned.add(topic)
                node.get_logger().warning(
                    f"{topic} carries {', '.join(sorted(others))}, not a video type ({', '.join(VIDEO_TYPES)})"
                )
            return False
        type_name = infos[0].topic_type
        msg_class, error = video_type_class(type_name)
        if msg_class is None:
            self._state[ch.name] = video_off_reason(type_name, error)
            node.get_logger().warning(
                f"video input {topic} ({type_name}) is {self._state[ch.name]}; the image inputs keep running"
            )
            return True
        setting = node.config.qos_reliability
        reliability = RELIABILITY.get(setting) or matched_reliability([i.qos_profile.reliability for i in infos])
        if reliability is None:
            return False
        cond = self._cond
        if cond is None:
            return False
        camera = VideoCamera(ch, cond, msg_class, type_name)
        camera.max_pixels = node.config.max_image_pixels
        camera.on_bad = lambda c, reason, text: node._warn(f"video_{reason}", f"{c.name}: {text}")
        depth = max(node.config.qos_depth, VIDEO_QOS_DEPTH)
        create = self.intake.subscribe if self.intake is not None else node.create_subscription
        try:
            self._subscriptions[ch.name] = create(
                msg_class,
                topic,
                camera.store,
                QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability),
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=partial(node._on_incompatible, topic, "qos_reliability")
                ),
                raw=True,  # serialized bytes: deserialized and decoded by the camera's decoder thread
            )
        except Exception as exc:  # noqa: BLE001 - rclpy/rmw raise their own types; never into the executor
            camera.stop()  # its decoder thread is already running: it must not outlive the failed subscription
            self._state[ch.name] = f"off: cannot subscribe to {topic}: {type(exc).__name__}: {exc}"
            node.get_logger().error(f"video input {self._state[ch.name]}; the image inputs keep running")
            return True
        camera.gaps.publisher_count = partial(node.count_publishers, topic)
        self._cameras[ch.name] = camera
        self._state[ch.name] = f"{type_name} on {topic}"
        node.get_logger().info(f"subscribed to {topic} ({type_name}, {reliability.name.lower()}, depth {depth})")
        return True

    def deactivate(self) -> None:
        """Unsubscribe and stop the decoder threads (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._node.destroy_timer(self._timer)
            self._timer = None
        for name, sub in list(self._subscriptions.items()):
            if self.intake is not None:
                self.intake.unsubscribe(sub)
            else:
                self._node.destroy_subscription(sub)
            del self._subscriptions[name]
        for camera in self._cameras.values():
            camera.stop()
        self._cameras.clear()
        self._state = {k: v for k, v in self._state.items() if v.startswith("off")}

    def diagnostics(self, ch: CameraChannel) -> dict[str, str]:
        """/diagnostics keys of a camera's video input (none when `video_input` is false)."""
        if not self.enabled:
            return {}
        camera = self._cameras.get(ch.name)
        return {"video_input": self._state.get(ch.name, "not active"), **(camera.diagnostics() if camera else {})}

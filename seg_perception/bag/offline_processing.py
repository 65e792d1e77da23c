"""Segment every camera frame of a bag with no DDS, writing a new bag with the node's output topics.

The output bag holds every input message unchanged plus, per camera topic, `<ns>/segmentation/<output>`
Images carrying the input's header and recorded at the input's timestamp, exactly as the node would
publish them; `<ns>/segmentation/camera_info` follows when the bag has `<ns>/camera_info`.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rosbags.serde import SerdeError

from seg_perception.bag.bag_io import (
    CAMERA_INFO,
    CAMERA_TYPES,
    COMPRESSED_IMAGE,
    COMPRESSED_OUTPUTS,
    DEFAULT_OUTPUTS,
    DEFAULT_STORAGE,
    FFMPEG_PACKET,
    IMAGE,
    SEGMENTATION_OUTPUTS,
    VIDEO_TYPES,
    BagError,
    add_typed_connection,
    bag_writer,
    check_output_path,
    copy_connection,
    typestore,
)
from seg_perception.bag.bag_reader import open_bag, read_messages
from seg_perception.bag.split_bags import BagSplit
from seg_perception.bag.video_topics import VideoUnit, video_unit
from seg_perception.core import compressed_codec, image_codec
from seg_perception.core.errors import ImageCodecError
from seg_perception.core.health import HealthLog, HealthMonitor
from seg_perception.core.label_png import PNG_MONO8_FORMAT, encode_label_png
from seg_perception.core.model_spec import ModelSpec
from seg_perception.core.video_stream import (
    BEFORE_KEYFRAME,
    NO_PICTURE,
    VideoStreamDecoder,
    decoder_for,
    is_keyframe,
)
from seg_perception.pipeline import OutputSelection, Segmenter, SegResult, drivable_table

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.rosbag2 import Writer

LOG = logging.getLogger(__name__)

# Output name (as the node's topic) -> (SegResult field, encoding), in SEGMENTATION_OUTPUTS order.
_FIELDS = {
    "labels": ("labels", "mono8"),
    "drivable_mask": ("drivable", "mono8"),
    "overlay": ("overlay", "rgb8"),
    "color_mask": ("color_mask", "rgb8"),
    "confidence": ("confidence", "mono8"),
}
OUTPUTS: dict[str, tuple[str, str]] = {name: _FIELDS[name] for name in SEGMENTATION_OUTPUTS}
# <mask>/compressed -> the SegResult field written as PNG CompressedImage (COMPRESSED_OUTPUTS order).
_PNG_FIELDS = {"labels/compressed": "labels", "drivable_mask/compressed": "drivable"}
PNG_OUTPUTS: dict[str, str] = {name: _PNG_FIELDS[name] for name in COMPRESSED_OUTPUTS}
TimeRange = tuple[int | None, int | None]  # (start, stop) in bag time, ns; stop exclusive; None: open
# What deserializing a damaged message raises: rosbags' SerdeError, or Python's own from its generated code.
_BAD_CDR = (SerdeError, ValueError, IndexError, KeyError, TypeError, struct.error)
_BAD_FRAME = (ImageCodecError, *_BAD_CDR)
DETAILED_WARNINGS = 3  # bad frames described one by one; the rest are counted in the summary


def output_namespace(topic: str, msgtype: str) -> str:
    """The namespace a node segmenting `topic` runs in: the parent of the image (base) topic."""
    base = topic.rstrip("/")
    if msgtype == COMPRESSED_IMAGE and base.endswith("/compressed"):
        base = base[: -len("/compressed")]  # image_transport: <base>/compressed carries <base> as JPEG/PNG
    if msgtype == FFMPEG_PACKET and base.endswith("/ffmpeg"):
        base = base[: -len("/ffmpeg")]  # ffmpeg_image_transport's <base>/ffmpeg
    return base.rsplit("/", 1)[0]


def head_mask_outputs(spec: ModelSpec) -> tuple[str, ...]:
    """The output topics of the spec's per-head masks (`<name>_mask`), beyond drivable_mask."""
    return tuple(m.topic for m in spec.masks if m.topic not in OUTPUTS)


def default_outputs(spec: ModelSpec) -> tuple[str, ...]:
    """What `process` writes unless told otherwise: labels, the drivable mask and every head mask."""
    return (*DEFAULT_OUTPUTS, *head_mask_outputs(spec))


def output_selection(outputs: Iterable[str], spec: ModelSpec | None = None) -> OutputSelection:
    """The Segmenter outputs needed for the named output topics (labels are always computed)."""
    names = set(outputs)
    masks = head_mask_outputs(spec) if spec is not None else ()
    unknown = names - set(OUTPUTS) - set(PNG_OUTPUTS) - set(masks)
    if unknown:
        known = ", ".join((*OUTPUTS, *PNG_OUTPUTS, *masks))
        raise BagError(f"unknown outputs {', '.join(sorted(unknown))}; choose from {known}")
    return OutputSelection(
        drivable="drivable_mask" in names or "drivable_mask/compressed" in names,
        color_mask="color_mask" in names,
        overlay="overlay" in names,
        confidence="confidence" in names,
        masks=frozenset(n.removesuffix("_mask") for n in names if n in masks),
    )


@dataclass(frozen=True)
class _VideoToken:
    """What a video message's decoded picture is written with; `write` is False for the pictures a chunk
    decodes from the keyframe before its start only to reach its first frame."""

    timestamp: int
    header: Any
    write: bool


@dataclass
class _CameraStream:
    topic: str
    msgtype: str
    namespace: str
    outputs: dict[str, Connection] = field(default_factory=dict)
    info_out: Connection | None = None
    info: Any = None  # the latest CameraInfo on <ns>/camera_info
    health: HealthMonitor | None = None
    decoder: VideoStreamDecoder[_VideoToken] | None = None  # a video topic's decoder (stateful)

    @property
    def info_topic(self) -> str:
        return f"{self.namespace}/camera_info"


@dataclass
class ProcessSummary:
    """What one `process` run did."""

    frames: int = 0
    bad_frames: int = 0
    cameras: int = 0
    copied: int = 0
    outputs_written: int = 0
    seconds: float = 0.0
    segment_ms: float = 0.0  # summed Segmenter time (decode, serialization and I/O excluded)
    # Per camera topic: the frames each health check flagged and the spans they cover (core/health.py)
    health: dict[str, HealthLog] = field(default_factory=dict)
    skipped_before_keyframe: int = 0  # video messages before a topic's first keyframe (not decodable)
    bad_by_reason: dict[str, int] = field(default_factory=dict)  # bad_frames by reason (video: per unit)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def select_cameras(connections: Sequence[Connection], topics: Collection[str]) -> list[_CameraStream]:
    """The camera streams to segment: `topics`, or every image or video topic not itself an output."""
    cameras: dict[tuple[str, str], _CameraStream] = {}
    for conn in connections:
        if conn.msgtype not in CAMERA_TYPES:
            continue
        wanted = conn.topic in topics if topics else "/segmentation/" not in conn.topic
        if wanted:
            key = (conn.topic, conn.msgtype)
            cameras.setdefault(key, _CameraStream(conn.topic, conn.msgtype, output_namespace(conn.topic, conn.msgtype)))
    found = {cam.topic for cam in cameras.values()}
    missing = [t for t in topics if t not in found]
    if missing:
        available = sorted({c.topic for c in connections if c.msgtype in CAMERA_TYPES}) or ["none"]
        raise BagError(
            f"no image or video topic {', '.join(missing)} in the bag; camera topics: {', '.join(available)}"
        )
    if not cameras:
        raise BagError(
            "the bag has no sensor_msgs/Image, CompressedImage, foxglove_msgs/CompressedVideo or "
            "ffmpeg_image_transport_msgs/FFMPEGPacket topic to segment"
        )
    by_ns: dict[str, list[str]] = {}
    for cam in cameras.values():
        by_ns.setdefault(cam.namespace, []).append(cam.topic)
    for ns, names in by_ns.items():
        if len(names) > 1:
            raise BagError(
                f"camera topics {', '.join(names)} would all write {ns}/segmentation/*; choose one with --topics"
            )
    return list(cameras.values())


def cameras_in(bag: Path, connections: Sequence[Connection], topics: Collection[str]) -> list[_CameraStream]:
    """select_cameras, its refusal naming the bag."""
    try:
        return select_cameras(connections, topics)
    except BagError as exc:
        raise BagError(f"bag {bag}: {exc}") from None


def _image(header: Any, pixels: np.ndarray, encoding: str) -> Any:
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    return typestore().types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )


def _restamped_info(info: Any, header: Any, width: int, height: int) -> Any:
    """The camera's intrinsics with the image header, scaled to the output size (as the node does)."""
    sx = width / info.width if info.width else 1.0
    sy = height / info.height if info.height else 1.0
    k = np.array(info.k, np.float64).reshape(3, 3)
    p = np.array(info.p, np.float64).reshape(3, 4)
    k[:2] *= np.array([[sx], [sy]])
    p[:2] *= np.array([[sx], [sy]])
    return dataclasses.replace(info, header=header, width=width, height=height, k=k.ravel(), p=p.ravel())


def _decode(msg: Any, msgtype: str) -> tuple[np.ndarray, str]:
    if msgtype == COMPRESSED_IMAGE:
        return compressed_codec.compressed_to_inference_frame(msg.format, msg.data)
    return image_codec.to_inference_frame(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


class _Run:
    """One pass over the input bag, writing as it goes."""

    def __init__(self, writer: Writer, segmenter: Segmenter, outputs: Sequence[str], copy_inputs: bool) -> None:
        self.writer = writer
        self.copy_inputs = copy_inputs
        self.segmenter = segmenter
        self.outputs = tuple(outputs)
        self.want = output_selection(outputs, segmenter.spec)
        self.summary = ProcessSummary()
        self.copies: dict[int, Connection | None] = {}

    def prepare(self, connections: Sequence[Connection], cameras: list[_CameraStream]) -> None:
        info_topics = {c.topic for c in connections if c.msgtype == CAMERA_INFO}
        regenerated = {f"{cam.namespace}/segmentation/{name}" for cam in cameras for name in self.outputs}
        regenerated |= {f"{cam.namespace}/segmentation/camera_info" for cam in cameras if cam.info_topic in info_topics}
        segmented = {(cam.topic, cam.msgtype) for cam in cameras}
        for conn in connections:
            if (conn.topic, conn.msgtype) in segmented and not self.copy_inputs:
                self.copies[conn.id] = None  # the camera images: the bulk of a bag, copied only when asked
                continue
            if conn.topic in regenerated:
                LOG.warning("not copying the recorded %s: this run writes it afresh", conn.topic)
                self.copies[conn.id] = None
                continue
            copied = copy_connection(self.writer, conn)
            if copied is None:
                LOG.warning("not copying %s: no definition of %s in the bag or in ROS 2", conn.topic, conn.msgtype)
            self.copies[conn.id] = copied
        for cam in cameras:
            for name in self.outputs:
                msgtype = COMPRESSED_IMAGE if name in PNG_OUTPUTS else IMAGE
                cam.outputs[name] = add_typed_connection(self.writer, f"{cam.namespace}/segmentation/{name}", msgtype)
            if cam.info_topic in info_topics:
                info_out = f"{cam.namespace}/segmentation/camera_info"
                cam.info_out = add_typed_connection(self.writer, info_out, CAMERA_INFO)
        self.summary.cameras = len(cameras)

    def camera_info(self, cam: _CameraStream, timestamp: int, raw: bytes) -> None:
        try:
            cam.info = typestore().deserialize_cdr(raw, CAMERA_INFO)
        except _BAD_CDR as exc:
            LOG.warning("ignoring a bad camera_info on %s at %d ns: %s", cam.info_topic, timestamp, exc)

    def frame(self, cam: _CameraStream, timestamp: int, raw: bytes, write: bool = True) -> None:
        """Segment a camera message's frame; a video message gives the pictures now decoded (maybe none)."""
        store = typestore()
        if cam.msgtype in VIDEO_TYPES:
            self._video(cam, timestamp, raw, write)
            return
        try:
            msg: Any = store.deserialize_cdr(raw, cam.msgtype)
            frame, order = _decode(msg, cam.msgtype)
        except _BAD_FRAME as exc:
            self._bad_frame(cam.topic, timestamp, exc)
            return
        t0 = time.perf_counter()
        result = self.segmenter.segment(frame, order, self.want)
        self.summary.segment_ms += (time.perf_counter() - t0) * 1e3
        self._write_outputs(cam, timestamp, msg.header, result)
        self.summary.frames += 1
        self._check_health(cam, timestamp, msg.header, frame, result)

    def _check_health(
        self, cam: _CameraStream, timestamp: int, header: Any, frame: np.ndarray, result: SegResult
    ) -> None:
        """The node's health checks on this frame, at its header stamp (the bag's time where that is 0):
        low_confidence is measured only when the confidence output is written."""
        if cam.health is None:
            cam.health = HealthMonitor(drivable_table=drivable_table(self.segmenter.spec))
        stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec) or timestamp
        reading = cam.health.update(frame, stamp, result.confidence, result.drivable, result.labels)
        self.summary.health.setdefault(cam.topic, HealthLog()).add(stamp, reading)

    def _video(self, cam: _CameraStream, timestamp: int, raw: bytes, write: bool) -> None:
        if cam.decoder is None:
            cam.decoder = VideoStreamDecoder(cam.topic)
        decoder = cam.decoder
        try:
            unit = video_unit(typestore().deserialize_cdr(raw, cam.msgtype), cam.msgtype, typestore())
            pictures = decoder.push(unit.fmt, unit.data, _VideoToken(timestamp, unit.header, write), unit.keyframe)
        except _BAD_FRAME as exc:
            if write:
                self._bad_frame(cam.topic, timestamp, exc)
            return
        self._rejected(cam)
        self._pictures(cam, pictures)

    def _rejected(self, cam: _CameraStream) -> None:
        """Count the video units the decoder skipped or refused (only those this run writes)."""
        if cam.decoder is None:
            return
        for token, reason in cam.decoder.take_rejected():
            if not token.write:
                continue
            if reason == BEFORE_KEYFRAME:
                self.summary.skipped_before_keyframe += 1
            else:
                words = cam.decoder.last_error if reason != NO_PICTURE else "no picture decoded"
                self._bad_frame(cam.topic, token.timestamp, ImageCodecError(words or reason, reason))

    def _pictures(self, cam: _CameraStream, pictures: list[tuple[_VideoToken, np.ndarray]]) -> None:
        for token, rgb in pictures:
            if not token.write:
                continue
            t0 = time.perf_counter()
            result = self.segmenter.segment(rgb, "RGB", self.want)
            self.summary.segment_ms += (time.perf_counter() - t0) * 1e3
            self._write_outputs(cam, token.timestamp, token.header, result)
            self.summary.frames += 1
            self._check_health(cam, token.timestamp, token.header, rgb, result)

    def finish(self, cameras: Iterable[_CameraStream]) -> None:
        """Decode and write the pictures the video decoders still hold (their reordering delay)."""
        for cam in cameras:
            if cam.decoder is None:
                continue
            self._pictures(cam, cam.decoder.flush())
            self._rejected(cam)

    def _write_outputs(self, cam: _CameraStream, timestamp: int, header: Any, result: SegResult) -> None:
        store = typestore()
        for name, conn in cam.outputs.items():
            if name in PNG_OUTPUTS:
                self._write_png(conn, timestamp, header, getattr(result, PNG_OUTPUTS[name]), name)
                continue
            attr, encoding = OUTPUTS.get(name, ("", "mono8"))
            pixels = getattr(result, attr) if attr else result.masks.get(name.removesuffix("_mask"))
            if pixels is None:
                raise BagError(f"the segmenter did not produce {name}")
            self.writer.write(conn, timestamp, store.serialize_cdr(_image(header, pixels, encoding), IMAGE))
            self.summary.outputs_written += 1
        if cam.info_out is not None and cam.info is not None:
            height, width = result.labels.shape
            info = _restamped_info(cam.info, header, width, height)
            self.writer.write(cam.info_out, timestamp, store.serialize_cdr(info, CAMERA_INFO))
            self.summary.outputs_written += 1

    def _write_png(self, conn: Connection, timestamp: int, header: Any, pixels: np.ndarray | None, name: str) -> None:
        if pixels is None:
            raise BagError(f"the segmenter did not produce {name}")
        msg = typestore().types[COMPRESSED_IMAGE](header=header, format=PNG_MONO8_FORMAT, data=encode_label_png(pixels))
        self.writer.write(conn, timestamp, typestore().serialize_cdr(msg, COMPRESSED_IMAGE))
        self.summary.outputs_written += 1

    def _bad_frame(self, topic: str, timestamp: int, exc: Exception, count: int = 1) -> None:
        self.summary.bad_frames += count
        reason = getattr(exc, "reason", "bad_serialization" if not isinstance(exc, ImageCodecError) else "invalid")
        self.summary.bad_by_reason[reason] = self.summary.bad_by_reason.get(reason, 0) + count
        if self.summary.bad_frames <= DETAILED_WARNINGS:
            LOG.warning("skipping a bad frame on %s at %d ns: %s (%s)", topic, timestamp, exc, reason)
        elif self.summary.bad_frames == DETAILED_WARNINGS + 1:
            LOG.warning("more bad frames; the summary counts them")

    def copy(self, conn: Connection, timestamp: int, raw: bytes) -> None:
        out = self.copies.get(conn.id)
        if out is not None:
            self.writer.write(out, timestamp, raw)
            self.summary.copied += 1


def process_bag(
    in_bag: Path,
    out_bag: Path,
    segmenter: Segmenter,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    topics: Collection[str] = (),
    storage: str = DEFAULT_STORAGE,
    force: bool = False,
    progress: bool = True,
    compression: str = "",
    time_range: TimeRange = (None, None),
    on_frame: Callable[[], None] | None = None,
    copy_inputs: bool = False,
    split: BagSplit | None = None,
) -> ProcessSummary:
    """Segment every frame of the camera topics of `in_bag` into a new bag at `out_bag` (all or nothing).

    `time_range` (start, stop) in bag time, ns, stop exclusive, None for open, limits the run to the
    messages recorded in it (a chunk of a long bag): each camera starts from the latest camera_info
    recorded before `start`, so chunks merged in time order equal the whole bag processed at once.
    `compression` "file" or "message" writes `out_bag` zstd-compressed in that rosbag2 mode; `split` writes
    it as several storage files (bag/split_bags.py).
    `on_frame` is called after each segmented frame (a fleet's progress bar; the fleet turns `progress` off).
    Every recorded topic is copied (camera_info, tf, ...) except the segmented camera images themselves,
    which only `copy_inputs` copies: they are nearly all of a bag's bytes, and the outputs carry the input
    headers, so the input bag and the output bag play together (`replay` each, or `ros2 bag play` both).
    """
    from tqdm import tqdm

    if not outputs:
        raise BagError("choose at least one output, e.g. --outputs labels")
    output_selection(outputs, segmenter.spec)
    check_output_path(out_bag, force, inputs=[in_bag])
    start = time.perf_counter()
    with open_bag(in_bag) as reader:
        connections = list(reader.connections)
        cameras = cameras_in(in_bag, connections, topics)
        by_key = {(cam.topic, cam.msgtype): cam for cam in cameras}
        info_for = {cam.info_topic: cam for cam in cameras}
        whole = time_range == (None, None)
        total = sum(c.msgcount for c in connections if (c.topic, c.msgtype) in by_key) if whole else None
        range_start, range_stop = time_range
        with (
            bag_writer(out_bag, storage, force, compression, split) as writer,
            tqdm(total=total, unit="frame", desc="process", disable=not progress) as bar,
        ):
            run = _Run(writer, segmenter, outputs, copy_inputs)
            run.prepare(connections, cameras)
            info_connections = [c for c in connections if c.msgtype == CAMERA_INFO and c.topic in info_for]
            if range_start is not None and info_connections:  # a chunk: the camera_info in force at its start
                for conn, timestamp, raw in read_messages(reader, info_connections, stop=range_start):
                    run.camera_info(info_for[conn.topic], timestamp, raw)
            if range_start is not None:  # a chunk: video decodes from the keyframe before its start
                _warm_up_video(reader, connections, by_key, run, range_start)
            for conn, timestamp, raw in read_messages(reader, start=range_start, stop=range_stop):
                run.copy(conn, timestamp, raw)
                if conn.msgtype == CAMERA_INFO and conn.topic in info_for:
                    run.camera_info(info_for[conn.topic], timestamp, raw)
                cam = by_key.get((conn.topic, conn.msgtype))
                if cam is not None:
                    run.frame(cam, timestamp, raw)
                    bar.update()
                    if on_frame is not None:
                        on_frame()
            run.finish(cameras)
    run.summary.seconds = time.perf_counter() - start
    return run.summary


def _video_messages(
    reader: Any, connections: Sequence[Connection], stop: int
) -> Iterator[tuple[Connection, int, VideoUnit]]:
    store = typestore()
    for conn, timestamp, raw in read_messages(reader, connections, stop=stop):
        try:
            yield conn, timestamp, video_unit(store.deserialize_cdr(raw, conn.msgtype), conn.msgtype, store)
        except _BAD_CDR:
            continue


def _warm_up_video(
    reader: Any, connections: Sequence[Connection], by_key: dict[tuple[str, str], _CameraStream], run: _Run, start: int
) -> None:
    """Feed each video topic's decoder from its last keyframe before `start` up to `start`, writing nothing,
    so the chunk's first pictures decode exactly as in one pass over the whole bag."""
    video = [c for c in connections if c.msgtype in VIDEO_TYPES and (c.topic, c.msgtype) in by_key]
    if not video:  # no video topic (read_messages reads every connection when given none)
        return
    keyframe_at: dict[str, int] = {}
    for conn, timestamp, unit in _video_messages(reader, video, start):
        try:
            if unit.data and is_keyframe(decoder_for(unit.fmt), unit.data, unit.keyframe):
                keyframe_at[conn.topic] = timestamp
        except ImageCodecError:
            continue
    if not keyframe_at:
        return
    first = min(keyframe_at.values())
    for conn, timestamp, raw in read_messages(reader, video, start=first, stop=start):
        if timestamp >= keyframe_at.get(conn.topic, start):
            run.frame(by_key[(conn.topic, conn.msgtype)], timestamp, raw, write=False)


def camera_frames(bag: Path, limit: int | None = None, topics: Collection[str] = ()) -> Iterator[np.ndarray]:
    """RGB frames of a bag's camera topics (INT8 calibration from recorded drives); bad frames are skipped."""
    with open_bag(bag) as reader:
        cameras = {(c.topic, c.msgtype) for c in cameras_in(bag, reader.connections, topics)}
        connections = [c for c in reader.connections if (c.topic, c.msgtype) in cameras]
        store, count = typestore(), 0
        decoders: dict[str, VideoStreamDecoder[int]] = {}
        for conn, timestamp, raw in read_messages(reader, connections):
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
                if conn.msgtype in VIDEO_TYPES:
                    unit = video_unit(msg, conn.msgtype, store)
                    decoder = decoders.setdefault(conn.topic, VideoStreamDecoder(conn.topic))
                    frames = [rgb for _, rgb in decoder.push(unit.fmt, unit.data, timestamp, unit.keyframe)]
                else:
                    frame, order = _decode(msg, conn.msgtype)
                    frames = [np.ascontiguousarray(frame[..., ::-1]) if order == "BGR" else frame]
            except _BAD_FRAME as exc:
                LOG.warning("skipping a frame of %s: %s", conn.topic, exc)
                continue
            for frame in frames:
                yield frame
                count += 1
                if limit is not None and count >= limit:
                    return
        for decoder in decoders.values():
            for _, frame in decoder.flush():
                yield frame
                count += 1
                if limit is not None and count >= limit:
                    return

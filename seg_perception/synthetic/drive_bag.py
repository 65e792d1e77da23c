"""Write a synthetic drive as a rosbag2 bag: Image or CompressedImage frames plus camera_info, per camera."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bag.bag_io import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    DEFAULT_STORAGE,
    IMAGE,
    BagError,
    add_typed_connection,
    bag_writer,
    typestore,
)
from seg_perception.core.compressed_codec import encode_compressed
from seg_perception.synthetic.scenes import generate_drive

LOG = logging.getLogger(__name__)

DEFAULT_TOPIC = "/camera/front/image_raw"
START_NS = 1_700_000_000_000_000_000  # a fixed epoch: the same arguments write the same bag
INFO_LEAD_NS = 1_000  # camera_info is recorded just before its image, as a driver publishes it


@dataclass(frozen=True)
class SyntheticCamera:
    """One camera of a synthetic drive: its image topic and whether it is JPEG-compressed."""

    topic: str = DEFAULT_TOPIC
    compressed: bool = False

    @property
    def namespace(self) -> str:
        """The camera's namespace: the image topic's parent."""
        return self.topic.rstrip("/").rsplit("/", 1)[0]

    @property
    def image_topic(self) -> str:
        """Where the frames go: image_transport puts compressed frames on `<topic>/compressed`."""
        return f"{self.topic}/compressed" if self.compressed else self.topic

    @property
    def info_topic(self) -> str:
        return f"{self.namespace}/camera_info"

    @property
    def frame_id(self) -> str:
        return self.namespace.strip("/").replace("/", "_") or "camera"


@dataclass(frozen=True)
class SynthSummary:
    """What a synthetic drive bag holds."""

    path: Path
    frames: int
    cameras: int
    messages: int


def _check_topic(topic: str) -> None:
    parts = topic.split("/")
    if not topic.startswith("/") or topic.endswith("/") or "" in parts[1:] or len(parts) < 2:
        raise BagError(f"topic {topic!r} must be absolute, e.g. {DEFAULT_TOPIC}")


def _header(stamp_ns: int, frame_id: str) -> Any:
    types = typestore().types
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def camera_info(header: Any, width: int, height: int) -> Any:
    """Nominal pinhole intrinsics for the synthetic camera (focal 0.6 x width, centred, no distortion)."""
    types = typestore().types
    f, cx, cy = 0.6 * width, width / 2.0, height / 2.0
    return types[CAMERA_INFO](
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5, np.float64),
        k=np.array([f, 0, cx, 0, f, cy, 0, 0, 1], np.float64),
        r=np.eye(3, dtype=np.float64).ravel(),
        p=np.array([f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0], np.float64),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def frame_message(header: Any, rgb: np.ndarray, compressed: bool) -> Any:
    """An rgb8 Image, or a JPEG CompressedImage, of one RGB frame."""
    types = typestore().types
    if compressed:
        fmt, data = encode_compressed(rgb, "RGB", "jpeg", quality=90)
        return types[COMPRESSED_IMAGE](header=header, format=fmt, data=np.frombuffer(data, np.uint8))
    height, width = rgb.shape[:2]
    return types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=np.ascontiguousarray(rgb).reshape(-1),
    )


def write_synthetic_drive(
    out: Path,
    frames: int,
    cameras: Sequence[SyntheticCamera] = (SyntheticCamera(),),
    width: int = 1280,
    height: int = 720,
    rate_hz: float = 15.0,
    seed: int = 0,
    storage: str = DEFAULT_STORAGE,
    force: bool = False,
) -> SynthSummary:
    """Write `frames` frames per camera at `rate_hz`; each camera drives its own world (seed + index)."""
    if frames < 1:
        raise BagError(f"--frames must be at least 1, got {frames}")
    if not rate_hz > 0:
        raise BagError(f"--rate must be positive, got {rate_hz}")
    if not cameras:
        raise BagError("a synthetic drive needs at least one camera topic")
    for cam in cameras:
        _check_topic(cam.topic)
    namespaces = [cam.namespace for cam in cameras]
    if len(set(namespaces)) != len(namespaces):
        raise BagError(f"camera topics must be in distinct namespaces (they share camera_info): {namespaces}")
    from tqdm import tqdm

    store = typestore()
    messages = 0
    with bag_writer(out, storage, force) as writer:
        streams = []
        for k, cam in enumerate(cameras):
            image_conn = add_typed_connection(writer, cam.image_topic, COMPRESSED_IMAGE if cam.compressed else IMAGE)
            info_conn = add_typed_connection(writer, cam.info_topic, CAMERA_INFO)
            drive = generate_drive(frames, width, height, seed + k, fps=rate_hz)
            streams.append((cam, image_conn, info_conn, drive))
        for i in tqdm(range(frames), unit="frame", desc="synth", disable=frames < 2):
            stamp = START_NS + round(i * 1e9 / rate_hz)
            for cam, image_conn, info_conn, drive in streams:
                header = _header(stamp, cam.frame_id)
                info = camera_info(header, width, height)
                writer.write(info_conn, stamp - INFO_LEAD_NS, store.serialize_cdr(info, CAMERA_INFO))
                msg = frame_message(header, next(drive).image, cam.compressed)
                writer.write(image_conn, stamp, store.serialize_cdr(msg, image_conn.msgtype))
                messages += 2
    return SynthSummary(Path(out), frames, len(cameras), messages)

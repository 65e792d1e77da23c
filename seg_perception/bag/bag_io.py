"""Write rosbag2 bags (sqlite3 and MCAP, optionally zstd-compressed) all or nothing; the shared names and types.

A bag is written in a hidden staging directory next to its destination and renamed into place only once it
is complete. Reading (every kind of bag, every failure one ``BagError`` line) is bag_reader.py's.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from seg_perception.bag.split_bags import BagSplit, SplitWriter, join_parts
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.output_rule import replace_output

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.rosbag2 import Writer
    from rosbags.typesys.store import Typestore

LOG = logging.getLogger(__name__)

STORAGE_CHOICES = ("mcap", "sqlite3")
# rosbag2's compression modes (`ros2 bag record --compression-mode`); zstd is the one format rosbags writes
COMPRESSION_FORMATS = ("none", "zstd")
COMPRESSION_MODES = ("file", "message")
DEFAULT_STORAGE = "mcap"  # the rosbag2 default since Iron, and what Foxglove opens directly
BAG_VERSION: Literal[9] = 9  # metadata version written by Jazzy and Kilted
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
COMPRESSED_VIDEO = "foxglove_msgs/msg/CompressedVideo"
FFMPEG_PACKET = "ffmpeg_image_transport_msgs/msg/FFMPEGPacket"
VIDEO_TYPES = (COMPRESSED_VIDEO, FFMPEG_PACKET)
CAMERA_TYPES = (IMAGE, COMPRESSED_IMAGE, *VIDEO_TYPES)
# The node's image outputs, `<ns>/segmentation/<name>`, and what `process` writes unless told otherwise.
SEGMENTATION_OUTPUTS = ("labels", "drivable_mask", "overlay", "color_mask", "confidence")
DEFAULT_OUTPUTS = ("labels", "drivable_mask")
# Lossless PNG CompressedImage twins of the mono8 masks, as the node publishes them (image_transport names).
COMPRESSED_OUTPUTS = ("labels/compressed", "drivable_mask/compressed")


class BagError(SegPerceptionError):
    """A bag cannot be read or written; the message names the bag and the cause."""


_warned: set[tuple[str, ...]] = set()


def warn_once(logger: logging.Logger, key: tuple[str, ...], message: str, *args: object) -> None:
    """Log a warning about a bag once per process (a fleet run opens a bag once to plan, once per chunk)."""
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _one_line(exc: BaseException) -> str:
    """An exception as one line (YAML and sqlite errors span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@functools.cache
def typestore() -> Typestore:
    """The message definitions bags are written with: ROS 2 Kilted's, plus the video camera types."""
    from rosbags.typesys import Stores, get_typestore

    from seg_perception.bag.video_topics import register_video_types

    store = get_typestore(Stores.ROS2_KILTED)
    register_video_types(store)  # camera topics recorded as video: not in rosbags' stores
    return store


def check_output_path(out: Path, force: bool, inputs: Collection[Path] = ()) -> None:
    """Refuse an existing OUT_BAG without --force, and any OUT_BAG that is, or contains, an input."""
    out_resolved = Path(out).resolve()
    for path in inputs:
        src = Path(path).resolve()
        if src == out_resolved or out_resolved in src.parents:
            raise BagError(f"output bag {out} would overwrite the input bag {path}")
    if Path(out).exists() and not force:
        raise BagError(f"output bag {out} exists; pass --force to replace it")


def _storage_plugin(storage: str) -> Any:
    from rosbags.rosbag2 import StoragePlugin

    if storage not in STORAGE_CHOICES:
        raise BagError(f"storage {storage!r} is not one of {', '.join(STORAGE_CHOICES)}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


@contextmanager
def bag_writer(
    out: Path,
    storage: str = DEFAULT_STORAGE,
    force: bool = False,
    compression: str = "",
    split: BagSplit | None = None,
) -> Iterator[Writer]:
    """A rosbag2 writer whose bag appears at ``out`` only when the block completes.

    ``compression`` "file" or "message" writes it zstd-compressed in that rosbag2 mode; "" uncompressed.
    ``split`` writes it as several storage files (bag/split_bags.py), as ``ros2 bag record --max-bag-size``.

    The bag is written to ``.<name>.partial-*/<name>`` beside ``out`` (same file system, so the final
    rename is atomic); any exception, KeyboardInterrupt included, deletes the staging directory.
    """
    from rosbags.rosbag2 import CompressionFormat, Writer, WriterError

    out = Path(out)
    plugin = _storage_plugin(storage)
    check_output_path(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    # The storage file is named after the bag directory, so stage under the final name.
    staged = staging / out.name

    def make(path: Path) -> Writer:
        part = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
        if compression:
            part.set_compression(_compression_mode(compression), CompressionFormat.ZSTD)
        part.open()
        return part

    try:
        if split is not None and split.active:
            (staging / ".parts").mkdir()
            writer: Any = SplitWriter(staging / ".parts", out.name, split, make)
        else:
            writer = make(staged)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        try:
            writer.close()
        except WriterError as exc:
            raise BagError(f"cannot finish bag {out}: {_one_line(exc)}") from None
        if isinstance(writer, SplitWriter):
            try:
                join_parts(writer.parts, staged)
            except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:  # a part's files or metadata.yaml
                raise BagError(f"cannot join the split parts of bag {out}: {_one_line(exc)}") from None
        _move_into_place(staged, out, force)
    except WriterError as exc:
        raise BagError(f"cannot write bag {out}: {_one_line(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _compression_mode(mode: str) -> Any:
    from rosbags.rosbag2 import CompressionMode

    if mode not in COMPRESSION_MODES:
        raise BagError(f"compression mode {mode!r} is not one of {', '.join(COMPRESSION_MODES)}")
    return CompressionMode.FILE if mode == "file" else CompressionMode.MESSAGE


def move_bag_into_place(staged: Path, out: Path, force: bool) -> None:
    """Rename a complete bag written elsewhere on the same file system to ``out`` (the --force rule holds)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _move_into_place(Path(staged), out, force)


def _move_into_place(staged: Path, out: Path, force: bool) -> None:
    """The one output rule's rename (core/output_rule.py), its refusals as BagError."""
    try:
        replace_output(staged, out, "output bag", force)
    except BagError:
        raise
    except SegPerceptionError as exc:
        raise BagError(str(exc)) from None


def _describe(conn: Connection) -> tuple[str, str] | None:
    """The message definition and RIHS01 hash to write for ``conn``'s type, or None when unknowable."""
    store = typestore()
    msgdef, digest = conn.msgdef.data, conn.digest
    if msgdef and digest:
        return msgdef, digest
    if conn.msgtype in store.types:
        # Bags from distros before Iron carry no type hash; our store describes the type for them.
        generated, _ = store.generate_msgdef(conn.msgtype, ros_version=2)
        return msgdef or generated, digest or store.hash_rihs01(conn.msgtype)
    return None


def copy_connection(writer: Writer, conn: Connection) -> Connection | None:
    """Add a connection like ``conn`` (type, definition, QoS) to ``writer``; None if its type is unknowable."""
    described = _describe(conn)
    if described is None:
        return None
    msgdef, digest = described
    ext = conn.ext
    return writer.add_connection(
        conn.topic,
        conn.msgtype,
        msgdef=msgdef,
        rihs01=digest,
        serialization_format=getattr(ext, "serialization_format", "cdr"),
        offered_qos_profiles=list(getattr(ext, "offered_qos_profiles", [])),
    )


def add_typed_connection(writer: Writer, topic: str, msgtype: str) -> Connection:
    """Add a connection for a type our Kilted typestore knows (Image, CameraInfo, ...)."""
    return writer.add_connection(topic, msgtype, typestore=typestore())


def __getattr__(name: str) -> Any:
    """open_bag and read_messages live in bag_reader.py now; imports from here keep working."""
    if name in ("open_bag", "read_messages"):
        from seg_perception.bag import bag_reader

        return getattr(bag_reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

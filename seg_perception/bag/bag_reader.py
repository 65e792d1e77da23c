"""The one place bags are opened for reading: every kind this package reads, every failure one BagError line.

Reads rosbag2 directories (sqlite3 or MCAP, zstd-compressed per file or per message, split into several
storage files), bare .mcap / .db3 files, MCAP files a crash cut short (their complete records, named in
one warning: cut_short_mcap.py) and ROS 1 .bag files (as CDR: ros1_bags.py). Whatever rosbags, sqlite3,
zstd or the file system raise on the way becomes one BagError naming the bag and the cause.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seg_perception.bag.bag_io import BagError, typestore, warn_once
from seg_perception.bag.bag_metadata import MetadataError, check_metadata

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

LOG = logging.getLogger(__name__)
STORAGE_SUFFIXES = (".mcap", ".db3")
ROS1_SUFFIX = ".bag"


def _one_line(exc: BaseException) -> str:
    """An exception as one line (YAML and sqlite errors span several)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or not text:
        return f"{type(exc).__name__}{': ' + text if text else ''} (a corrupt length field?)"
    return text


def _hint(exc: BaseException) -> str:
    """What a damaged-file error usually means, for the errors whose own words do not say it."""
    text = str(exc).lower()
    if "magic" in text or "malformed" in text or "not a database" in text or "truncated" in text:
        return " (the file is truncated or corrupt)"
    return ""


def _storage_file_alone(path: Path) -> Path:
    """The one storage file of a bag directory without metadata.yaml (a recording that did not finish)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in STORAGE_SUFFIXES)
    if len(files) == 1:
        warn_once(
            LOG,
            ("no-metadata", str(path)),
            "bag %s has no metadata.yaml (a recording that did not finish?); reading its one storage file %s",
            path,
            files[0].name,
        )
        return files[0]
    if not files:
        raise BagError(f"cannot read bag {path}: no metadata.yaml and no .mcap / .db3 file in it")
    raise BagError(
        f"cannot read bag {path}: no metadata.yaml, and {len(files)} storage files "
        f"({', '.join(f.name for f in files)}); `ros2 bag reindex` rebuilds it, or pass one file"
    )


def _reader(path: Path) -> Any:
    """An unopened reader for `path`: rosbags' rosbag2 Reader (with cut-short MCAP support) or a ROS 1 bag."""
    if path.is_file() and path.suffix == ROS1_SUFFIX:
        from seg_perception.bag.ros1_bags import Ros1Bag

        return Ros1Bag(path, typestore())
    from seg_perception.bag.cut_short_mcap import reader_classes

    reader_class, _ = reader_classes()
    return reader_class(path)


@contextmanager
def open_bag(path: Path) -> Iterator[Any]:
    """Open a bag for reading: a rosbag2 directory, a bare .mcap / .db3 file, or a ROS 1 .bag file.

    The reader has rosbags' rosbag2 Reader interface (connections, start_time, end_time, topics, messages);
    read messages with `read_messages`, which gives CDR for every kind of bag.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_dir():
        meta = path / "metadata.yaml"
        if not meta.is_file():
            path = _storage_file_alone(path)
        else:
            try:
                check_metadata(meta)
            except MetadataError as exc:
                raise BagError(f"cannot read bag {path}: {meta}: {exc}") from None
            except OSError as exc:
                raise BagError(f"cannot read bag {path}: {meta}: {exc.strerror or exc}") from None
    elif path.suffix not in (*STORAGE_SUFFIXES, ROS1_SUFFIX):
        raise BagError(
            f"cannot read bag {path}: not a bag (expected a rosbag2 directory, a .mcap / .db3 file or a ROS 1 .bag)"
        )
    try:
        reader = _reader(path)
        reader.open()
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 - rosbags, sqlite3, zstd and YAML raise many types for one cause
        raise BagError(f"cannot read bag {path}: {_one_line(exc)}{_hint(exc)}") from None
    try:
        yield reader
    finally:
        try:
            reader.close()
        except Exception as exc:  # noqa: BLE001 - closing a damaged file must not hide the first error
            LOG.debug("closing %s: %s", path, exc)


def read_messages(
    reader: Any, connections: Collection[Connection] = (), start: int | None = None, stop: int | None = None
) -> Iterator[tuple[Connection, int, bytes]]:
    """The reader's (connection, timestamp ns, raw CDR) in time order, `start` <= t < `stop` where given;
    storage errors become BagError, and so does a whole read that found none of the messages the bag's
    metadata lists for a topic (`check_all_read`)."""
    items = reader.messages(connections, start=start, stop=stop)
    read: Counter[str] = Counter()
    while True:
        try:
            item = next(items)
        except StopIteration:
            if start is None and stop is None:
                check_all_read(reader, connections or reader.connections, read)
            return
        except Exception as exc:  # noqa: BLE001 - sqlite3, MCAP and zstd layers raise many types for one cause
            raise BagError(f"cannot read bag {reader.path}: {_one_line(exc)}{_hint(exc)}") from None
        read[item[0].topic] += 1
        yield item


def check_all_read(reader: Any, connections: Collection[Connection], read: Counter[str]) -> None:
    """BagError naming the first topic whose metadata counts messages of which a whole read found none.

    rosbags reads such a bag without complaint: its storage file names the topic or its type otherwise than
    metadata.yaml (a bag edited or merged by hand, a storage file swapped), or holds no messages at all."""
    listed: Counter[str] = Counter()
    for conn in connections:
        listed[conn.topic] += conn.msgcount
    for topic, count in sorted(listed.items()):
        if count and not read[topic]:
            raise BagError(
                f"read 0 of the {count} messages the metadata of {reader.path} lists for {topic}: its storage "
                "file names that topic or its type otherwise, or holds no messages (`ros2 bag reindex` rewrites "
                "the metadata from the storage files)"
            )

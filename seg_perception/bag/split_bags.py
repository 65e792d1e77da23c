"""Write one rosbag2 bag as several storage files, as `ros2 bag record --max-bag-size / --max-bag-duration` does.

rosbags' Writer (0.11.9) writes one storage file per bag with no size or duration limit. `SplitWriter` has
the same `add_connection` / `write` interface and starts a new rosbags Writer (a part, `<bag>_<i>.<ext>`)
when the current one holds `max_bytes` of message data or spans `max_ns` of record time; every part has every
connection, in the same order. `join_parts` then moves the parts' storage files into one bag directory
with one metadata.yaml: the parts' `files` entries, `relative_file_paths` in order, and the counts and the
time span summed, as rosbag2's own split bags have them (`ros2 bag info` reads them).

A message is never cut: a part ends before the message that would exceed the size (a message larger than
`max_bytes` gets a part of its own), as rosbag2 checks the size between messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seg_perception.core.errors import SegPerceptionError


@dataclass(frozen=True)
class BagSplit:
    """When a part ends: at `max_bytes` of message data, or `max_ns` of record time (None: no limit)."""

    max_bytes: int | None = None
    max_ns: int | None = None

    @property
    def active(self) -> bool:
        return self.max_bytes is not None or self.max_ns is not None


def bag_split(max_bytes: int | None, max_seconds: float | None) -> BagSplit:
    """--split-size / --split-duration as a BagSplit; SegPerceptionError for a limit that is not positive."""
    if max_bytes is not None and max_bytes < 1:
        raise SegPerceptionError(f"--split-size must be a positive number of bytes, got {max_bytes}")
    if max_seconds is not None and not max_seconds > 0:
        raise SegPerceptionError(f"--split-duration must be a positive number of seconds, got {max_seconds}")
    return BagSplit(max_bytes, None if max_seconds is None else round(max_seconds * 1e9))


class SplitWriter:
    """rosbags Writers, one per part, behind one writer's `add_connection` and `write`."""

    def __init__(self, staging: Path, name: str, split: BagSplit, make_writer: Callable[[Path], Any]) -> None:
        self._staging = staging
        self._name = name
        self._split = split
        self._make = make_writer
        self._calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []  # every add_connection, in order
        self._index: dict[int, int] = {}  # id(connection the caller holds) -> its add_connection call
        self._current: list[Any] = []  # the current part's connections, by call
        self._handles: list[Any] = []
        self.parts: list[Path] = []
        self._writer: Any = None
        self._bytes = 0
        self._start_ns: int | None = None
        self._open_part()

    def _open_part(self) -> None:
        path = self._staging / f"{self._name}_{len(self.parts)}"
        self._writer = self._make(path)
        self.parts.append(path)
        self._current = [self._writer.add_connection(*args, **kwargs) for args, kwargs in self._calls]
        self._bytes, self._start_ns = 0, None

    def add_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection in the current part and every later one (rosbag2's parts may differ in topics)."""
        conn = self._writer.add_connection(*args, **kwargs)
        self._handles.append(conn)  # alive while the writer is, so its id names it alone
        self._index[id(conn)] = len(self._calls)
        self._calls.append((args, kwargs))
        self._current.append(conn)
        return conn

    def _full(self, size: int, timestamp: int) -> bool:
        if self._start_ns is None:  # a part holds at least one message
            return False
        split = self._split
        if split.max_bytes is not None and self._bytes + size > split.max_bytes:
            return True
        return split.max_ns is not None and timestamp - self._start_ns >= split.max_ns

    def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
        size = len(data)
        if self._full(size, timestamp):
            self._writer.close()
            self._open_part()
        self._writer.write(self._current[self._index[id(connection)]], timestamp, data)
        self._bytes += size
        if self._start_ns is None:
            self._start_ns = timestamp

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


def join_parts(parts: list[Path], out: Path) -> None:
    """One bag directory `out` from the part bags: their storage files and one merged metadata.yaml."""
    infos = [yaml.safe_load((p / "metadata.yaml").read_text())["rosbag2_bagfile_information"] for p in parts]
    out.mkdir()
    files: list[dict[str, Any]] = []
    paths: list[str] = []
    topics: dict[tuple[str, str], dict[str, Any]] = {}
    for part, info in zip(parts, infos, strict=True):
        for rel in info["relative_file_paths"]:
            (part / rel).rename(out / rel)
            paths.append(rel)
        files += info.get("files", [])
        for entry in info["topics_with_message_count"]:
            key = (entry["topic_metadata"]["name"], entry["topic_metadata"]["type"])
            if key in topics:
                topics[key]["message_count"] += entry["message_count"]
            else:
                topics[key] = dict(entry)
    timed = [i for i in infos if i["message_count"]] or infos[:1]
    start = min(i["starting_time"]["nanoseconds_since_epoch"] for i in timed)
    end = max(i["starting_time"]["nanoseconds_since_epoch"] + i["duration"]["nanoseconds"] for i in timed)
    merged = dict(infos[0])
    merged.update(
        relative_file_paths=paths,
        starting_time={"nanoseconds_since_epoch": start},
        duration={"nanoseconds": end - start},
        message_count=sum(i["message_count"] for i in infos),
        topics_with_message_count=list(topics.values()),
        files=files,
    )
    text = yaml.safe_dump({"rosbag2_bagfile_information": merged}, sort_keys=False, default_flow_style=False)
    (out / "metadata.yaml").write_text(text)

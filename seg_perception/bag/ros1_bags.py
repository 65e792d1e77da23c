"""ROS 1 bags (`.bag`) read as if they were rosbag2: connections with ROS 2 metadata, messages as CDR.

rosbags' rosbag1 Reader gives ROS 1 serialized messages; the ROS 2 typestore converts them to CDR
(`ros1_to_cdr`, which drops the ROS 1 header's `seq`), so every command downstream sees what a rosbag2
bag would give and writes rosbag2. A topic whose type our ROS 2 typestore lacks, or whose ROS 1
definition is not laid out as the ROS 2 one, cannot be converted: it is left out, one warning per topic.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

from seg_perception.bag.bag_io import warn_once

LOG = logging.getLogger(__name__)


def _bag_types(connections: Collection[Connection]) -> Typestore:
    """A typestore of the definitions the bag itself carries (ROS 1 msgdefs, one per connection)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    for conn in connections:
        try:
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        except Exception as exc:  # noqa: BLE001 - a bad definition leaves only this topic unconvertible
            LOG.debug("no usable ROS 1 definition of %s: %s", conn.msgtype, exc)
    return store


def _convertible(bag_store: Typestore, ros2: Typestore, msgtype: str) -> str | None:
    """None if ROS 1 messages of `msgtype` convert to our ROS 2 type; else why not."""
    from rosbags.convert.converter import is_same_wireformat

    if msgtype not in ros2.fielddefs:
        return f"ROS 2 has no {msgtype} here"
    if msgtype not in bag_store.fielddefs:
        return f"the bag's definition of {msgtype} is unreadable"
    try:
        same = is_same_wireformat(bag_store, ros2, msgtype, msgtype)
    except (KeyError, AssertionError):
        same = False
    return None if same else f"its ROS 1 definition of {msgtype} differs from ROS 2's"


class Ros1Bag:
    """An open ROS 1 bag with the interface of rosbags' rosbag2 Reader that this package uses."""

    def __init__(self, path: Path, ros2: Typestore) -> None:
        from rosbags.rosbag1 import Reader

        self.path = path
        self._reader = Reader(path)
        self._ros2 = ros2
        self.connections: list[Connection] = []
        self._by_id: dict[int, Connection] = {}

    def open(self) -> None:
        from rosbags.convert.converter import LATCH
        from rosbags.interfaces import ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat

        self._reader.open()
        bag_store = _bag_types(self._reader.connections)
        skipped: dict[str, str] = {}
        for conn in self._reader.connections:
            why = _convertible(bag_store, self._ros2, conn.msgtype)
            if why is not None:
                skipped.setdefault(conn.topic, why)
                continue
            latched = bool(getattr(conn.ext, "latching", 0))
            ros2 = conn._replace(
                msgdef=MessageDefinition(MessageDefinitionFormat.NONE, ""),  # ROS 2's is generated on writing
                digest="",  # an MD5 sum, not a RIHS01 hash
                ext=ConnectionExtRosbag2("cdr", LATCH if latched else []),
            )
            self.connections.append(ros2)
            self._by_id[conn.id] = ros2
        for topic, why in skipped.items():
            warn_once(
                LOG,
                ("ros1-topic", str(self.path), topic),
                "not reading %s from the ROS 1 bag %s: %s",
                topic,
                self.path,
                why,
            )

    def close(self) -> None:
        self._reader.close()

    @property
    def start_time(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_time(self) -> int:
        return int(self._reader.end_time)

    @property
    def topics(self) -> dict[str, Any]:
        return {c.topic: c for c in self.connections}

    def messages(
        self, connections: Collection[Connection] = (), start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, timestamp ns, CDR) in time order; only the convertible connections."""
        chosen = list(connections) or self.connections
        originals = [c for c in self._reader.connections if c.id in {x.id for x in chosen}]
        if not originals:
            return
        for conn, timestamp, raw in self._reader.messages(originals, start=start, stop=stop):
            ours = self._by_id[conn.id]
            yield ours, timestamp, bytes(self._ros2.ros1_to_cdr(raw, ours.msgtype))

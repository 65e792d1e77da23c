"""Join the chunk bags of one long bag, in time order, into the one output bag (all or nothing).

Each chunk holds the messages recorded in its time range, so writing chunk after chunk writes every
message in the order the whole bag would have; the connections come from the first chunk, which (like
every chunk) has all of them in the order a whole-bag run adds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from seg_perception.bag.bag_io import bag_writer, copy_connection
from seg_perception.bag.bag_reader import open_bag, read_messages
from seg_perception.bag.split_bags import BagSplit

if TYPE_CHECKING:
    from rosbags.interfaces import Connection


def merge_chunk_bags(
    chunks: Sequence[Path],
    out: Path,
    storage: str,
    force: bool,
    compression: str = "",
    split: BagSplit | None = None,
) -> int:
    """Write the messages of `chunks`, one after the other, to a new bag at `out`; the number written."""
    written = 0
    with bag_writer(out, storage, force, compression, split) as writer:
        targets: dict[tuple[str, str], Connection | None] = {}
        for chunk in chunks:
            with open_bag(chunk) as reader:
                for conn in reader.connections:
                    key = (conn.topic, conn.msgtype)
                    if key not in targets:
                        targets[key] = copy_connection(writer, conn)
                for conn, timestamp, raw in read_messages(reader):
                    target = targets[(conn.topic, conn.msgtype)]
                    if target is not None:
                        writer.write(target, timestamp, raw)
                        written += 1
    return written

"""Bags in the formats real recordings come in, written by the tests with rosbags from a rosbag2 drive:
ROS 1 .bag, zstd-compressed rosbag2 (file and message mode), split rosbag2 and the recorder's v9 metadata."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import yaml

ROOT = "rosbag2_bagfile_information"
# What Jazzy's recorder writes for a sensor-data camera and a reliable camera_info (metadata version 9).
FOREVER = {"sec": 9223372036, "nsec": 854775807}
SENSOR_QOS = {
    "history": "keep_last",
    "depth": 5,
    "reliability": "best_effort",
    "durability": "volatile",
    "deadline": FOREVER,
    "lifespan": FOREVER,
    "liveliness": "automatic",
    "liveliness_lease_duration": FOREVER,
    "avoid_ros_namespace_conventions": False,
}
RELIABLE_QOS = {**SENSOR_QOS, "depth": 10, "reliability": "reliable"}


def messages(bag: Path) -> list[tuple[Any, int, bytes]]:
    """(connection, timestamp, raw CDR) of a rosbag2 bag, read with rosbags alone."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return [(c, t, bytes(raw)) for c, t, raw in reader.messages()]


def write_ros1(src: Path, dst: Path, extra_topic: bool = True) -> Path:
    """`src` as a ROS 1 bag: ROS 1 msgdefs and serialization, headers with seq = the message's index per topic.
    With `extra_topic`, also /radar of a type ROS 2 has not (acme_msgs/msg/Radar: ROS 1 definition only)."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    from seg_perception.bag.bag_io import typestore

    ros1, ros2 = get_typestore(Stores.ROS1_NOETIC), typestore()
    with Writer(dst) as writer:
        conns: dict[str, Any] = {}
        seqs: dict[str, int] = {}
        for conn, t, raw in messages(src):
            if conn.topic not in conns:
                conns[conn.topic] = writer.add_connection(conn.topic, conn.msgtype, typestore=ros1)
            data = bytearray(ros2.cdr_to_ros1(raw, conn.msgtype))
            seq = seqs[conn.topic] = seqs.get(conn.topic, -1) + 1
            data[0:4] = struct.pack("<I", seq + 100)  # std_msgs/Header.seq leads every stamped message
            writer.write(conns[conn.topic], t, bytes(data))
        if extra_topic:
            radar = writer.add_connection("/radar", "acme_msgs/msg/Radar", msgdef="float32[] ranges", md5sum="0" * 32)
            writer.write(radar, t, struct.pack("<If", 1, 2.5))
    return dst


def write_compressed(src: Path, dst: Path, mode: str, storage: str = "mcap") -> Path:
    """`src` rewritten zstd-compressed in rosbag2's `mode` ("file" or "message")."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(dst, version=9, storage_plugin=plugin)
    writer.set_compression(CompressionMode[mode.upper()], CompressionFormat.ZSTD)
    _copy(src, writer)
    return dst


def _copy(src: Path, writer: Any, keep: Any = None) -> None:
    with writer:
        conns: dict[str, Any] = {}
        for conn, t, raw in messages(src):
            if keep is not None and not keep(t):
                continue
            if conn.topic not in conns:
                conns[conn.topic] = writer.add_connection(
                    conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest
                )
            writer.write(conns[conn.topic], t, raw)


def write_split(src: Path, dst: Path, split_ns: int, storage: str = "mcap") -> Path:
    """`src` as the recorder splits a bag (--max-bag-size): <dst>_0 and <dst>_1 storage files in one
    directory, messages before `split_ns` in the first, one metadata.yaml naming both."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    tmp = dst.parent / f".{dst.name}-parts"
    parts = []
    for i, keep in enumerate((lambda t: t < split_ns, lambda t: t >= split_ns)):
        part = tmp / f"{dst.name}_{i}"
        _copy(src, Writer(part, version=9, storage_plugin=plugin), keep)
        parts.append(part)
    dst.mkdir()
    infos = [yaml.safe_load((p / "metadata.yaml").read_text())[ROOT] for p in parts]
    suffix = ".mcap" if storage == "mcap" else ".db3"
    for part in parts:
        (part / f"{part.name}{suffix}").rename(dst / f"{part.name}{suffix}")
    first, last = infos[0], infos[-1]
    start = first["starting_time"]["nanoseconds_since_epoch"]
    end = last["starting_time"]["nanoseconds_since_epoch"] + last["duration"]["nanoseconds"]
    counts: dict[str, int] = {}
    for info in infos:
        for topic in info["topics_with_message_count"]:
            name = topic["topic_metadata"]["name"]
            counts[name] = counts.get(name, 0) + topic["message_count"]
    topics = [{**t, "message_count": counts[t["topic_metadata"]["name"]]} for t in first["topics_with_message_count"]]
    merged = {
        **first,
        "relative_file_paths": [f"{p.name}{suffix}" for p in parts],
        "files": [{**info["files"][0], "path": f"{p.name}{suffix}"} for p, info in zip(parts, infos, strict=True)],
        "duration": {"nanoseconds": end - start},
        "message_count": sum(info["message_count"] for info in infos),
        "topics_with_message_count": topics,
    }
    (dst / "metadata.yaml").write_text(yaml.safe_dump({ROOT: merged}, sort_keys=False))
    shutil.rmtree(tmp)
    return dst


def as_recorder_writes_it(src: Path, bag: Path) -> Path:
    """`src` as Jazzy's recorder writes a bag: each topic with its publisher's offered QoS (in the MCAP
    channel and in metadata.yaml, v9's list of mappings) and its type_description_hash, metadata version 9
    first, the storage file named <bag>_0, ros_distro jazzy."""
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.metadata import parse_qos

    with Writer(bag, version=9) as writer:
        conns: dict[str, Any] = {}
        for conn, t, raw in messages(src):
            if conn.topic not in conns:
                qos = parse_qos([SENSOR_QOS if "image" in conn.topic else RELIABLE_QOS])  # type: ignore[list-item]
                conns[conn.topic] = writer.add_connection(
                    conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest, offered_qos_profiles=qos
                )
            writer.write(conns[conn.topic], t, raw)
    info = yaml.safe_load((bag / "metadata.yaml").read_text())[ROOT]
    old = info["relative_file_paths"][0]
    new = f"{bag.name}_0{Path(old).suffix}"
    (bag / old).rename(bag / new)
    topics = []
    for entry in info["topics_with_message_count"]:
        meta = entry["topic_metadata"]
        assert meta["offered_qos_profiles"] == [SENSOR_QOS if "image" in meta["name"] else RELIABLE_QOS]
        topics.append(
            {
                "topic_metadata": {
                    "name": meta["name"],
                    "type": meta["type"],
                    "serialization_format": "cdr",
                    "offered_qos_profiles": meta["offered_qos_profiles"],
                    "type_description_hash": meta["type_description_hash"],
                },
                "message_count": entry["message_count"],
            }
        )
    recorded = {
        "version": 9,
        "storage_identifier": info["storage_identifier"],
        "duration": info["duration"],
        "starting_time": info["starting_time"],
        "message_count": info["message_count"],
        "topics_with_message_count": topics,
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [new],
        "files": [{**info["files"][0], "path": new}],
        "custom_data": None,
        "ros_distro": "jazzy",
    }
    (bag / "metadata.yaml").write_text(yaml.safe_dump({ROOT: recorded}, sort_keys=False))
    return bag

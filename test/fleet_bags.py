"""Helpers of the fleet `process` tests: run the CLI on the tiny model, read bags back to compare them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from seg_perception import cli

Messages = dict[str, list[tuple[int, bytes, str]]]


def read_bag(bag: Path) -> Messages:
    """Every message of a bag by topic: (record timestamp, raw CDR, type), in the reader's order."""
    from rosbags.rosbag2 import Reader

    out: Messages = defaultdict(list)
    with Reader(bag) as reader:
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, bytes(raw), conn.msgtype))
    return dict(out)


def topics_metadata(bag: Path) -> list[tuple[str, str, int]]:
    """(topic, type, message count) of every connection, in the bag's order."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return [(c.topic, c.msgtype, c.msgcount) for c in reader.connections]


def process(spec_path: Path, *words: str) -> int:
    return cli.main(["process", *words, "--model", str(spec_path), "--backend", "onnxruntime"])


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def metadata_text(bag: Path) -> str:
    """The bag's metadata.yaml with its own name replaced: counts, time span, connections and QoS."""
    return (bag / "metadata.yaml").read_text().replace(bag.name, "BAG")

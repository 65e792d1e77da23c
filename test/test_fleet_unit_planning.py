"""How a fleet `process` run cuts its bags into units and joins the chunks again, exactly: chunks per bag, the
time ranges (open at both ends, covering the bag), the frame estimates that add up, the unit names and labels,
the progress tally; and merge_chunk_bags on small real bags (every message of every chunk, the connections of
the first chunk first, one added for a topic only a later chunk has, the output rule, compression)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rosbags.rosbag2 import Reader

from seg_perception.bag.bag_io import bag_writer, typestore
from seg_perception.core.errors import SegPerceptionError
from seg_perception.fleet import work_units
from seg_perception.fleet.chunk_merge import merge_chunk_bags
from seg_perception.fleet.work_units import (
    BagInfo,
    FrameTally,
    WorkUnit,
    chunk_ranges,
    chunks_per_bag,
    make_units,
    worker_name,
)


@pytest.mark.parametrize(
    ("bags", "workers", "chunks"),
    [(0, 4, 1), (4, 4, 1), (5, 4, 1), (1, 1, 1), (1, 4, 4), (2, 4, 2), (3, 4, 2), (2, 5, 3), (3, 8, 3), (1, 7, 7)],
)
def test_chunks_per_bag_feeds_every_worker(bags: int, workers: int, chunks: int) -> None:
    assert chunks_per_bag(bags, workers) == chunks


def test_one_chunk_is_the_whole_bag_unbounded() -> None:
    assert chunk_ranges(BagInfo(10, 100, 200), 1) == [(None, None)]
    assert chunk_ranges(BagInfo(10, 100, 200), 0) == [(None, None)]  # at least one
    assert chunk_ranges(BagInfo(1, 100, 200), 4) == [(None, None)]  # never more chunks than frames
    assert chunk_ranges(BagInfo(0, 0, 0), 3) == [(None, None)]


def test_chunk_ranges_split_the_recorded_time_evenly_and_open_at_both_ends() -> None:
    assert chunk_ranges(BagInfo(100, 1_000, 2_000), 4) == [
        (None, 1_250),
        (1_250, 1_500),
        (1_500, 1_750),
        (1_750, None),
    ]
    # Integer bounds, floor of start + span * i / chunks: 1000 + 1000 * 1 // 3 = 1333, then 1666.
    assert chunk_ranges(BagInfo(100, 1_000, 2_000), 3) == [(None, 1_333), (1_333, 1_666), (1_666, None)]
    assert chunk_ranges(BagInfo(3, 0, 10), 5) == [(None, 3), (3, 6), (6, None)]  # capped at 3 frames


def test_units_of_a_whole_bag_and_of_chunks(tmp_path: Path) -> None:
    (whole,) = make_units(2, Path("in.bag"), "out_bag", BagInfo(7, 0, 10), 1, tmp_path)
    assert whole == WorkUnit(2, 0, 1, Path("in.bag"), "out_bag", tmp_path, (None, None), 7)
    assert whole.label == "in.bag"
    units = make_units(3, Path("d/in.bag"), "out_bag", BagInfo(10, 0, 300), 3, tmp_path)
    assert [(u.job, u.chunk, u.chunks, u.name, u.frames) for u in units] == [
        (3, 0, 3, "chunk-00000", 3),
        (3, 1, 3, "chunk-00001", 3),
        (3, 2, 3, "chunk-00002", 4),
    ]
    assert [u.time_range for u in units] == [(None, 100), (100, 200), (200, None)]
    assert [u.label for u in units] == [f"d/in.bag (chunk {i}/3)" for i in (1, 2, 3)]
    assert {u.staging for u in units} == {tmp_path} and {u.in_bag for u in units} == {Path("d/in.bag")}


@pytest.mark.parametrize(("frames", "chunks"), [(10, 4), (7, 7), (100, 6), (5, 2)])
def test_frame_estimates_add_up_to_the_bag(frames: int, chunks: int, tmp_path: Path) -> None:
    units = make_units(0, Path("b"), "o", BagInfo(frames, 0, 1_000), chunks, tmp_path)
    shares = [u.frames for u in units]
    assert sum(shares) == frames and max(shares) - min(shares) <= 1 and len(units) == chunks


def test_frame_tally_counts_per_unit_until_taken() -> None:
    tally = FrameTally()
    assert tally.take() == {}
    tally.add(0, 1, 5)
    tally.add(0, 1, 2)
    tally.add(1, 0, 3)
    assert tally.take() == {(0, 1): 7, (1, 0): 3}
    assert tally.take() == {}
    tally.add(0, 1, 1)
    assert tally.take() == {(0, 1): 1}


class _Remote:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> None:
        self.calls.append(args)


def test_a_ray_worker_reports_its_frames_at_most_every_half_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(work_units.time, "monotonic", lambda: clock[0])
    tally = type("Tally", (), {})()
    tally.add = _Remote()
    unit = make_units(4, Path("b"), "o", BagInfo(9, 0, 9), 3, Path("s"))[2]
    report = work_units._TallyReporter(tally, unit)
    assert work_units.REPORT_EVERY_S == 0.5
    report()
    clock[0] = 100.4
    report()
    assert tally.add.calls == []
    clock[0] = 100.5  # exactly half a second after the start
    report()
    assert tally.add.calls == [(4, 2, 3)]
    clock[0] = 100.9
    report()
    clock[0] = 101.0
    report()
    assert tally.add.calls == [(4, 2, 3), (4, 2, 2)]


def test_worker_name_is_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(work_units.socket, "gethostname", lambda: "node7")
    monkeypatch.setattr(work_units.os, "getpid", lambda: 4242)
    assert worker_name() == "node7:4242"


# --- merging the chunk bags ---------------------------------------------------------------------------------

STRING = "std_msgs/msg/String"


def _chunk(path: Path, messages: list[tuple[str, int, str]], topics: list[str]) -> Path:
    store = typestore()
    string = store.types[STRING]
    with bag_writer(path, "mcap") as writer:
        conns = {t: writer.add_connection(t, STRING, typestore=store) for t in topics}
        for topic, stamp, text in messages:
            writer.write(conns[topic], stamp, store.serialize_cdr(string(data=text), STRING))
    return path


def _read(path: Path) -> tuple[list[str], list[tuple[str, int, str]]]:
    store = typestore()
    with Reader(path) as reader:
        topics = [c.topic for c in reader.connections]
        out = [(c.topic, t, store.deserialize_cdr(raw, c.msgtype).data) for c, t, raw in reader.messages()]
    return topics, sorted(out, key=lambda m: m[1])


@pytest.fixture
def chunks(tmp_path: Path) -> list[Path]:
    first = _chunk(tmp_path / "c0", [("/a", 10, "a1"), ("/b", 20, "b1")], ["/a", "/b"])
    second = _chunk(tmp_path / "c1", [("/b", 40, "b2"), ("/a", 30, "a2"), ("/c", 50, "c1")], ["/b", "/a", "/c"])
    return [first, second]


def test_every_message_of_every_chunk_under_the_first_chunks_connections(chunks: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    assert merge_chunk_bags(chunks, out, "mcap", force=False) == 5
    topics, messages = _read(out)
    assert topics == ["/a", "/b", "/c"]  # the first chunk's, in its order; /c from the chunk that has it
    assert messages == [("/a", 10, "a1"), ("/b", 20, "b1"), ("/a", 30, "a2"), ("/b", 40, "b2"), ("/c", 50, "c1")]
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["message_count"] == 5
    assert meta["compression_format"] == ""


def test_the_merged_bag_follows_the_output_rule_and_compression(chunks: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "old").write_text("old")
    with pytest.raises(SegPerceptionError, match="exists"):
        merge_chunk_bags(chunks, out, "sqlite3", force=False)
    assert (out / "old").read_text() == "old"
    assert merge_chunk_bags(chunks[:1], out, "sqlite3", force=True, compression="file") == 2
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert (meta["storage_identifier"], meta["compression_format"], meta["compression_mode"]) == (
        "sqlite3",
        "zstd",
        "file",
    )
    assert not (out / "old").exists()

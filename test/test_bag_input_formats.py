"""Recordings as fleets have them: ROS 1 bags, zstd-compressed and split rosbag2, the recorder's v9 metadata,
unknown message types and a bag cut short by a crash, through `process`, calibration frames and the fleet.

Each fixture holds the frames of one synthetic rosbag2 drive, rewritten with rosbags (bag_formats.py); the
outputs must equal, message for message, what `process` writes for that drive.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from bag_formats import (
    SENSOR_QOS,
    as_recorder_writes_it,
    messages,
    write_compressed,
    write_ros1,
    write_split,
)
from fleet_bags import process, read_bag

from seg_perception.bag.bag_io import typestore
from seg_perception.bag.offline_processing import camera_frames
from seg_perception.synthetic.drive_bag import START_NS, SyntheticCamera, write_synthetic_drive

W, H = 64, 48
FRONT = "/camera/front/image_raw"
LEFT = "/camera/left/image_raw"
OUTPUTS = "labels,drivable_mask,labels/compressed"
RATE_HZ = 10.0


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five frames of a raw and a JPEG camera, each with camera_info (rosbag2, MCAP)."""
    cams = [SyntheticCamera(FRONT), SyntheticCamera(LEFT, compressed=True)]
    return write_synthetic_drive(tmp_path_factory.mktemp("drive") / "drive", 5, cams, W, H, rate_hz=RATE_HZ).path


@pytest.fixture(scope="module")
def expected(drive: Path, spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """What `process` writes for the plain rosbag2 drive."""
    out = tmp_path_factory.mktemp("expected") / "out"
    assert process(spec_path, str(drive), str(out), "--outputs", OUTPUTS) == 0
    return read_bag(out)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_ros1_bag_gives_the_outputs_of_the_same_frames_in_rosbag2(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Labels, headers (seq dropped), timestamps and counts equal the rosbag2 run's, byte for byte; the
    copied inputs are the rosbag2 drive's CDR; the topic ROS 2 has no type for is one warning."""
    bag = write_ros1(drive, tmp_path / "drive.bag")
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    got = read_bag(tmp_path / "out")
    assert got == expected
    assert len(got["/camera/front/segmentation/labels"]) == 5
    labels: Any = typestore().deserialize_cdr(got["/camera/front/segmentation/labels"][2][1], "sensor_msgs/msg/Image")
    header = labels.header
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (
        *divmod(START_NS + 2 * int(1e9 / RATE_HZ), 1_000_000_000),
        "camera_front",
    )
    radar = [w for w in _warnings(caplog) if "/radar" in w]
    assert radar == [f"not reading /radar from the ROS 1 bag {bag}: ROS 2 has no acme_msgs/msg/Radar here"]
    assert "/radar" not in got


def test_ros1_bag_calibration_frames_equal_the_rosbag2_frames(drive: Path, tmp_path: Path) -> None:
    bag = write_ros1(drive, tmp_path / "drive.bag", extra_topic=False)
    ros1, ros2 = list(camera_frames(bag)), list(camera_frames(drive))
    assert len(ros1) == len(ros2) == 10
    assert all(np.array_equal(a, b) for a, b in zip(ros1, ros2, strict=True))


def test_quantize_calibrates_from_a_ros1_bag(drive: Path, spec_path: Path, tmp_path: Path) -> None:
    from seg_perception import cli

    bag = write_ros1(drive, tmp_path / "drive.bag", extra_topic=False)
    out = tmp_path / "q.onnx"
    rc = cli.main(["quantize", "--model", str(spec_path), "--calib", str(bag), "--out", str(out), "--frames", "8"])
    assert rc == 0 and out.is_file()


@pytest.mark.parametrize(("mode", "storage"), [("file", "mcap"), ("message", "mcap"), ("file", "sqlite3")])
def test_zstd_compressed_input_gives_the_plain_outputs(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, mode: str, storage: str
) -> None:
    bag = write_compressed(drive, tmp_path / "zstd", mode, storage)
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert (info["compression_format"], info["compression_mode"]) == ("zstd", mode)
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    assert read_bag(tmp_path / "out") == expected


@pytest.mark.parametrize("mode", ["file", "message"])
def test_compressed_output_is_zstd_in_the_mode_asked_and_reads_back_equal(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, mode: str
) -> None:
    out = tmp_path / "out"
    words = ("--outputs", OUTPUTS, "--compression", "zstd", "--compression-mode", mode)
    assert process(spec_path, str(drive), str(out), *words) == 0
    info = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert (info["compression_format"], info["compression_mode"]) == ("zstd", mode)
    assert info["relative_file_paths"] == (["out.mcap.zstd"] if mode == "file" else ["out.mcap"])
    assert read_bag(out) == expected  # rosbags decompresses


def test_compression_mode_without_compression_is_refused(drive: Path, spec_path: Path, tmp_path: Path) -> None:
    assert process(spec_path, str(drive), str(tmp_path / "out"), "--compression-mode", "message") == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_split_bag_gives_the_outputs_of_the_whole(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, storage: str
) -> None:
    src = drive
    if storage == "sqlite3":
        src = write_synthetic_drive(
            tmp_path / "db", 5, [SyntheticCamera(FRONT), SyntheticCamera(LEFT, compressed=True)], W, H,
            rate_hz=RATE_HZ, storage="sqlite3",
        ).path  # fmt: skip
    bag = write_split(src, tmp_path / "split", START_NS + int(2.5e9 / RATE_HZ), storage)
    files = sorted(p.name for p in bag.iterdir())
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert files == ["metadata.yaml", f"split_0{suffix}", f"split_1{suffix}"]
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    assert read_bag(tmp_path / "out") == expected


def test_bag_as_the_recorder_writes_it_keeps_its_qos_and_hashes(
    spec_path: Path, expected: dict[str, list], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cams = [SyntheticCamera(FRONT), SyntheticCamera(LEFT, compressed=True)]
    drive = write_synthetic_drive(tmp_path / "drive", 5, cams, W, H, rate_hz=RATE_HZ).path
    bag = as_recorder_writes_it(drive, tmp_path / "rec")
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    assert read_bag(tmp_path / "out") == expected
    # --copy-inputs: the camera topics themselves are copied, so their recorded QoS and hashes are visible
    assert process(spec_path, str(bag), str(tmp_path / "copied"), "--outputs", OUTPUTS, "--copy-inputs") == 0
    assert _warnings(caplog) == []
    info = yaml.safe_load((tmp_path / "copied" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    topics = {t["topic_metadata"]["name"]: t["topic_metadata"] for t in info["topics_with_message_count"]}
    assert info["version"] == 9
    assert topics[FRONT]["offered_qos_profiles"] == [SENSOR_QOS]  # the camera's best-effort QoS, copied
    assert topics[FRONT]["type_description_hash"] == typestore().hash_rihs01("sensor_msgs/msg/Image")


def _with_unknown_topics(src: Path, dst: Path, storage: str) -> Path:
    """`src` plus two topics of types no typestore here knows: /radar with its definition, /lidar without."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(dst, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for conn, t, raw in messages(src):
            if conn.topic not in conns:
                conns[conn.topic] = writer.add_connection(conn.topic, conn.msgtype, typestore=typestore())
            writer.write(conns[conn.topic], t, raw)
        radar = writer.add_connection(
            "/radar", "acme_msgs/msg/Radar", msgdef="float32[] ranges", rihs01="RIHS01_" + "1" * 64
        )
        lidar = writer.add_connection("/lidar", "acme_msgs/msg/Lidar", msgdef="uint8 x", rihs01="RIHS01_" + "2" * 64)
        for i in range(3):
            writer.write(radar, START_NS + i, b"\x00\x01\x00\x00" + struct.pack("<If", 1, 2.5))
            writer.write(lidar, START_NS + i, b"\x00\x01\x00\x00\x07")
    if storage == "sqlite3":  # /lidar as a Humble bag has it: no definition, no hash
        import sqlite3

        with sqlite3.connect(dst / f"{dst.name}.db3") as db:
            db.execute("DELETE FROM message_definitions WHERE topic_type = 'acme_msgs/msg/Lidar'")
            db.execute("UPDATE topics SET type_description_hash = '' WHERE name = '/lidar'")
        meta = yaml.safe_load((dst / "metadata.yaml").read_text())
        for t in meta["rosbag2_bagfile_information"]["topics_with_message_count"]:
            if t["topic_metadata"]["name"] == "/lidar":
                t["topic_metadata"]["type_description_hash"] = ""
        (dst / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return dst


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_unknown_message_types_are_copied_with_their_definition_else_one_warning(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    storage: str,
) -> None:  # fmt: skip
    bag = _with_unknown_topics(drive, tmp_path / "in", storage)
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    got = read_bag(tmp_path / "out")
    assert {k: v for k, v in got.items() if k not in ("/radar", "/lidar")} == expected
    assert [t for t, _, _ in got["/radar"]] == [START_NS, START_NS + 1, START_NS + 2]
    warned = [w for w in _warnings(caplog) if "acme_msgs" in w]
    if storage == "mcap":  # both definitions are in the file
        assert len(got["/lidar"]) == 3 and warned == []
    else:
        assert "/lidar" not in got
        assert warned == ["not copying /lidar: no definition of acme_msgs/msg/Lidar in the bag or in ROS 2"]


def _chunks(mcap: Path) -> list[tuple[int, int, int]]:
    """(offset, length, first message time) of each chunk of an intact MCAP file, from its own index."""
    from rosbags.rosbag2.storage_mcap import McapReader

    reader = McapReader(mcap)
    reader.open()
    try:
        return [(c.chunk_start_offset, c.chunk_length, c.message_start_time) for c in reader.chunks]
    finally:
        reader.close()


def _big_drive(path: Path) -> Path:
    """A drive whose MCAP has several chunks (rosbags closes a chunk past 1 MiB): 12 frames of 320x240."""
    return write_synthetic_drive(path, 12, [SyntheticCamera(FRONT)], 320, 240, rate_hz=RATE_HZ).path


@pytest.mark.parametrize("how", ["bare_file", "split_last_file"])
def test_bag_cut_short_by_a_crash_gives_its_complete_chunks_and_one_warning(
    spec_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    whole = _big_drive(tmp_path / "whole")
    assert process(spec_path, str(whole), str(tmp_path / "whole_out")) == 0
    reference = read_bag(tmp_path / "whole_out")
    if how == "bare_file":
        cut = whole / "whole.mcap"
    else:
        bag = write_split(whole, tmp_path / "split", START_NS + int(4.5e9 / RATE_HZ))
        cut = bag / "split_1.mcap"
    chunks = _chunks(cut)
    assert len(chunks) >= 2
    offset, length, last_start = chunks[-1]
    os.truncate(cut, offset + length // 2)  # the recorder died while writing the last chunk
    caplog.clear()
    target = cut if how == "bare_file" else bag
    assert process(spec_path, str(target), str(tmp_path / "out")) == 0
    got = read_bag(tmp_path / "out")
    kept = {topic: [m for m in items if m[0] < last_start] for topic, items in reference.items()}
    assert got == {topic: items for topic, items in kept.items() if items}
    assert 0 < len(got["/camera/front/segmentation/labels"]) < 12
    warned = _warnings(caplog)
    assert len(warned) == 1 and warned[0].startswith(f"{cut} is cut short"), warned
    assert f"{offset} of its {offset + length // 2} bytes" in warned[0]


def test_directory_without_metadata_reads_its_one_storage_file_with_one_warning(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    bag = tmp_path / "drive"
    shutil.copytree(drive, bag)
    (bag / "metadata.yaml").unlink()
    assert process(spec_path, str(bag), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    assert read_bag(tmp_path / "out") == expected
    assert _warnings(caplog) == [
        f"bag {bag} has no metadata.yaml (a recording that did not finish?); reading its one storage file drive.mcap"
    ]


def test_a_fleet_of_every_format_in_one_process_equals_each_bag_alone(
    drive: Path, expected: dict[str, list], spec_path: Path, tmp_path: Path
) -> None:
    """A tree of a ROS 1 bag, a compressed bag and a split bag, planned and run by the in-process fleet."""
    tree = tmp_path / "fleet"
    tree.mkdir()
    write_ros1(drive, tree / "old.bag", extra_topic=False)
    write_compressed(drive, tree / "zstd", "message")
    write_split(drive, tree / "split", START_NS + int(2.5e9 / RATE_HZ))
    assert process(spec_path, str(tree), str(tmp_path / "out"), "--outputs", OUTPUTS) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old", "split", "zstd"]
    for name in ("old", "split", "zstd"):
        assert read_bag(tmp_path / "out" / name) == expected, name


def test_chunks_of_a_ros1_bag_merged_equal_the_whole(
    drive: Path, expected: dict[str, list], segmenter: object, tmp_path: Path
) -> None:
    """The fleet's chunk planning and merge on a ROS 1 bag (run here in process; Ray runs the same units)."""
    from seg_perception.bag.offline_processing import process_bag
    from seg_perception.fleet.chunk_merge import merge_chunk_bags
    from seg_perception.fleet.work_units import chunk_ranges, inspect_bag

    bag = write_ros1(drive, tmp_path / "drive.bag", extra_topic=False)
    info = inspect_bag(bag, ())
    assert info.frames == 10
    outputs = tuple(OUTPUTS.split(","))
    parts = []
    for i, time_range in enumerate(chunk_ranges(info, 3)):
        part = tmp_path / "chunks" / f"chunk-{i}"
        process_bag(bag, part, segmenter, outputs=outputs, progress=False, time_range=time_range)  # type: ignore[arg-type]
        parts.append(part)
    merge_chunk_bags(parts, tmp_path / "merged", "mcap", force=False, compression="file")
    assert read_bag(tmp_path / "merged") == expected

"""`process --split-size` / `--split-duration`: one output bag in several storage files, as ros2 bag writes it.

rosbags' Writer cannot split; bag/split_bags.py writes parts and joins them. Checked: the parts' names,
order and metadata `files` entries; each part within its limit; and the split bag read whole (by rosbags'
own Reader, not the package's) equal to the unsplit output, message for message, with the same topic counts.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fleet_bags import process, read_bag, topics_metadata
from rosbags.typesys import Stores, get_typestore

from seg_perception.bag.bag_io import BagError, bag_writer
from seg_perception.bag.bag_metadata import check_metadata
from seg_perception.bag.bag_reader import open_bag, read_messages
from seg_perception.bag.offline_processing import process_bag
from seg_perception.bag.split_bags import BagSplit
from seg_perception.fleet.chunk_merge import merge_chunk_bags
from seg_perception.pipeline import Segmenter
from seg_perception.synthetic.drive_bag import START_NS, write_synthetic_drive

W, H, FRAMES, RATE = 64, 48, 12, 10.0  # 1.1 s of record time, a frame every 100 ms


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_drive(tmp_path_factory.mktemp("split") / "d", FRAMES, width=W, height=H, rate_hz=RATE).path


@pytest.fixture(scope="module")
def unsplit(drive: Path, spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unsplit") / "out"
    assert process(spec_path, str(drive), str(out), "--outputs", "labels", "--storage", "sqlite3") == 0
    return out


def _info(bag: Path) -> dict:
    return yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def _part_messages(part: Path) -> list[tuple[int, int]]:
    """(record time, size) of each message in one storage file, read as a bag of its own."""
    with open_bag(part) as reader:
        return [(t, len(raw)) for _, t, raw in read_messages(reader)]


@pytest.mark.parametrize(
    ("words", "storage", "ext"),
    [
        (("--split-duration", "0.3"), "mcap", "mcap"),
        (("--split-size", "20000"), "sqlite3", "db3"),
        (("--split-duration", "0.5", "--compression", "zstd", "--compression-mode", "message"), "mcap", "mcap"),
    ],
)
def test_a_split_output_bag_equals_the_unsplit_one_message_for_message(
    tmp_path: Path, drive: Path, unsplit: Path, spec_path: Path, words: tuple[str, ...], storage: str, ext: str
) -> None:
    out = tmp_path / "out"
    assert process(spec_path, str(drive), str(out), "--outputs", "labels", "--storage", storage, *words) == 0
    check_metadata(out / "metadata.yaml")
    info = _info(out)
    names = info["relative_file_paths"]
    assert len(names) >= 2
    assert names == [f"out_{i}.{ext}" for i in range(len(names))]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "metadata.yaml"])
    assert [f["path"] for f in info["files"]] == names
    assert read_bag(out) == read_bag(unsplit)  # rosbags' Reader over every file, in order
    assert topics_metadata(out) == topics_metadata(unsplit)
    assert info["message_count"] == sum(f["message_count"] for f in info["files"]) == _info(unsplit)["message_count"]
    parts = [_part_messages(out / name) for name in names]
    for entry, messages in zip(info["files"], parts, strict=True):
        times = [t for t, _ in messages]
        assert entry["message_count"] == len(messages)
        assert entry["starting_time"]["nanoseconds_since_epoch"] == times[0]
        assert entry["duration"]["nanoseconds"] == times[-1] - times[0]
        if words[0] == "--split-duration":
            assert times[-1] - times[0] < float(words[1]) * 1e9
        else:
            assert len(messages) == 1 or sum(size for _, size in messages) <= int(words[1])
    for before, after in itertools.pairwise(parts):  # a part ends only where the next message would break its limit
        if words[0] == "--split-duration":
            assert after[0][0] - before[0][0] >= float(words[1]) * 1e9
        else:
            assert sum(size for _, size in before) + after[0][1] > int(words[1])


@pytest.mark.parametrize(
    ("words", "line"),
    [
        (("--split-size", "0"), "error: --split-size must be a positive number of bytes, got 0"),
        (("--split-duration", "-1"), "error: --split-duration must be a positive number of seconds, got -1.0"),
    ],
)
def test_a_split_limit_that_is_not_positive_is_one_line(
    tmp_path: Path, drive: Path, spec_path: Path, words: tuple[str, ...], line: str
) -> None:
    cmd = [sys.executable, "-m", "seg_perception.cli", "process", str(drive), str(tmp_path / "o"), *words]
    done = subprocess.run([*cmd, "--model", str(spec_path)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, line)
    assert not (tmp_path / "o").exists()


def test_chunks_of_a_fleet_run_merge_into_a_split_bag(
    tmp_path: Path, drive: Path, unsplit: Path, segmenter: Segmenter
) -> None:
    """What `process --ray` does with a chunked bag: chunks written whole, the merge writes the split bag."""
    middle = START_NS + 5 * 100_000_000 + 1
    chunks = []
    for i, time_range in enumerate([(None, middle), (middle, None)]):
        chunks.append(tmp_path / f"chunk-{i}")
        process_bag(drive, chunks[-1], segmenter, outputs=("labels",), progress=False, time_range=time_range)
    out = tmp_path / "merged"
    merge_chunk_bags(chunks, out, "mcap", False, split=BagSplit(max_ns=400_000_000))
    assert _info(out)["relative_file_paths"] == ["merged_0.mcap", "merged_1.mcap", "merged_2.mcap"]
    assert read_bag(out) == read_bag(unsplit)


@pytest.mark.parametrize("broken", ["directory", "metadata"])
def test_a_split_bag_whose_parts_cannot_be_joined_is_one_bag_error(tmp_path: Path, broken: str) -> None:
    """Joining the parts (bag/split_bags.join_parts) fails with a file-system or YAML error: one-line
    BagError naming the bag, not a traceback, and nothing appears at OUT."""
    store = get_typestore(Stores.ROS2_KILTED)
    out = tmp_path / "split"
    string = "std_msgs/msg/String"
    with pytest.raises(BagError) as caught, bag_writer(out, "mcap", split=BagSplit(max_bytes=10)) as writer:
        chatter = writer.add_connection("/chatter", string, typestore=store)
        for i in range(3):
            writer.write(chatter, START_NS + i, store.serialize_cdr(store.types[string](data=f"hello {i}"), string))
        first = writer.parts[0]
        if broken == "directory":  # where the joined bag is staged: join_parts' mkdir meets it
            (first.parent.parent / out.name).mkdir()
        else:  # the first part (closed when the second began: 10 bytes each) gets a metadata.yaml that is not YAML
            (first / "metadata.yaml").write_text("a: [b")
    text = str(caught.value)
    assert text.startswith(f"cannot join the split parts of bag {out}: ") and "\n" not in text, text
    assert not out.exists()

"""A bag whose metadata counts messages that a whole read does not find is refused in one line (exit 2).

rosbags reads such a bag without complaint and yields nothing for the topic: `process` would write an empty
output and exit 0. The storage files are edited here as a hand-merged or swapped bag would have them.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from seg_perception.bag.bag_io import BagError
from seg_perception.bag.offline_processing import camera_frames
from seg_perception.synthetic.drive_bag import SyntheticCamera, write_synthetic_drive

W, H = 32, 24
IMAGE = "/camera/front/image_raw"


def _line(bag: Path, count: int, topic: str) -> str:
    return (
        f"error: read 0 of the {count} messages the metadata of {bag} lists for {topic}: its storage file names "
        "that topic or its type otherwise, or holds no messages (`ros2 bag reindex` rewrites the metadata from "
        "the storage files)"
    )


def _sqlite_drive(out: Path, update: str) -> Path:
    write_synthetic_drive(out, 3, width=W, height=H, storage="sqlite3")
    with sqlite3.connect(next(out.glob("*.db3"))) as db:
        db.execute(update, (IMAGE,))
    return out


def _swapped_mcap(tmp_path: Path) -> Path:
    """A bag of /camera/front whose storage file is another bag's (of /camera/left)."""
    bag, other = tmp_path / "front", tmp_path / "left"
    write_synthetic_drive(bag, 3, width=W, height=H, storage="mcap")
    write_synthetic_drive(other, 3, [SyntheticCamera("/camera/left/image_raw", False)], W, H, storage="mcap")
    shutil.copy(next(other.glob("*.mcap")), next(bag.glob("*.mcap")))
    return bag


CASES = {
    "topic-renamed-in-sqlite3": lambda p: (_sqlite_drive(p / "d", "update topics set name='/x' where name=?"), IMAGE),
    "type-differs-in-sqlite3": lambda p: (
        _sqlite_drive(p / "d", "update topics set type='sensor_msgs/msg/CompressedImage' where name=?"),
        IMAGE,
    ),
    "storage-file-swapped-mcap": lambda p: (_swapped_mcap(p), "/camera/front/camera_info"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_process_of_a_bag_that_reads_zero_messages_says_so_in_one_line(
    tmp_path: Path, spec_path: Path, case: str
) -> None:
    bag, topic = CASES[case](tmp_path)
    cmd = [sys.executable, "-m", "seg_perception.cli", "process", str(bag), str(tmp_path / "out")]
    done = subprocess.run([*cmd, "--model", str(spec_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [_line(bag, 3, topic)], done.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_calibration_frames_of_such_a_bag_are_refused_too(tmp_path: Path) -> None:
    bag, _ = CASES["topic-renamed-in-sqlite3"](tmp_path)
    with pytest.raises(BagError, match=r"^read 0 of the 3 messages the metadata of .* lists for /camera/front/"):
        list(camera_frames(bag))

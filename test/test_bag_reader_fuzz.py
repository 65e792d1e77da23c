"""Fuzzing the bag readers through `process`: truncated and bit-flipped storage files, wrong or garbage
metadata.yaml, missing files, empty and missing bags, for MCAP, sqlite3, zstd-compressed and ROS 1 bags.

Every outcome must be a normal run (exit 0, or 1 for frames it could not decode) that leaves a readable
output bag, or exactly one error line naming the bag with exit 2 and nothing written; never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from bag_formats import write_compressed, write_ros1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seg_perception import cli
from seg_perception.synthetic.drive_bag import SyntheticCamera, write_synthetic_drive

FORMATS = ("mcap", "sqlite3", "zstd_message", "ros1")
STORAGE_SUFFIXES = (".mcap", ".db3", ".zstd", ".bag")
EXAMPLES = 120  # about 0.1 s each on this machine: the whole test stays under 30 s


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    cams = [SyntheticCamera(), SyntheticCamera("/camera/left/image_raw", compressed=True)]
    mcap = write_synthetic_drive(root / "mcap", 3, cams, 32, 24).path
    return {
        "mcap": mcap,
        "sqlite3": write_synthetic_drive(root / "sqlite3", 3, cams, 32, 24, storage="sqlite3").path,
        "zstd_message": write_compressed(mcap, root / "zstd_message", "message"),
        "ros1": write_ros1(mcap, root / "ros1.bag"),
    }


def _storage_file(bag: Path) -> Path:
    return bag if bag.is_file() else next(p for p in sorted(bag.iterdir()) if p.suffix in STORAGE_SUFFIXES)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=12), st.floats())
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        paths.extend(_key_paths(child, (*prefix, key)))
    return paths


def _damage(data: st.DataObject, bag: Path, fmt: str) -> str:
    """Damage the copy `bag` in one way the strategy draws; what was done, for the failure message."""
    choices = ["truncate", "flip", "delete_file"]
    if fmt != "ros1":
        choices += ["yaml_value", "yaml_text", "yaml_flip", "delete_yaml", "empty_dir"]
    how = data.draw(st.sampled_from(choices), label="how")
    if how in ("truncate", "flip", "delete_file"):
        target = _storage_file(bag)
        size = target.stat().st_size
        if how == "truncate":
            os.truncate(target, data.draw(st.integers(0, size - 1), label="size"))
        elif how == "flip":
            raw = bytearray(target.read_bytes())
            for pos in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=8), label="at"):
                raw[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
            target.write_bytes(bytes(raw))
        else:
            target.unlink()
        return how
    meta = bag / "metadata.yaml"
    if how == "yaml_value":  # valid YAML, one value of the real metadata replaced by anything
        doc = yaml.safe_load(meta.read_text())
        path = data.draw(st.sampled_from(_key_paths(doc)), label="key")
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = data.draw(_values, label="value")
        meta.write_text(yaml.safe_dump(doc))
    elif how == "yaml_text":
        meta.write_text(data.draw(st.text(max_size=60), label="text"))
    elif how == "yaml_flip":
        raw = bytearray(meta.read_bytes())
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4), label="at"):
            raw[pos] = data.draw(st.integers(0, 255), label="byte")
        meta.write_bytes(bytes(raw))
    elif how == "delete_yaml":
        meta.unlink()
    else:
        for p in bag.iterdir():
            p.unlink()
    return how


def _check_outcome(rc: int, bag: Path, out: Path, caplog: pytest.LogCaptureFixture, how: str) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name != bag.name)
    if rc == 2:
        assert len(errors) == 1 and "\n" not in errors[0], (how, errors)
        assert str(bag) in errors[0], (how, errors)
        assert leftovers == [], (how, leftovers)  # no output bag, no staging directory
    else:
        assert rc in (0, 1), (how, rc)
        assert errors == [], (how, errors)
        assert leftovers == [out.name], (how, leftovers)
        from rosbags.rosbag2 import Reader

        with Reader(out) as reader:  # a complete rosbag2 bag
            assert sum(1 for _ in reader.messages()) == reader.message_count


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run (a seeded fuzz): a failure is reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_damaged_bag_is_a_normal_run_or_one_line(
    data: st.DataObject, sources: dict[str, Path], spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fmt = data.draw(st.sampled_from(FORMATS), label="format")
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        src = sources[fmt]
        bag = work / src.name
        if src.is_file():
            shutil.copy(src, bag)
        else:
            shutil.copytree(src, bag)
        how = _damage(data, bag, fmt)
        out = work / "out"
        caplog.clear()
        rc = cli.main(["process", str(bag), str(out), "--model", str(spec_path), "--backend", "onnxruntime"])
        _check_outcome(rc, bag, out, caplog, f"{fmt}: {how}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_garbage_metadata_is_one_line_naming_the_file_and_the_key(
    sources: dict[str, Path], spec_path: Path, tmp_path: Path
) -> None:
    """The issue's case, from the command line as users run it: no Python internals, no traceback."""
    bag = tmp_path / "bag"
    shutil.copytree(sources["mcap"], bag)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: just a string\n")
    cmd = [sys.executable, "-m", "seg_perception.cli", "process", str(bag), str(tmp_path / "out")]
    cmd += ["--model", str(spec_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot read bag {bag}: {bag}/metadata.yaml: rosbag2_bagfile_information must be a mapping, "
        "not a string"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("missing", "error: bag {bag} does not exist"),
        ("empty_dir", "error: no bags (directories with metadata.yaml, or .mcap / .db3 / .bag files) under {bag}"),
        (
            "not_a_bag",
            "error: cannot read bag {bag}: not a bag (expected a rosbag2 directory, a .mcap / .db3 file "
            "or a ROS 1 .bag)",
        ),
        ("missing_storage", "error: cannot read bag {bag}: Some database files are missing: ['{bag}/mcap.mcap']"),
    ],
)
def test_missing_and_empty_bags_are_one_exact_line(
    sources: dict[str, Path], spec_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str,
    expected: str,
) -> None:  # fmt: skip
    bag = tmp_path / ("bag.txt" if what == "not_a_bag" else "mcap")
    if what == "empty_dir":
        bag.mkdir()
    elif what == "not_a_bag":
        bag.write_text("hello")
    elif what == "missing_storage":
        shutil.copytree(sources["mcap"], bag)
        (bag / "mcap.mcap").unlink()
    rc = cli.main(["process", str(bag), str(tmp_path / "out"), "--model", str(spec_path)])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (rc, errors) == (2, [expected.format(bag=bag)])
    assert not (tmp_path / "out").exists()

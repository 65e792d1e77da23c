"""metadata.yaml checked before rosbags reads it: every kind of damage named in one line, word for word."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from seg_perception.bag.bag_metadata import MetadataError, check_metadata

GOOD: dict[str, Any] = {
    "rosbag2_bagfile_information": {
        "version": 5,
        "storage_identifier": "sqlite3",
        "relative_file_paths": ["bag_0.db3"],
        "duration": {"nanoseconds": 1000},
        "starting_time": {"nanoseconds_since_epoch": 17},
        "message_count": 2,
        "topics_with_message_count": [
            {
                "topic_metadata": {"name": "/cam", "type": "sensor_msgs/msg/Image", "serialization_format": "cdr"},
                "message_count": 2,
            }
        ],
        "compression_format": "",
        "compression_mode": "",
    }
}
INFO = "rosbag2_bagfile_information"


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "metadata.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _message(tmp_path: Path, doc: Any) -> str:
    with pytest.raises(MetadataError) as err:
        check_metadata(_write(tmp_path, doc))
    return str(err.value)


def _with(path: list[Any], value: Any, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    node: Any = doc[INFO]
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def test_good_metadata_passes_with_and_without_the_optional_keys(tmp_path: Path) -> None:
    check_metadata(_write(tmp_path, GOOD))
    check_metadata(_write(tmp_path, _with(["compression_format"], None)))
    doc = _with(["compression_mode"], None, delete=True)
    del doc[INFO]["compression_format"]
    check_metadata(_write(tmp_path, doc))
    check_metadata(_write(tmp_path, _with(["version"], 1)))
    check_metadata(_write(tmp_path, _with(["relative_file_paths"], [])))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["version"], "5", f"{INFO}.version must be an integer, not a string"),
        (["version"], True, f"{INFO}.version must be an integer, not a boolean"),
        (["version"], 5.0, f"{INFO}.version must be an integer, not a number"),
        (["version"], None, f"{INFO}.version must be an integer, not empty"),
        (["version"], 0, f"{INFO}.version must be a rosbag2 version (1 to 9), not 0"),
        (["storage_identifier"], 3, f"{INFO}.storage_identifier must be a string, not an integer"),
        (["relative_file_paths"], "bag_0.db3", f"{INFO}.relative_file_paths must be a list, not a string"),
        (["relative_file_paths"], ["a", 7], f"{INFO}.relative_file_paths[1] must be a string, not an integer"),
        (["duration"], 1000, f"{INFO}.duration must be a mapping, not an integer"),
        (["duration"], [1], f"{INFO}.duration must be a mapping, not a list"),
        (["duration", "nanoseconds"], {"a": 1}, f"{INFO}.duration.nanoseconds must be an integer, not a mapping"),
        (
            ["starting_time", "nanoseconds_since_epoch"],
            [],
            f"{INFO}.starting_time.nanoseconds_since_epoch must be an integer, not a list",
        ),
        (
            ["topics_with_message_count", 0, "topic_metadata", "type"],
            1,
            f"{INFO}.topics_with_message_count[0].topic_metadata.type must be a string, not an integer",
        ),
        (
            ["topics_with_message_count", 0, "message_count"],
            "2",
            f"{INFO}.topics_with_message_count[0].message_count must be an integer, not a string",
        ),
        (["compression_format"], 1, f"{INFO}.compression_format must be a string, not an integer"),
        (["compression_mode"], ["zstd"], f"{INFO}.compression_mode must be a string, not a list"),
        (["compression_mode"], {1, 2}, f"{INFO}.compression_mode must be a string, not set"),
    ],
)
def test_a_wrong_type_names_the_key(tmp_path: Path, path: list[Any], value: Any, message: str) -> None:
    doc = _with(path, value)
    if isinstance(value, set):  # YAML cannot hold a Python set: check the parsed document directly
        path_ = tmp_path / "metadata.yaml"
        path_.write_text(yaml.safe_dump(GOOD).replace("compression_mode: ''", "compression_mode: !!set {1, 2}"))
        with pytest.raises(MetadataError) as err:
            check_metadata(path_)
        assert str(err.value) == message
        return
    assert _message(tmp_path, doc) == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (["message_count"], f"{INFO}.message_count is missing"),
        (["duration", "nanoseconds"], f"{INFO}.duration.nanoseconds is missing"),
        (
            ["topics_with_message_count", 0, "topic_metadata", "serialization_format"],
            f"{INFO}.topics_with_message_count[0].topic_metadata.serialization_format is missing",
        ),
    ],
)
def test_a_missing_key_is_named(tmp_path: Path, path: list[Any], message: str) -> None:
    assert _message(tmp_path, _with(path, None, delete=True)) == message


def test_documents_that_are_not_rosbag2_metadata(tmp_path: Path) -> None:
    assert _message(tmp_path, "just text") == (f"not rosbag2 metadata: expected a mapping with {INFO}, found a string")
    assert _message(tmp_path, [1, 2]) == f"not rosbag2 metadata: expected a mapping with {INFO}, found a list"
    assert _message(tmp_path, None) == f"not rosbag2 metadata: expected a mapping with {INFO}, found empty"
    keys = {f"k{i}": i for i in range(7)}
    assert _message(tmp_path, keys) == f"not rosbag2 metadata: no {INFO} (its top-level keys: k0, k1, k2, k3, k4)"
    assert _message(tmp_path, {}) == f"not rosbag2 metadata: no {INFO} (its top-level keys: none)"
    assert _message(tmp_path, {1: 2}) == f"not rosbag2 metadata: no {INFO} (its top-level keys: 1)"
    assert _message(tmp_path, {INFO: "x"}) == f"{INFO} must be a mapping, not a string"


def test_text_that_is_not_yaml_or_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(MetadataError) as err:
        check_metadata(path)
    assert str(err.value) == "not valid YAML at line 3: expected ',' or ']', but got '<stream end>'"
    path.write_text("a: b: c\n")
    with pytest.raises(MetadataError) as err:
        check_metadata(path)
    assert str(err.value) == "not valid YAML at line 1: mapping values are not allowed here"
    path.write_bytes(b"version: \xff\xfe\n")
    with pytest.raises(MetadataError) as err:
        check_metadata(path)
    assert str(err.value) == "not text (not UTF-8)"


def test_a_yaml_error_without_a_position_is_one_line_too(tmp_path: Path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_text("a: \x07b\n")  # a control character: yaml's reader refuses it, with no line mark
    with pytest.raises(MetadataError) as err:
        check_metadata(path)
    assert str(err.value) == (
        'not valid YAML: unacceptable character #x0007: special characters are not allowed in "<unicode string>", '
        "position 3"
    )


def test_utf8_metadata_reads_under_an_ascii_locale(tmp_path: Path) -> None:
    import locale

    doc = copy.deepcopy(GOOD)
    doc[INFO]["custom_data"] = {"driver": "Jürgen Straße"}
    path = tmp_path / "metadata.yaml"
    path.write_bytes(yaml.safe_dump(doc, allow_unicode=True).encode("utf-8"))
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        check_metadata(path)
    finally:
        locale.setlocale(locale.LC_CTYPE, old)

"""Check a rosbag2 metadata.yaml before rosbags reads it, so a damaged one is named in words, not Python's.

rosbags indexes the YAML as it goes: a file that is valid YAML but not rosbag2 metadata (a string, a list,
a number where a mapping belongs) surfaces as `string indices must be integers`. This checks the keys and
types rosbags (and the rosbag2 recorder) rely on and says which one is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seg_perception.core.errors import SegPerceptionError

ROOT_KEY = "rosbag2_bagfile_information"
# key -> expected type, or a nested table for a mapping; what rosbags reads unconditionally.
_FIELDS: dict[str, Any] = {
    "version": int,
    "storage_identifier": str,
    "relative_file_paths": [str],
    "duration": {"nanoseconds": int},
    "starting_time": {"nanoseconds_since_epoch": int},
    "message_count": int,
    "topics_with_message_count": [
        {"topic_metadata": {"name": str, "type": str, "serialization_format": str}, "message_count": int}
    ],
}
_OPTIONAL: dict[str, Any] = {"compression_format": (str, type(None)), "compression_mode": (str, type(None))}
_WORDS = {int: "an integer", str: "a string", dict: "a mapping", list: "a list"}


class MetadataError(SegPerceptionError):
    """metadata.yaml is not rosbag2 metadata; the message names the key and what is wrong with it."""


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _check(value: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            raise MetadataError(f"{where} must be a mapping, not {_kind(value)}")
        for key, sub in expected.items():
            if key not in value:
                raise MetadataError(f"{where}.{key} is missing")
            _check(value[key], sub, f"{where}.{key}")
    elif isinstance(expected, list):
        if not isinstance(value, list):
            raise MetadataError(f"{where} must be a list, not {_kind(value)}")
        for i, item in enumerate(value):
            _check(item, expected[0], f"{where}[{i}]")
    elif isinstance(expected, tuple):
        if not isinstance(value, expected):
            raise MetadataError(f"{where} must be {_WORDS[expected[0]]}, not {_kind(value)}")
    elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise MetadataError(f"{where} must be {_WORDS[expected]}, not {_kind(value)}")


def check_metadata(path: Path) -> None:
    """Raise MetadataError (one line, naming the key) unless `path` holds the rosbag2 metadata rosbags needs."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MetadataError("not text (not UTF-8)") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise MetadataError(f"not valid YAML{at}: {problem}") from None
    if not isinstance(doc, dict):
        raise MetadataError(f"not rosbag2 metadata: expected a mapping with {ROOT_KEY}, found {_kind(doc)}")
    if ROOT_KEY not in doc:
        keys = ", ".join(map(str, list(doc)[:5])) or "none"
        raise MetadataError(f"not rosbag2 metadata: no {ROOT_KEY} (its top-level keys: {keys})")
    _check(doc[ROOT_KEY], _FIELDS, ROOT_KEY)
    info = doc[ROOT_KEY]
    for key, expected in _OPTIONAL.items():
        if key in info:
            _check(info[key], expected, f"{ROOT_KEY}.{key}")
    if info["version"] < 1:
        raise MetadataError(f"{ROOT_KEY}.version must be a rosbag2 version (1 to 9), not {info['version']}")

"""Files appear whole or not at all: the old content survives a failed write and no temporary is left."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from seg_perception.core import atomic_files
from seg_perception.core.atomic_files import (
    atomic_path,
    partial_path,
    stale_partials,
    write_atomic,
    write_bytes_atomic,
    write_command_output,
    write_text_atomic,
)
from seg_perception.core.errors import SegPerceptionError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_text_atomic(path, "old\n")

    def half_then_crash(tmp: Path) -> None:
        tmp.write_text("half of the ne")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomic(path, half_then_crash)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_the_temporary_keeps_the_suffix_and_is_renamed_into_place(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".frame.png.")
        tmp.write_bytes(b"png")
        assert not path.exists()  # nothing visible before the block ends
    assert path.read_bytes() == b"png" and not tmp.exists()


def test_the_temporary_name_is_the_target_the_pid_and_32_random_bits(tmp_path: Path) -> None:
    first, second = partial_path(tmp_path / "frame.png"), partial_path(tmp_path / "frame.png")
    for tmp in (first, second):
        assert re.fullmatch(rf"\.frame\.png\.{os.getpid()}-[0-9a-f]{{8}}\.partial\.png", tmp.name), tmp.name
    assert first != second


def test_stale_partials_finds_the_temporaries_of_killed_writers_of_that_file_only(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    killed = [partial_path(path), partial_path(path)]  # two writers killed before their rename
    for tmp in killed:
        tmp.write_bytes(b"half an engine")
    partial_path(tmp_path / "other.engine").write_bytes(b"someone else's")
    assert killed[0] != killed[1]
    assert stale_partials(path) == sorted(killed)


def test_only_a_durable_write_is_synced_before_its_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(atomic_files.os, "fsync", synced.append)
    write_atomic(tmp_path / "a", lambda tmp: tmp.write_bytes(b"a"))
    assert synced == []
    write_atomic(tmp_path / "b", lambda tmp: tmp.write_bytes(b"b"), durable=True)
    assert len(synced) == 1 and (tmp_path / "b").read_bytes() == b"b"
    write_bytes_atomic(tmp_path / "c", b"c")
    assert len(synced) == 1
    write_bytes_atomic(tmp_path / "d", b"d", durable=True)
    assert len(synced) == 2 and (tmp_path / "d").read_bytes() == b"d"


def test_a_command_output_makes_its_parents_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "summary.json"
    write_command_output(path, '{"frames": 3}\n', "--json")
    assert path.read_text(encoding="utf-8") == '{"frames": 3}\n'
    # A str path, an existing directory, an existing file:
    write_command_output(str(path), "é\n", "--json")  # type: ignore[arg-type]
    assert path.read_bytes() == "é\n".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_a_command_output_that_cannot_be_written_is_one_line_naming_option_path_and_cause(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "out.json"
    with pytest.raises(SegPerceptionError) as err:
        write_command_output(bad, "{}", "--json")
    assert str(err.value) == f"cannot write --json {bad}: File exists"
    with pytest.raises(SegPerceptionError) as err:
        write_command_output(tmp_path, "{}", "--summary")  # a directory: the rename over it fails
    assert str(err.value) == f"cannot write --summary {tmp_path}: Is a directory"


def test_text_is_written_as_utf_8_whatever_the_locale(tmp_path: Path, ascii_locale: str) -> None:
    assert ascii_locale == "ANSI_X3.4-1968"  # ASCII: "é" has no byte in it
    write_text_atomic(tmp_path / "t.txt", "é\n")
    assert (tmp_path / "t.txt").read_bytes() == "é\n".encode()

"""Files appear whole or not at all: the old content survives a failed write and no temporary is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from seg_perception.core.atomic_files import atomic_path, partial_path, stale_partials, write_atomic, write_text_atomic


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


def test_stale_partials_finds_the_temporaries_of_killed_writers_of_that_file_only(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    killed = [partial_path(path), partial_path(path)]  # two writers killed before their rename
    for tmp in killed:
        tmp.write_bytes(b"half an engine")
    partial_path(tmp_path / "other.engine").write_bytes(b"someone else's")
    assert killed[0] != killed[1]
    assert stale_partials(path) == sorted(killed)

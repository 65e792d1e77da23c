"""The one output rule alone, on real directories: refused without --force, replaced whole with it, an input
never overwritten, nothing half-written left behind, and every refusal word for word."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seg_perception.core import output_rule
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.output_rule import (
    check_output,
    fresh_output_dir,
    output_exists,
    replace_output,
    staged_output_dir,
)


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def test_what_counts_as_an_existing_output(tmp_path: Path) -> None:
    assert output_exists(tmp_path / "missing") is False
    (tmp_path / "empty").mkdir()
    assert output_exists(tmp_path / "empty") is False
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("1")
    assert output_exists(tmp_path / "full") is True
    (tmp_path / "file").write_text("")
    assert output_exists(tmp_path / "file") is True
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    assert output_exists(tmp_path / "dangling") is True
    # A link to an empty directory is still something the user made: it counts.
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    assert output_exists(tmp_path / "link") is True
    assert output_exists(str(tmp_path / "full")) is True  # type: ignore[arg-type]


def test_check_output_refusals(tmp_path: Path) -> None:
    out = tmp_path / "out"
    check_output(out, "--out", force=False)
    out.mkdir()
    check_output(out, "--out", force=False)  # empty: free to use
    (out / "old").write_text("x")
    with pytest.raises(SegPerceptionError) as err:
        check_output(out, "--out", force=False)
    assert str(err.value) == f"--out {out} exists and is not empty; pass --force to replace it"
    check_output(out, "--out", force=True)


@pytest.mark.parametrize("inside", ["", "bag", "bag/deeper"])
@pytest.mark.parametrize("force", [False, True])
def test_an_output_holding_an_input_is_refused_even_with_force(tmp_path: Path, inside: str, force: bool) -> None:
    out = tmp_path / "out"
    source = out / inside if inside else out
    source.mkdir(parents=True)
    with pytest.raises(SegPerceptionError) as err:
        check_output(out, "--out-dir", force, inputs=[tmp_path / "other", source])
    assert str(err.value) == f"--out-dir {out} would overwrite the input {source}; choose another --out-dir"


def test_an_input_beside_or_above_the_output_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    check_output(out, "--out", False, inputs=[tmp_path / "a", tmp_path / "a" / "outer", tmp_path / "b"])


def test_staged_output_replaces_the_old_one_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_output_dir(out, "--out", force=True) as built:
        assert built.name == "out" and built.parent.parent == tmp_path
        assert built.parent.name.startswith(".out.partial-")
        assert list(built.iterdir()) == []
        (built / "new.txt").write_text("new")
        assert _tree(out) == {"old.txt": "old"}  # not touched until complete
    assert _tree(out) == {"new.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_output_into_a_new_nested_path_and_an_empty_dir(tmp_path: Path) -> None:
    out = tmp_path / "x" / "y" / "out"
    with staged_output_dir(out, "--out", force=False) as built:
        (built / "a").write_text("1")
    assert _tree(out) == {"a": "1"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_output_dir(empty, "--out", force=False) as built:
        (built / "b").write_text("2")
    assert _tree(empty) == {"b": "2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "x"]


def test_a_failure_leaves_the_old_output_and_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), staged_output_dir(out, "--out", force=True) as built:
        (built / "half.txt").write_text("half")
        raise KeyboardInterrupt
    assert _tree(out) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_output_refuses_before_creating_anything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(SegPerceptionError, match="exists and is not empty"), staged_output_dir(out, "--out", False):
        pytest.fail("must not be entered")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staging_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("")
    out = parent / "out"
    with pytest.raises(SegPerceptionError) as err, staged_output_dir(out, "--out", False):
        pytest.fail("must not be entered")
    assert str(err.value) == f"cannot create --out {out}: File exists"


def test_an_output_that_appeared_while_writing_is_not_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    built = tmp_path / "built"
    built.mkdir()
    (built / "new").write_text("new")
    out.mkdir()
    (out / "theirs").write_text("theirs")
    with pytest.raises(SegPerceptionError) as err:
        replace_output(built, out, "--out", force=False)
    assert str(err.value) == f"--out {out} appeared while writing; pass --force to replace it"
    assert _tree(out) == {"theirs": "theirs"} and _tree(built) == {"new": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "out"]


def test_replace_output_of_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out.bag"
    out.write_text("old")
    built = tmp_path / "built.bag"
    built.write_text("new")
    replace_output(built, out, "--out", force=True)
    assert out.read_text() == "new" and not built.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bag"]


def test_a_failed_rename_puts_the_old_output_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    built = tmp_path / "built"
    built.mkdir()
    real_replace = os.replace

    def failing_replace(src: Path, dst: Path) -> None:
        if Path(src) == built:
            raise OSError(18, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(output_rule.os, "replace", failing_replace)
    with pytest.raises(SegPerceptionError) as err:
        replace_output(built, out, "--out", force=True)
    assert str(err.value) == f"cannot move the finished --out into {out}: Invalid cross-device link"
    assert _tree(out) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "out"]


def test_a_failed_rename_onto_nothing_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = tmp_path / "built"
    built.mkdir()

    def failing_replace(src: Path, dst: Path) -> None:
        raise OSError("no reason given")

    monkeypatch.setattr(output_rule.os, "replace", failing_replace)
    with pytest.raises(SegPerceptionError) as err:
        replace_output(built, tmp_path / "out", "--out", force=False)
    assert str(err.value) == f"cannot move the finished --out into {tmp_path / 'out'}: no reason given"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]


@pytest.mark.parametrize("kind", ["dir", "file", "empty", "none"])
def test_fresh_output_dir_deletes_the_old_output_with_force(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "sub" / "out"
    out.parent.mkdir()
    if kind in ("dir", "empty"):
        out.mkdir()
        if kind == "dir":
            (out / "old").mkdir()
            (out / "old" / "x").write_text("x")
    elif kind == "file":
        out.write_text("old")
    assert fresh_output_dir(out, "--out", force=True) == out
    assert out.is_dir() and list(out.iterdir()) == []


def test_fresh_output_dir_refuses_without_force_and_makes_parents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(SegPerceptionError, match="exists and is not empty; pass --force"):
        fresh_output_dir(out, "--log-dir", force=False)
    assert _tree(out) == {"old": "x"}
    deep = tmp_path / "a" / "b" / "c"
    assert fresh_output_dir(deep, "--log-dir", force=False) == deep and deep.is_dir()


def test_fresh_output_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("")
    with pytest.raises(SegPerceptionError) as err:
        fresh_output_dir(parent / "out", "--log-dir", force=False)
    assert str(err.value) == f"cannot replace --log-dir {parent / 'out'}: Not a directory"


def test_fresh_output_dir_replaces_a_link_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("k")
    link = tmp_path / "out"
    link.symlink_to(target)
    assert fresh_output_dir(link, "--out", force=True) == link
    assert link.is_dir() and not link.is_symlink() and list(link.iterdir()) == []
    assert _tree(target) == {"keep": "k"}


def test_the_old_output_is_moved_aside_beside_it_not_into_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renames stay on the output's file system: the old output goes to a hidden `.NAME.replaced-*` beside it
    # (what an interrupted replace leaves for the user to find), never to $TMPDIR.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(output_rule.tempfile, "tempdir", str(elsewhere))
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    (out / "old").write_text("old")
    built = tmp_path / "work" / "built"
    built.mkdir()
    moves: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: Path, dst: Path) -> None:
        moves.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(output_rule.os, "replace", recording_replace)
    replace_output(built, out, "--out", force=True)
    assert len(moves) == 2 and moves[1] == (built, out)
    (old_src, aside), _ = moves
    assert old_src == out and aside.name == "out"
    assert aside.parent.parent == out.parent and aside.parent.name.startswith(".out.replaced-")
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_an_old_output_that_cannot_be_deleted_does_not_fail_the_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "busy").write_text("old")
    built = tmp_path / "built"
    built.mkdir()
    (built / "new").write_text("new")
    real_unlink = os.unlink

    def busy_unlink(path: object, *args: object, **kwargs: object) -> None:
        if os.fspath(path).endswith("busy"):  # type: ignore[call-overload]
            raise PermissionError(13, "Device or resource busy")
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", busy_unlink)
    replace_output(built, out, "--out", force=True)
    assert _tree(out) == {"new": "new"}


def test_fresh_output_dir_names_the_option_in_its_refusal(tmp_path: Path) -> None:
    out = tmp_path / "logs"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(SegPerceptionError) as err:
        fresh_output_dir(out, "--log-dir", force=False)
    assert str(err.value) == f"--log-dir {out} exists and is not empty; pass --force to replace it"

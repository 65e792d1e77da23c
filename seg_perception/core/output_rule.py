"""One rule for every command output: new outputs never mix with old ones.

An output that already exists (a file, or a directory that is not empty) is refused unless the user
passes --force; with --force it is replaced whole, never merged. A directory output is built in a
staging directory `.NAME.partial-*` beside it and renamed into place only when complete, so an
interrupted or failed run leaves the old output (or nothing) and no half-written one. An output that
is, or contains, one of the command's inputs is refused even with --force (replacing it would delete
the input). Caches (engines, QDQ graphs, calibration tables) are not outputs: they are keyed by what
built them and validated on load, and live under their own directories.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

from seg_perception.core.errors import SegPerceptionError


def output_exists(path: Path) -> bool:
    """True for a file, a link, or a directory that holds anything; an empty directory is free to use."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def check_output(path: Path, option: str, force: bool, inputs: Collection[Path] = ()) -> None:
    """Refuse `path` (named by `option`, e.g. `--out`) when it holds an input, or exists without --force."""
    out = Path(path).resolve()
    for source in inputs:
        resolved = Path(source).resolve()
        if resolved == out or out in resolved.parents:
            raise SegPerceptionError(f"{option} {path} would overwrite the input {source}; choose another {option}")
    if output_exists(Path(path)) and not force:
        raise SegPerceptionError(f"{option} {path} exists and is not empty; pass --force to replace it")


def replace_output(built: Path, path: Path, option: str, force: bool) -> None:
    """Rename the complete `built` (same file system) to `path`; an old output there goes only with --force."""
    path = Path(path)
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.replaced-", dir=path.parent))
    try:
        old: Path | None = None
        if output_exists(path):
            if not force:
                raise SegPerceptionError(f"{option} {path} appeared while writing; pass --force to replace it")
            old = aside / path.name
            os.replace(path, old)
        elif path.is_dir():
            path.rmdir()  # an empty directory the user made for the output
        try:
            os.replace(built, path)
        except OSError as exc:
            if old is not None:
                os.replace(old, path)
            raise SegPerceptionError(f"cannot move the finished {option} into {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_output_dir(path: Path, option: str, force: bool, inputs: Collection[Path] = ()) -> Iterator[Path]:
    """Yield an empty directory to write the output into; on success it replaces `path` whole, on any
    failure (Ctrl-C included) it is deleted and `path` is left as it was."""
    path = Path(path)
    check_output(path, option, force, inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    except OSError as exc:
        raise SegPerceptionError(f"cannot create {option} {path}: {exc.strerror or exc}") from None
    try:
        built = staging / path.name
        built.mkdir()
        yield built
        replace_output(built, path, option, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fresh_output_dir(path: Path, option: str, force: bool) -> Path:
    """The output rule for a command that writes in place (its log names its files as the user finds them):
    refuse as check_output does; with --force delete the old output first, so nothing old stays beside
    the new."""
    path = Path(path)
    check_output(path, option, force)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif output_exists(path):
            path.unlink()
        path.mkdir(parents=True)
    except OSError as exc:
        raise SegPerceptionError(f"cannot replace {option} {path}: {exc.strerror or exc}") from None
    return path

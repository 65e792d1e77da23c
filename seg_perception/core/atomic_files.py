"""Files that appear whole or not at all: write under a temporary name beside the target, then rename.

Readers of `path` see the old file or the new one, never half of one; a writer killed midway leaves only a
`.NAME.*.partial*` file, which `stale_partials` finds. The temporary name keeps the target's suffix because
some writers (cv2.VideoWriter, PyAV) pick the container or encoder from it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from seg_perception.core.errors import SegPerceptionError


def partial_path(path: Path) -> Path:
    """A fresh temporary name in `path`'s directory, unique per process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial{path.suffix}")


def stale_partials(path: Path) -> list[Path]:
    """Temporary files that writers of `path` left behind (only safe to delete while no writer runs)."""
    return sorted(path.parent.glob(f".{path.name}.*.partial{path.suffix}"))


@contextlib.contextmanager
def atomic_path(path: Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it over `path`, on any failure remove it.

    `durable` fsyncs the file before the rename (engine caches: a power cut must not leave a torn engine).
    """
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomic(path: Path, write: Callable[[Path], object], durable: bool = False) -> None:
    """`write(tmp)` under a temporary name, then rename it over `path`."""
    with atomic_path(path, durable) as tmp:
        write(tmp)


def write_bytes_atomic(path: Path, data: bytes | memoryview, durable: bool = False) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_command_output(path: Path, text: str, option: str) -> None:
    """A command's output file (`option` names it, e.g. --json): parents made, written whole, and a
    failure is one SegPerceptionError line naming the option, the path and the cause."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as exc:
        raise SegPerceptionError(f"cannot write {option} {path}: {exc.strerror or exc}") from None

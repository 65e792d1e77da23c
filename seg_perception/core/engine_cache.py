"""A build-once cache for derived artefacts: TensorRT engines, QDQ graphs, anything that is bytes.

An engine cached by file path alone silently breaks after a TensorRT, GPU or model change. Here every
artefact has a *key*: named fields (graph sha256, TensorRT version, GPU, compute capability, precision,
shape profile, ...) that must all match for the bytes to be reused. Beside ``NAME`` live

* ``NAME.json``: the sidecar, with the key, the artefact's sha256 and size, and its I/O description;
* ``NAME.lock``: taken with ``fcntl.flock`` while checking and building, so two processes never build
  the same artefact twice: the second waits, then finds the first one's result valid and loads it.

Writes go to a temporary file in the same directory and are renamed over the target with ``os.replace``
(atomic on POSIX), artefact first, sidecar second. A build killed at any point leaves either the old
pair, or a new artefact whose sha256 the old sidecar does not match, or a stray temporary file that is
never read (and removed by the next build): all of which are detected and rebuilt, never loaded.

Nothing here imports TensorRT; tests exercise it with ONNX-side artefacts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.core import atomic_files
from seg_perception.core.errors import SegPerceptionError

LOG = logging.getLogger(__name__)
SIDECAR_FORMAT = 1


class ArtefactCacheError(SegPerceptionError):
    """A cached artefact is missing, stale or corrupt and may not be rebuilt, or could not be written."""


@dataclass(frozen=True)
class CachedArtefact:
    """Valid bytes for a key, where they live, and whether this call had to build them."""

    path: Path
    data: bytes
    sidecar: dict[str, Any]
    built: bool


@dataclass(frozen=True)
class Validation:
    """Outcome of checking an artefact against a key: `reason` says what is wrong when not `ok`."""

    ok: bool
    reason: str = ""
    data: bytes = b""
    sidecar: dict[str, Any] = field(default_factory=dict)


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_key(key: Mapping[str, object]) -> dict[str, str]:
    """Keys compare as strings so JSON round trips (ints, tuples) cannot cause false mismatches."""
    return {str(k): str(v) for k, v in sorted(key.items())}


def validate(path: Path, key: Mapping[str, object]) -> Validation:
    """Check the artefact at `path` against `key`: sidecar readable, every key field equal, bytes intact."""
    wanted = normalize_key(key)
    side = sidecar_path(path)
    if not path.is_file():
        return Validation(False, f"{path} does not exist")
    try:
        sidecar = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Validation(False, f"{side.name} (its key) is missing")
    except (OSError, ValueError) as exc:
        return Validation(False, f"{side.name} is unreadable ({exc})")
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        return Validation(False, f"{side.name} is not a format-{SIDECAR_FORMAT} sidecar")
    cached_key = sidecar.get("key")
    if not isinstance(cached_key, dict):
        return Validation(False, f"{side.name} has no key")
    mismatches = [
        f"{name} is {cached_key.get(name, '<absent>')!r}, wanted {value!r}"
        for name, value in wanted.items()
        if cached_key.get(name) != value
    ]
    mismatches += [f"{name} is not part of the key any more" for name in cached_key if name not in wanted]
    if mismatches:
        return Validation(False, "key mismatch: " + "; ".join(mismatches))
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Validation(False, f"{path.name} is unreadable ({exc})")
    if len(data) != sidecar.get("size") or sha256_bytes(data) != sidecar.get("sha256"):
        return Validation(
            False,
            f"{path.name} is corrupt or truncated ({len(data)} bytes, sha256 {sha256_bytes(data)[:12]}; "
            f"sidecar expects {sidecar.get('size')} bytes, sha256 {str(sidecar.get('sha256'))[:12]})",
        )
    return Validation(True, data=data, sidecar=sidecar)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write beside `path`, fsync, rename over it: readers see old or new, never half.

    Callers that may race on `path` hold `exclusive_lock(path)` (temp files of killed writers are only
    removed under that lock)."""
    atomic_files.write_bytes_atomic(path, data, durable=True)


def _remove_stale_temps(path: Path) -> None:
    """Temp files of a killed build; safe to delete because we hold the lock every writer takes."""
    for stale in atomic_files.stale_partials(path):
        with contextlib.suppress(OSError):
            stale.unlink()
            LOG.info("removed %s left by an interrupted build", stale.name)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on NAME.lock; logs once when another process has it (it is building)."""
    lock = lock_path(path)
    # The lock file is never deleted: unlinking a lock file lets two processes lock different inodes.
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            LOG.info("waiting for another process that is building %s", path.name)
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            LOG.info("%s: the other build finished after %.1f s", path.name, time.monotonic() - start)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def write_artefact(
    path: Path, key: Mapping[str, object], data: bytes, info: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write bytes and their sidecar (artefact first, so a crash in between leaves a detectable mismatch)."""
    sidecar = {
        "format": SIDECAR_FORMAT,
        "artefact": path.name,
        "key": normalize_key(key),
        "sha256": sha256_bytes(data),
        "size": len(data),
        "info": dict(info or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
    }
    write_bytes_atomic(path, data)
    write_bytes_atomic(sidecar_path(path), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return sidecar


def load_or_build(
    path: Path | str,
    key: Mapping[str, object],
    build: Callable[[], bytes],
    *,
    allow_build: bool,
    info: Mapping[str, Any] | None = None,
    how_to_build: str = "",
    force: bool = False,
) -> CachedArtefact:
    """The valid artefact for `key` at `path`, building it (once across processes) when needed.

    `allow_build=False` refuses a missing, stale or corrupt artefact with an ArtefactCacheError that
    says why and, via `how_to_build`, what to run. `force=True` rebuilds even a valid artefact, so it needs
    `allow_build=True` (a ValueError otherwise: the two contradict each other).
    """
    if force and not allow_build:
        raise ValueError("load_or_build: force=True rebuilds the artefact, which allow_build=False forbids")
    path = Path(path).expanduser()
    if not force:
        # Fast path without the lock: writes are atomic renames and the sha256 check catches a pair in flux.
        found = validate(path, key)
        if found.ok:
            return CachedArtefact(path, found.data, found.sidecar, built=False)
    hint = f"; {how_to_build}" if how_to_build else ""
    if not allow_build and not lock_path(path).exists():
        # Nobody ever built here, so nobody is building now: refuse without leaving a lock file behind.
        raise ArtefactCacheError(f"cannot use {path}: {found.reason}, and building is disabled{hint}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtefactCacheError(f"cannot create the cache directory {path.parent}: {exc}") from exc
    with exclusive_lock(path):
        found = validate(path, key)
        if found.ok and not force:
            # Another process built it while we waited for the lock.
            return CachedArtefact(path, found.data, found.sidecar, built=False)
        if not allow_build:
            raise ArtefactCacheError(f"cannot use {path}: {found.reason}, and building is disabled{hint}")
        if not force:
            LOG.info("building %s: %s", path.name, found.reason)
        _remove_stale_temps(path)
        data = build()
        if not data:
            raise ArtefactCacheError(f"building {path.name} produced no bytes")
        try:
            sidecar = write_artefact(path, key, data, info)
        except OSError as exc:
            raise ArtefactCacheError(f"cannot write {path}: {exc}") from exc
        return CachedArtefact(path, data, sidecar, built=True)

"""Private DDS domain ids for local runs (tests, bench, soak, demo), reserved machine-wide with file locks.

Two runs on one machine that pick the same ROS_DOMAIN_ID discover each other, even with localhost-only
discovery, and then see each other's frames. A pid-derived id collides often enough to flake parallel
test runs, so an id is only used while this process holds an exclusive lock on its lock file; the kernel
drops the lock when the process ends, however it ends. Lock files are opened close-on-exec, so child
processes (the node) never keep an id alive after the parent has gone.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

# 0 is every ROS install's default domain; 1-101 keep Fast DDS's ports out of Linux's ephemeral range.
FIRST_DOMAIN, LAST_DOMAIN = 1, 101
LOCK_DIR = Path(tempfile.gettempdir()) / "seg_perception_dds_domains"

_held: dict[int, int] = {}  # domain id -> open, locked file descriptor


class NoFreeDomainError(RuntimeError):
    """Every domain id in the private range is held by another process on this machine."""


def reserve_domain_id() -> int:
    """A domain id no other process on this machine holds; it stays ours until released or we exit."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    span = LAST_DOMAIN - FIRST_DOMAIN + 1
    start = os.getpid() % span  # spread first choices so processes rarely contend for the same file
    for offset in range(span):
        domain = FIRST_DOMAIN + (start + offset) % span
        if domain in _held:
            continue
        fd = os.open(LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _held[domain] = fd
        return domain
    raise NoFreeDomainError(f"all DDS domain ids {FIRST_DOMAIN}-{LAST_DOMAIN} are in use on this machine")


def release_domain_id(domain: int) -> None:
    """Give a reserved id back (idempotent)."""
    fd = _held.pop(domain, None)
    if fd is not None:
        os.close(fd)

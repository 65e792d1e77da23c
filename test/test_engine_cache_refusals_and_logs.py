"""What the artefact cache says and returns, word for word: each refusal's message, each log line, the
artefact it hands back, where it writes, and how it waits for another build holding the lock.

Tiny byte strings stand in for engines; the cache treats every artefact as bytes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest

from seg_perception.core import engine_cache
from seg_perception.core.engine_cache import (
    ArtefactCacheError,
    CachedArtefact,
    Validation,
    exclusive_lock,
    load_or_build,
    lock_path,
    sidecar_path,
    validate,
)

KEY = {"graph_sha256": "ab" * 32, "precision": "fp16"}
HOW = "build it with: seg-perception build-engine"


def _never() -> bytes:
    raise AssertionError("the cache built although it must not")


def _edit_sidecar(path: Path, **changes: object) -> None:
    side = sidecar_path(path)
    side.write_text(json.dumps({**json.loads(side.read_text()), **changes}))


# --- validate: every reason, word for word -------------------------------------------------------------------


def test_key_mismatch_names_each_changed_added_and_dropped_field(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, {"a": 1, "gone": "x", "same": 5}, b"engine")
    found = validate(path, {"a": 2, "new": 3, "same": 5})
    assert found == Validation(
        False,
        "key mismatch: a is '1', wanted '2'; new is '<absent>', wanted '3'; gone is not part of the key any more",
    )


def test_a_sidecar_without_a_key_dict_says_so(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, KEY, b"engine")
    for key in (["graph_sha256"], None):
        _edit_sidecar(path, key=key)
        assert validate(path, KEY) == Validation(False, "m.engine.json has no key")


def test_a_sidecar_that_is_a_directory_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    path.write_bytes(b"engine")
    sidecar_path(path).mkdir()
    assert validate(path, KEY) == Validation(
        False, f"m.engine.json is unreadable ([Errno 21] Is a directory: '{sidecar_path(path)}')"
    )


def test_an_artefact_that_cannot_be_read_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, KEY, b"engine")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert validate(path, KEY) == Validation(False, f"m.engine is unreadable ([Errno 13] Permission denied: '{path}')")


def test_a_corrupt_artefact_reports_both_sizes_and_sha256_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, KEY, b"engine")
    path.write_bytes(b"engine!")
    found = validate(path, KEY)
    have, want = engine_cache.sha256_bytes(b"engine!"), engine_cache.sha256_bytes(b"engine")
    assert found == Validation(
        False,
        f"m.engine is corrupt or truncated (7 bytes, sha256 {have[:12]}; sidecar expects 6 bytes, sha256 {want[:12]})",
    )


def test_a_wrong_size_alone_or_a_wrong_sha256_alone_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, KEY, b"engine")
    sha = engine_cache.sha256_bytes(b"engine")[:12]
    _edit_sidecar(path, size=7)  # the sha256 still matches the bytes
    assert validate(path, KEY) == Validation(
        False, f"m.engine is corrupt or truncated (6 bytes, sha256 {sha}; sidecar expects 7 bytes, sha256 {sha})"
    )
    _edit_sidecar(path, size=6, sha256="f" * 64)  # the size still matches the bytes
    assert validate(path, KEY) == Validation(
        False, f"m.engine is corrupt or truncated (6 bytes, sha256 {sha}; sidecar expects 6 bytes, sha256 ffffffffffff)"
    )


def test_a_sidecar_without_size_or_sha256_is_corrupt_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    engine_cache.write_artefact(path, KEY, b"engine")
    side = json.loads(sidecar_path(path).read_text())
    del side["size"], side["sha256"]
    sidecar_path(path).write_text(json.dumps(side))
    assert validate(path, KEY).reason.endswith("; sidecar expects None bytes, sha256 None)")


def test_a_valid_artefact_comes_with_its_bytes_and_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    written = engine_cache.write_artefact(path, KEY, b"engine", {"io": 1})
    assert validate(path, {"precision": "fp16", "graph_sha256": "ab" * 32}) == Validation(True, "", b"engine", written)


# --- load_or_build: what it returns, where it writes ---------------------------------------------------------


def test_built_and_loaded_artefacts_carry_their_path_bytes_and_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    built = load_or_build(str(path), KEY, lambda: b"engine", allow_build=True, info={"io": 2})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert built == CachedArtefact(path, b"engine", sidecar, built=True)
    assert sidecar["info"] == {"io": 2} and sidecar["key"] == KEY
    assert load_or_build(path, KEY, _never, allow_build=True) == CachedArtefact(path, b"engine", sidecar, False)
    assert load_or_build(path, KEY, _never, allow_build=False) == CachedArtefact(path, b"engine", sidecar, False)


def test_a_path_under_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # where an unexpanded "~" would land
    result = load_or_build("~/cache/m.engine", KEY, lambda: b"engine", allow_build=True)
    assert result.path == tmp_path / "cache" / "m.engine"
    assert (tmp_path / "cache" / "m.engine").read_bytes() == b"engine"
    assert not (tmp_path / "~").exists()


def test_missing_cache_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "m.engine"
    assert load_or_build(path, KEY, lambda: b"engine", allow_build=True).built is True
    assert path.read_bytes() == b"engine"


def test_a_cache_directory_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "m.engine"
    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, KEY, _never, allow_build=True)
    assert str(refused.value) == (
        f"cannot create the cache directory {tmp_path / 'file'}: [Errno 17] File exists: '{tmp_path / 'file'}'"
    )
    assert isinstance(refused.value.__cause__, FileExistsError)


def test_a_build_that_returns_no_bytes_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, KEY, lambda: b"", allow_build=True)
    assert str(refused.value) == "building m.engine produced no bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine.lock"]


def test_an_artefact_that_cannot_be_written_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine_cache, "write_bytes_atomic", full)
    path = tmp_path / "m.engine"
    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, KEY, lambda: b"engine", allow_build=True)
    assert str(refused.value) == f"cannot write {path}: [Errno 28] No space left on device"
    assert isinstance(refused.value.__cause__, OSError)


# --- load_or_build: refusals when building is disabled -------------------------------------------------------


def _refused_as_missing_with_and_without_the_hint(path: Path) -> None:
    """A missing artefact with building disabled: the refusal word for word, with how_to_build and without."""
    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, KEY, _never, allow_build=False, how_to_build=HOW)
    assert str(refused.value) == f"cannot use {path}: {path} does not exist, and building is disabled; {HOW}"
    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, KEY, _never, allow_build=False)
    assert str(refused.value) == f"cannot use {path}: {path} does not exist, and building is disabled"


def test_refusal_where_nothing_was_ever_built_leaves_no_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    _refused_as_missing_with_and_without_the_hint(path)
    assert list(tmp_path.iterdir()) == []


def test_a_forced_rebuild_with_building_disabled_is_refused_before_anything_is_read_or_made(tmp_path: Path) -> None:
    """force=True rebuilds, allow_build=False forbids building: the two together are a caller's mistake,
    refused as such whether or not a valid artefact is there (it had given "cannot use ...: , and building is
    disabled", an empty reason, for a valid one)."""
    path = tmp_path / "cache" / "m.engine"
    message = "load_or_build: force=True rebuilds the artefact, which allow_build=False forbids"
    with pytest.raises(ValueError) as refused:
        load_or_build(path, KEY, _never, allow_build=False, force=True)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []  # no cache directory, no lock file
    load_or_build(path, KEY, lambda: b"engine", allow_build=True)
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(ValueError) as refused:
        load_or_build(path, KEY, _never, allow_build=False, force=True)
    assert str(refused.value) == message
    assert sorted(p.name for p in path.parent.iterdir()) == before and path.read_bytes() == b"engine"


def test_refusal_after_an_earlier_build_checks_under_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, KEY, lambda: b"engine", allow_build=True)
    path.unlink()  # the lock file stays: someone may be building, so the cache looks under the lock
    _refused_as_missing_with_and_without_the_hint(path)


# --- load_or_build: force and the build log ------------------------------------------------------------------


def test_a_build_logs_why_and_a_forced_rebuild_does_not(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "m.engine"
    with caplog.at_level(logging.INFO, logger=engine_cache.LOG.name):
        load_or_build(path, KEY, lambda: b"old", allow_build=True)
        assert caplog.messages == [f"building m.engine: {path} does not exist"]
        caplog.clear()
        forced = load_or_build(path, KEY, lambda: b"new", allow_build=True, force=True)
        assert caplog.messages == []
    assert (forced.built, forced.data, path.read_bytes()) == (True, b"new", b"new")
    assert validate(path, KEY).ok


# --- exclusive_lock ------------------------------------------------------------------------------------------


def test_the_lock_file_is_created_readable_by_all_writable_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    before = os.umask(0)
    try:
        with exclusive_lock(path):
            assert lock_path(path).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(before)


def test_the_lock_is_exclusive_while_held_and_released_after(tmp_path: Path) -> None:
    path = tmp_path / "m.engine"
    other = os.open(lock_path(path), os.O_RDWR | os.O_CREAT)
    try:
        with exclusive_lock(path), pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: taken at once
    finally:
        os.close(other)


class _Signal(logging.Handler):
    """Sets an event when the cache logs that it waits for another build."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.waiting = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for another process"):
            self.waiting.set()


def test_a_request_that_waited_for_another_build_loads_its_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another holder of the lock (a thread here, a process in production) builds while this request waits."""
    path = tmp_path / "m.engine"
    signal, holding, failures = _Signal(), threading.Event(), []

    def other_build() -> None:
        with exclusive_lock(path):
            holding.set()
            if not signal.waiting.wait(timeout=30):
                failures.append("the request never waited for the lock")
            time.sleep(0.3)
            engine_cache.write_artefact(path, KEY, b"their engine")

    engine_cache.LOG.addHandler(signal)
    try:
        with caplog.at_level(logging.INFO, logger=engine_cache.LOG.name):
            other = threading.Thread(target=other_build)
            other.start()
            assert holding.wait(timeout=30)
            result = load_or_build(path, KEY, _never, allow_build=True)
            other.join(timeout=30)
    finally:
        engine_cache.LOG.removeHandler(signal)
    assert failures == []
    assert result == CachedArtefact(path, b"their engine", json.loads(sidecar_path(path).read_text()), built=False)
    assert caplog.messages[0] == "waiting for another process that is building m.engine"
    assert len(caplog.messages) == 2
    waited = re.fullmatch(r"m\.engine: the other build finished after (\d+\.\d) s", caplog.messages[1])
    assert waited is not None, caplog.messages[1]
    assert 0.2 <= float(waited.group(1)) < 30.0

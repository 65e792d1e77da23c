"""The artefact cache rebuilds on any key change or damage, never loads half-written files, builds once.

TensorRT cannot run here, so the cached artefacts are ONNX-side ones (a fused graph, its QDQ copy)
under an engine-shaped key: the cache code is the same for engines.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import onnx
import pytest
from int8_support import needs_int8_quantizer
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.core import engine_cache
from seg_perception.core.engine_cache import ArtefactCacheError, load_or_build, sidecar_path
from seg_perception.core.graph_compiler import compile_fused_graph, graph_digest
from seg_perception.core.spec_loader import load_model_spec

KEY = {
    "format": "seg_perception-engine/1",
    "graph_sha256": "0" * 64,
    "tensorrt_version": "10.3.0",
    "gpu_name": "Orin",
    "compute_capability": "8.7",
    "precision": "fp16",
    "shape_profile": "image:1..1x120x160x3",
    "device": "gpu",
}


@pytest.fixture(scope="module")
def fused_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("model")
    conv_logits_model(d / "m.onnx", 3, 48, 64)
    spec = load_model_spec(write_spec(d / "m.yaml", spec_dict("m.onnx", ["road", "car", "sky"])))
    return compile_fused_graph(spec, 160, 120).SerializeToString()


class Builder:
    """A build function that counts its calls and returns the fused graph's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def _key(fused: bytes, **changes: str) -> dict[str, str]:
    return {**KEY, "graph_sha256": graph_digest(onnx.ModelProto.FromString(fused)), **changes}


def test_second_request_loads_without_building(tmp_path: Path, fused_bytes: bytes) -> None:
    build = Builder(fused_bytes)
    first = load_or_build(tmp_path / "m.engine", _key(fused_bytes), build, allow_build=True)
    second = load_or_build(tmp_path / "m.engine", _key(fused_bytes), build, allow_build=True)
    assert (first.built, second.built, build.calls) == (True, False, 1)
    assert second.data == fused_bytes
    onnx.checker.check_model(onnx.ModelProto.FromString(second.data))


def test_sidecar_records_key_hash_size_and_io(tmp_path: Path, fused_bytes: bytes) -> None:
    path = tmp_path / "m.engine"
    io = {"inputs": [{"name": "image", "dtype": "uint8", "shape": ["1..1", 120, 160, 3]}]}
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True, info={"io": io})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == engine_cache.SIDECAR_FORMAT
    assert sidecar["artefact"] == "m.engine"
    assert sidecar["key"] == _key(fused_bytes)
    assert sidecar["sha256"] == engine_cache.sha256_bytes(fused_bytes)
    assert sidecar["size"] == len(fused_bytes)
    assert sidecar["info"]["io"] == io
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "m.engine.lock"]


@pytest.mark.parametrize("field", sorted(KEY))
def test_every_key_field_mismatch_rebuilds_or_is_refused(tmp_path: Path, fused_bytes: bytes, field: str) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True)
    changed = _key(fused_bytes, **{field: "something-else"})

    with pytest.raises(ArtefactCacheError) as refused:
        load_or_build(path, changed, Builder(b"never"), allow_build=False, how_to_build="run build-engine")
    message = str(refused.value)
    assert field in message and "something-else" in message and "run build-engine" in message
    assert "\n" not in message

    build = Builder(b"rebuilt engine bytes")
    result = load_or_build(path, changed, build, allow_build=True)
    assert (result.built, build.calls, result.data) == (True, 1, b"rebuilt engine bytes")
    assert json.loads(sidecar_path(path).read_text())["key"][field] == "something-else"
    assert load_or_build(path, changed, build, allow_build=False).built is False


def test_a_field_dropped_from_the_key_is_a_mismatch(tmp_path: Path, fused_bytes: bytes) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True)
    smaller = {k: v for k, v in _key(fused_bytes).items() if k != "device"}
    assert not engine_cache.validate(path, smaller).ok


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip_byte", "append", "empty", "delete_sidecar", "garbage_sidecar", "sidecar_wrong_format"],
)
def test_damaged_artefact_is_rebuilt_or_clearly_refused(tmp_path: Path, fused_bytes: bytes, damage: str) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True)
    side = sidecar_path(path)
    if damage == "truncate":
        path.write_bytes(fused_bytes[: len(fused_bytes) // 2])
    elif damage == "flip_byte":
        data = bytearray(fused_bytes)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "append":
        path.write_bytes(fused_bytes + b"\0")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "delete_sidecar":
        side.unlink()
    elif damage == "garbage_sidecar":
        side.write_text("{not json")
    else:
        side.write_text(json.dumps({**json.loads(side.read_text()), "format": 99}))

    with pytest.raises(ArtefactCacheError, match=r"cannot use .*m\.engine: .*building is disabled"):
        load_or_build(path, _key(fused_bytes), Builder(b"never"), allow_build=False)
    build = Builder(fused_bytes)
    result = load_or_build(path, _key(fused_bytes), build, allow_build=True)
    assert (result.built, build.calls, path.read_bytes()) == (True, 1, fused_bytes)
    assert engine_cache.validate(path, _key(fused_bytes)).ok


def test_corrupt_artefact_refusal_names_the_problem(tmp_path: Path, fused_bytes: bytes) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True)
    path.write_bytes(fused_bytes[:100])
    with pytest.raises(ArtefactCacheError, match="corrupt or truncated"):
        load_or_build(path, _key(fused_bytes), Builder(b"never"), allow_build=False)


def test_leftover_temp_file_of_a_killed_build_is_never_loaded(tmp_path: Path, fused_bytes: bytes) -> None:
    path = tmp_path / "m.engine"
    # A build killed after writing its temp file but before the rename: no artefact, a plausible temp file.
    stale = tmp_path / ".m.engine.4242-x1y2z3.partial.engine"
    stale.write_bytes(fused_bytes)
    with pytest.raises(ArtefactCacheError, match="does not exist"):
        load_or_build(path, _key(fused_bytes), Builder(b"never"), allow_build=False)
    build = Builder(b"fresh engine")
    result = load_or_build(path, _key(fused_bytes), build, allow_build=True)
    assert (result.data, build.calls) == (b"fresh engine", 1)
    assert not stale.exists(), "the next build (holding the lock) removes temp files of killed builds"


def test_killed_rebuild_keeps_serving_the_old_valid_artefact(tmp_path: Path, fused_bytes: bytes) -> None:
    path = tmp_path / "m.engine"
    load_or_build(path, _key(fused_bytes), Builder(fused_bytes), allow_build=True)
    (tmp_path / ".m.engine.4242-abc.partial.engine").write_bytes(b"half an engine")
    result = load_or_build(path, _key(fused_bytes), Builder(b"never"), allow_build=False)
    assert (result.built, result.data) == (False, fused_bytes)


def test_failed_build_leaves_no_artefact_and_no_temp(tmp_path: Path, fused_bytes: bytes) -> None:
    def explode() -> bytes:
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        load_or_build(tmp_path / "m.engine", _key(fused_bytes), explode, allow_build=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine.lock"]


PROCESSES = 4
LOCK_WAIT_S = 60.0  # generous: the machine is shared; only a broken lock ever waits this long


class _SignalWaitingOnLock(logging.Handler):
    """Releases a semaphore when this process logs that it is waiting for another process's build."""

    def __init__(self, waiting: Any) -> None:
        super().__init__(logging.INFO)
        self.waiting = waiting

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for another process that is building"):
            self.waiting.release()


def _request(path: str, marker: str, data: bytes, waiting: Any, results: multiprocessing.Queue) -> None:
    def build() -> bytes:
        with open(marker, "a") as handle:  # one line per build, across processes
            handle.write("built\n")
        # Hold the build until every other process is blocked on the lock: they all arrive mid-build
        # by construction, not by a delay that a slow machine might not honour.
        for arrived in range(PROCESSES - 1):
            if not waiting.acquire(timeout=LOCK_WAIT_S):
                raise RuntimeError(f"only {arrived} of {PROCESSES - 1} other processes waited on the lock")
        return data

    logger = logging.getLogger(engine_cache.LOG.name)
    logger.setLevel(logging.INFO)
    logger.addHandler(_SignalWaitingOnLock(waiting))
    key = {**KEY, "graph_sha256": engine_cache.sha256_bytes(data)}
    try:
        result = load_or_build(Path(path), key, build, allow_build=True)
    except (RuntimeError, ArtefactCacheError, OSError) as exc:  # reported to the test, which names it
        results.put(("error", repr(exc)))
        return
    results.put((result.built, engine_cache.sha256_bytes(result.data)))


def test_concurrent_processes_build_exactly_once(tmp_path: Path, fused_bytes: bytes) -> None:
    """Four processes ask for a missing artefact; one builds while the other three wait on the lock."""
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = ctx.Queue()
    waiting = ctx.Semaphore(0)
    marker = tmp_path / "builds.txt"
    procs = [
        ctx.Process(target=_request, args=(str(tmp_path / "m.engine"), str(marker), fused_bytes, waiting, results))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=LOCK_WAIT_S + 60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert all(built != "error" for built, _ in outcomes), outcomes
    assert marker.read_text().splitlines() == ["built"]
    assert sorted(built for built, _ in outcomes) == [False, False, False, True]
    assert {digest for _, digest in outcomes} == {engine_cache.sha256_bytes(fused_bytes)}


@needs_int8_quantizer
def test_qdq_graph_round_trips_through_the_cache(tmp_path: Path, fused_bytes: bytes) -> None:
    from seg_perception.core.quantization import quantize_fused_graph
    from seg_perception.synthetic.scenes import generate_scene

    fused = onnx.ModelProto.FromString(fused_bytes)
    qdq = quantize_fused_graph(fused, [generate_scene(s, 160, 120).image for s in range(2)], method="minmax")
    key = {"format": "qdq-trt/1", "graph_sha256": graph_digest(fused)}
    path = tmp_path / "m-qdq.onnx"
    load_or_build(path, key, qdq.SerializeToString, allow_build=True)
    loaded = load_or_build(path, key, Builder(b"never"), allow_build=False)
    assert graph_digest(onnx.ModelProto.FromString(loaded.data)) == graph_digest(qdq)


def test_the_sidecar_file_is_sorted_indented_json_with_time_and_host(
    tmp_path: Path, fused_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    real = time.gmtime
    monkeypatch.setattr(engine_cache.time, "gmtime", lambda *at: real(*at) if at else real(86_400 + 3_723))
    monkeypatch.setattr(engine_cache.socket, "gethostname", lambda: "orin-7")
    path = tmp_path / "m.engine"
    written = engine_cache.write_artefact(path, {"b": 2, "a": "x"}, b"engine", {"io": {"z": 1}})
    expected = {
        "artefact": "m.engine",
        "created": "1970-01-02T01:02:03Z",
        "format": engine_cache.SIDECAR_FORMAT,
        "host": "orin-7",
        "info": {"io": {"z": 1}},
        "key": {"a": "x", "b": "2"},
        "sha256": engine_cache.sha256_bytes(b"engine"),
        "size": 6,
    }
    assert written == expected
    assert sidecar_path(path).read_text() == json.dumps(expected, indent=2, sort_keys=True) + "\n"
    assert sidecar_path(path).read_text().startswith('{\n  "artefact": "m.engine",\n  "created": ')
    assert path.read_bytes() == b"engine"


def test_the_artefact_and_its_sidecar_are_synced_before_their_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seg_perception.core import atomic_files

    synced: list[int] = []
    monkeypatch.setattr(atomic_files.os, "fsync", synced.append)
    engine_cache.write_artefact(tmp_path / "m.engine", {"a": 1}, b"engine")
    assert len(synced) == 2


def test_removing_temps_of_killed_builds_is_logged_and_skips_what_it_cannot_remove(
    tmp_path: Path, fused_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.engine"
    (tmp_path / ".m.engine.4242-aaaa.partial.engine").write_bytes(b"half")
    odd = tmp_path / ".m.engine.4243-bbbb.partial.engine"
    odd.mkdir()  # not a file: unlink fails, the build goes on
    with caplog.at_level(logging.INFO, logger=engine_cache.LOG.name):
        result = load_or_build(path, _key(fused_bytes), Builder(b"fresh"), allow_build=True)
    assert result.data == b"fresh" and odd.is_dir()
    assert "removed .m.engine.4242-aaaa.partial.engine left by an interrupted build" in caplog.messages


def test_validate_says_exactly_what_is_wrong(tmp_path: Path) -> None:
    path, key = tmp_path / "m.engine", {"a": 1}
    assert engine_cache.validate(path, key) == engine_cache.Validation(False, f"{path} does not exist")
    path.write_bytes(b"engine")
    assert engine_cache.validate(path, key) == engine_cache.Validation(False, "m.engine.json (its key) is missing")
    sidecar_path(path).write_text("{not json")
    reason = engine_cache.validate(path, key).reason
    assert reason.startswith("m.engine.json is unreadable (Expecting property name")
    assert engine_cache.validate(path, key).ok is False
    sidecar_path(path).write_text('{"format": "other"}')
    fmt = engine_cache.SIDECAR_FORMAT
    assert engine_cache.validate(path, key) == engine_cache.Validation(
        False, f"m.engine.json is not a format-{fmt} sidecar"
    )
    sidecar_path(path).write_text("[]")
    assert engine_cache.validate(path, key) == engine_cache.Validation(
        False, f"m.engine.json is not a format-{fmt} sidecar"
    )


def test_a_sidecar_is_read_as_utf_8_whatever_the_locale(tmp_path: Path, ascii_locale: str) -> None:
    path = tmp_path / "m.engine"
    written = engine_cache.write_artefact(path, {"camera": "caméra"}, b"engine")
    # The sidecar as a tool that writes raw UTF-8 would (json.dumps escapes "é" as \\u00e9 by default).
    sidecar_path(path).write_bytes(json.dumps(written, ensure_ascii=False).encode())
    assert "caméra".encode() in sidecar_path(path).read_bytes()
    assert ascii_locale == "ANSI_X3.4-1968"
    assert engine_cache.validate(path, {"camera": "caméra"}).ok is True

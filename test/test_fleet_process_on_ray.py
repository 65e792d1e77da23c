"""`process --ray` on a real local Ray (started once for the module, 2 CPUs): the same bags as a sequential
run, message for message; chunks; a worker killed mid-bag; a corrupt bag; Ctrl-C.

Faults are planted in the Ray workers by `fleet_fault_injection` (this job's worker_process_setup_hook).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from child_signals import foreground_sigint
from fleet_bags import listing, metadata_text, process, read_bag
from fleet_fault_injection import FAULT_DIR_ENV

from seg_perception.fleet.ray_runtime import keep_local_ray_on_loopback
from seg_perception.fleet.work_units import inspect_bag
from seg_perception.synthetic.drive_bag import SyntheticCamera, write_synthetic_drive

W, H = 96, 64
TEST_DIR = Path(__file__).resolve().parent
DEADLINE_S = 180.0  # generous: Ray starts workers slowly on a loaded machine


@dataclass(frozen=True)
class LocalRay:
    address: str
    fault_dir: Path
    runtime_env: dict[str, Any]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRay]:
    import ray

    fault_dir = tmp_path_factory.mktemp("faults")
    path = os.pathsep.join(p for p in (str(TEST_DIR), os.environ.get("PYTHONPATH", "")) if p)
    runtime_env = {
        "worker_process_setup_hook": "fleet_fault_injection.install",
        "env_vars": {"PYTHONPATH": path, FAULT_DIR_ENV: str(fault_dir)},
    }
    loopback = keep_local_ray_on_loopback()  # as `--ray` does for a Ray it starts: 127.0.0.1 only
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False, **loopback)
    try:
        yield LocalRay(ray.get_runtime_context().gcs_address, fault_dir, runtime_env)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def drives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three bags: MCAP rgb8, sqlite3 with two JPEG cameras, and a longer MCAP one (for chunks)."""
    root = tmp_path_factory.mktemp("ray_fleet") / "drives"
    write_synthetic_drive(root / "a", 6, width=W, height=H, rate_hz=10, storage="mcap")
    cams = [SyntheticCamera("/camera/front/image_raw", True), SyntheticCamera("/camera/left/image_raw", True)]
    write_synthetic_drive(root / "b", 4, cams, W, H, rate_hz=10, seed=2, storage="sqlite3")
    write_synthetic_drive(root / "long" / "c", 9, width=W, height=H, rate_hz=10, seed=4, storage="mcap")
    return root


@pytest.fixture(scope="module")
def sequential(drives: Path, spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: each bag through the one-bag `process IN_BAG OUT_BAG`, in this process."""
    out = tmp_path_factory.mktemp("sequential")
    for rel in ("a", "b", "long/c"):
        assert process(spec_path, str(drives / rel), str(out / rel)) == 0
    return out


def _same_bags(out: Path, reference: Path, pairs: dict[str, str]) -> None:
    """The bags under `out` are exactly `pairs`' keys, each equal to the reference bag its value names."""
    tops = sorted({rel.split("/")[0] for rel in pairs})
    assert [p for p in listing(out) if "/" not in p] == tops  # no other bag, no staging directory
    for rel, ref in pairs.items():
        assert read_bag(out / rel) == read_bag(reference / ref), rel
        assert metadata_text(out / rel) == metadata_text(reference / ref), rel


def _summary(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _damage_mid_file(bag: Path) -> None:
    """Garbage over 8 KiB at 30 % of the sqlite file: it opens, and fails while its messages are read."""
    db = next(bag.glob("*.db3"))
    data = bytearray(db.read_bytes())
    at = int(len(data) * 0.3)
    data[at : at + 8192] = b"\xff" * 8192
    db.write_bytes(bytes(data))


def test_bags_on_ray_equal_the_sequential_run_and_a_corrupt_bag_fails_alone(
    local_ray: LocalRay, drives: Path, sequential: Path, spec_path: Path, tmp_path: Path
) -> None:
    """MCAP and sqlite3 bags on two actors give the sequential run's bags; of two corrupt bags, one found
    while planning and one only while a worker reads it, each fails alone with its reason (exit 1)."""
    bad = write_synthetic_drive(tmp_path / "in" / "bad", 10, width=W, height=H, storage="sqlite3").path
    _damage_mid_file(bad)
    assert inspect_bag(bad, ()).frames == 10  # planning reads it; the worker finds the damage
    garbage = write_synthetic_drive(tmp_path / "in" / "garbage", 2, width=W, height=H, storage="mcap").path
    (garbage / "garbage.mcap").write_bytes(b"not a bag" * 100)
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    inputs = [str(bad), str(drives / "a"), str(drives / "b"), str(garbage), str(drives / "long")]
    assert process(spec_path, *inputs, str(out), "--ray", "--workers", "2", "--summary", str(summary)) == 1
    _same_bags(out, sequential, {"a": "a", "b": "b", "c": "long/c"})
    report = _summary(summary)
    assert [(b["status"], b["frames"], b["chunks"], b["attempts"]) for b in report["bags"]] == [
        ("failed", 0, 1, 1),
        ("done", 6, 1, 1),
        ("done", 8, 1, 1),
        ("failed", 0, 1, 0),
        ("done", 9, 1, 1),
    ]
    assert (
        report["bags"][0]["error"]
        == f"cannot read bag {bad}: database disk image is malformed (the file is truncated or corrupt)"
    )
    assert report["bags"][3]["error"].startswith(f"cannot read bag {garbage}: ")
    assert [b["output"] for b in report["bags"]] == [None, str(out / "a"), str(out / "b"), None, str(out / "c")]
    totals = report["totals"]
    assert (totals["done"], totals["failed"], totals["frames"], totals["workers"], totals["ray"]) == (
        3,
        2,
        23,
        2,
        "local",
    )
    assert all(
        len(b["workers"]) == 1 and b["workers"][0].split(":")[1] != str(os.getpid())
        for b in report["bags"]
        if b["status"] == "done"
    )


def test_one_bag_on_two_workers_is_chunked_and_equals_the_unchunked_bag(
    local_ray: LocalRay, drives: Path, sequential: Path, spec_path: Path, tmp_path: Path
) -> None:
    out, summary = tmp_path / "c", tmp_path / "summary.json"
    assert (
        process(spec_path, str(drives / "long" / "c"), str(out), "--ray", "--workers", "2", "--summary", str(summary))
        == 0
    )
    assert read_bag(out) == read_bag(sequential / "long" / "c")
    assert metadata_text(out) == metadata_text(sequential / "long" / "c")
    (bag,) = _summary(summary)["bags"]
    assert (bag["chunks"], bag["attempts"], bag["frames"], len(bag["workers"])) == (2, 2, 9, 2)
    assert listing(tmp_path) == ["c", "c/c.mcap", "c/metadata.yaml", "summary.json"]  # no chunks, no staging


def test_a_worker_killed_mid_bag_is_replaced_and_its_bag_done_once(
    local_ray: LocalRay, drives: Path, sequential: Path, spec_path: Path, tmp_path: Path
) -> None:
    (local_ray.fault_dir / "kill").touch()  # the first worker to segment its 3rd frame kills itself
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    try:
        assert (
            process(
                spec_path,
                str(drives / "a"),
                str(drives / "long"),
                str(out),
                "--ray",
                "--workers",
                "2",
                "--summary",
                str(summary),
            )
            == 0
        )
        killed = [p for p in local_ray.fault_dir.iterdir() if p.name.startswith("killed-")]
        assert len(killed) == 1, "no worker was killed"
        killed_pid = killed[0].name.removeprefix("killed-")
    finally:
        for p in local_ray.fault_dir.iterdir():
            p.unlink()
    _same_bags(out, sequential, {"a": "a", "c": "long/c"})
    report = _summary(summary)
    retried = [b for b in report["bags"] if b["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["status"] == "done", report
    # The killed attempt reported nothing; the bag was done by another worker process.
    assert [w.split(":")[1] for w in retried[0]["workers"]] != [killed_pid]
    assert all(w.split(":")[1] != killed_pid for b in report["bags"] for w in b["workers"])
    assert sum(b["attempts"] for b in report["bags"]) == 3
    assert report["bags"][0]["frames"] + report["bags"][1]["frames"] == 6 + 9


def test_ctrl_c_stops_every_worker_and_leaves_nothing_partial(
    local_ray: LocalRay, drives: Path, spec_path: Path, tmp_path: Path
) -> None:
    """SIGINT to the CLI while both workers are mid-bag (held at their 3rd frame): exit 130, no output
    bag, no staging directory, the workers' processes gone, the summary says interrupted."""
    (local_ray.fault_dir / "block").touch()
    out, summary, log = tmp_path / "out", tmp_path / "summary.json", tmp_path / "stderr.txt"
    argv = [
        "process",
        str(drives / "a"),
        str(drives / "long"),
        str(out),
        "--ray",
        "--workers",
        "2",
        "--model",
        str(spec_path),
        "--backend",
        "onnxruntime",
        "--summary",
        str(summary),
    ]
    code = (
        "import sys, ray\n"
        f"ray.init(address={local_ray.address!r}, runtime_env={local_ray.runtime_env!r}, log_to_driver=False)\n"
        "from seg_perception import cli\n"
        f"sys.exit(cli.main({argv!r}))\n"
    )
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=foreground_sigint
        )
    try:
        blocked = _wait_for(
            lambda: [p for p in local_ray.fault_dir.iterdir() if p.name.startswith("blocked-")], proc, log
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE_S) == 130, log.read_text()
    finally:
        (local_ray.fault_dir / "release").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in local_ray.fault_dir.iterdir():
            p.unlink()
    assert "interrupted: 0 of 2 bags were complete" in log.read_text()
    assert not out.exists(), listing(out)  # neither bag nor staging directory, and the root we made is gone
    report = _summary(summary)
    assert [b["status"] for b in report["bags"]] == ["interrupted", "interrupted"]
    for pid in (int(p.name.removeprefix("blocked-")) for p in blocked):
        _wait_for(lambda pid=pid: not _alive(pid), None, log)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: Any, proc: subprocess.Popen[bytes] | None, log: Path) -> Any:
    """Poll `condition` until it is truthy (fail if `proc` ends first, or after DEADLINE_S)."""
    tick = threading.Event()
    for _ in range(int(DEADLINE_S / 0.05)):
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended ({proc.returncode}) before the workers were held: {log.read_text()}")
        tick.wait(0.05)
    pytest.fail(f"not within {DEADLINE_S} s: {log.read_text()}")


def test_a_fleet_of_video_bags_on_ray_equals_the_sequential_run_chunks_included(
    local_ray: LocalRay, spec_path: Path, tmp_path: Path
) -> None:
    """H.264 (B-frames, CompressedVideo) and H.265 (FFMPEGPacket) MCAPs on two workers; the H.264 bag alone is
    cut into two chunks whose bound falls inside a GOP: a chunk decodes from the keyframe before its start
    (no decoder state travels), and the merged bag equals the one-pass bag message for message."""
    from seg_perception.bag.bag_io import COMPRESSED_VIDEO, FFMPEG_PACKET
    from seg_perception.synthetic.video_drive import VideoSettings, write_video_drive

    root, ref = tmp_path / "drives", tmp_path / "sequential"
    h264 = VideoSettings("libx264", gop=4, bframes=2)
    write_video_drive(root / "drive_h264", 11, W, H, h264, COMPRESSED_VIDEO, rate_hz=10, storage="mcap")
    h265 = VideoSettings("libx265", gop=3, bframes=1)
    ffmpeg = "/camera/front/image_raw/ffmpeg"
    write_video_drive(root / "drive_h265", 7, W, H, h265, FFMPEG_PACKET, ffmpeg, rate_hz=10, seed=3, storage="mcap")
    for rel in ("drive_h264", "drive_h265"):
        assert process(spec_path, str(root / rel), str(ref / rel), "--outputs", "labels") == 0
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    words = ("--outputs", "labels", "--ray", "--workers", "2", "--summary", str(summary))
    assert process(spec_path, str(root), str(out), *words) == 0
    _same_bags(out, ref, {"drive_h264": "drive_h264", "drive_h265": "drive_h265"})
    assert [(b["status"], b["frames"]) for b in _summary(summary)["bags"]] == [("done", 11), ("done", 7)]
    chunked, summary = tmp_path / "drive_h264", tmp_path / "chunked.json"
    words = ("--outputs", "labels", "--ray", "--workers", "2", "--summary", str(summary))
    assert process(spec_path, str(root / "drive_h264"), str(chunked), *words) == 0
    assert read_bag(chunked) == read_bag(ref / "drive_h264")
    assert metadata_text(chunked) == metadata_text(ref / "drive_h264")
    (bag,) = _summary(summary)["bags"]
    assert (bag["chunks"], bag["frames"]) == (2, 11)

"""`process` and `eval` find the bad segments of a drive: a recorded drive with black frames, then a frozen
camera, lists per reason the frames flagged and the span of the drive they cover, in the --summary JSON and
the log; `eval` does the same by frame name over its images in name order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from seg_perception import cli
from seg_perception.bag.bag_io import CAMERA_INFO, IMAGE, add_typed_connection, bag_writer, typestore
from seg_perception.core.health import HealthThresholds
from seg_perception.synthetic.drive_bag import START_NS, camera_info, frame_message
from seg_perception.synthetic.scenes import generate_drive

W, H = 160, 96
TOPIC = "/camera/front/image_raw"
PERIOD_NS = 66_666_667
FLAG, CLEAR = HealthThresholds().flag_frames, HealthThresholds().clear_frames
BLACK, FROZEN = range(20, 30), range(45, 55)  # frames 45..54 repeat frame 44


def _stamp(i: int) -> int:
    return START_NS + i * PERIOD_NS


def _write_drive(bag: Path, frames: int = 70) -> None:
    store = typestore()
    types = store.types
    images = [s.image for s in generate_drive(frames, W, H, seed=5)]
    with bag_writer(bag, "sqlite3", False) as writer:
        image_conn = add_typed_connection(writer, TOPIC, IMAGE)
        info_conn = add_typed_connection(writer, "/camera/front/camera_info", CAMERA_INFO)
        for i in range(frames):
            sec, nanosec = divmod(_stamp(i), 1_000_000_000)
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id="front"
            )
            rgb = np.zeros_like(images[i]) if i in BLACK else images[44] if i in FROZEN else images[i]
            writer.write(info_conn, _stamp(i) - 1000, store.serialize_cdr(camera_info(header, W, H), CAMERA_INFO))
            writer.write(image_conn, _stamp(i), store.serialize_cdr(frame_message(header, rgb, False), IMAGE))


def test_process_summary_lists_flagged_frames_and_spans(
    tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_drive(tmp_path / "in")
    summary = tmp_path / "summary.json"
    args = ["process", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(spec_path)]
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--backend", "onnxruntime", "--summary", str(summary)]) == 0
    health = json.loads(summary.read_text())["bags"][0]["health"]
    assert list(health) == [TOPIC]
    log = health[TOPIC]
    assert log["frames"] == 70
    # Black from frame 20: flagged from its FLAG-th frame to the (CLEAR - 1)-th good frame after it.
    first, last = BLACK[0] + FLAG - 1, BLACK[-1] + CLEAR - 1
    dark = [{"first_ns": _stamp(first), "last_ns": _stamp(last), "frames": last - first + 1}]
    assert [{k: s[k] for k in ("first_ns", "last_ns", "frames")} for s in log["spans"]["dark"]] == dark
    assert log["flagged_frames"]["dark"] == last - first + 1 == 12
    assert log["spans"]["dark"][0]["seconds"] == round((_stamp(last) - _stamp(first)) / 1e9, 3)
    # Frozen: frame 45 is the first repeat of frame 44; the FLAG-th repeat is flagged. The black frames are
    # byte-equal too (a real covered lens has sensor noise): frozen from their FLAG-th repeat, frame 23.
    first, last = FROZEN[0] + FLAG - 1, FROZEN[-1] + CLEAR - 1
    frozen = [(s["first_ns"], s["last_ns"], s["frames"]) for s in log["spans"]["frozen"]]
    assert frozen == [(_stamp(BLACK[0] + FLAG), _stamp(BLACK[-1] + CLEAR - 1), 11), (_stamp(first), _stamp(last), 12)]
    assert log["flagged_frames"]["saturated"] == 0 and "saturated" not in log["spans"]
    assert f"health: {TOPIC}: frozen 23 frames in 2 spans, dark 12 frames in 1 span, blocked" in caplog.text


def test_eval_lists_flagged_frames_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """eval reads its images in name order, as a drive: black frames 004..008 are flagged dark from 006 (the
    FLAG-th) to the end (fewer than CLEAR good frames follow)."""
    import cv2

    from seg_perception.synthetic.scenes import generate_scene

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(12):
        scene = generate_scene(300 + i, W, H)
        image = np.zeros_like(scene.image) if 4 <= i <= 8 else scene.image
        cv2.imwrite(str(frames / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(frames / f"{i:03d}_labels.png"), scene.labels)
    out = tmp_path / "eval.json"
    with caplog.at_level(logging.INFO):
        code = cli.main(["eval", "--images", str(frames), "--labels", str(frames), "--json", str(out)])
    assert code == 0
    health = json.loads(out.read_text())["health"]
    assert health["frames"] == 12 and health["flagged_frames"]["dark"] == 6
    assert health["spans"]["dark"] == [{"first": "006", "last": "011", "frames": 6}]
    assert health["flagged_frames"]["low_confidence"] == 0  # eval has no confidence map: not measured
    assert "health: dark on 6 frames: 006..011" in caplog.text

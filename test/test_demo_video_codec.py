"""`make demo`'s overlay.mp4 is in a codec browsers play (H.264, or VP9 where OpenCV has no H.264 encoder),
and summary.json names the codec that is really in the file: read back from the MP4's sample description."""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.core.video_file import CODECS, VideoCodec, open_mp4_writer
from seg_perception.demo import video_size, write_overlay_video

# ISO/IEC 14496-12 boxes on the path to the sample description of the (only) video track.
_CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")


def _boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """Box type -> (payload start, box end) for the boxes between start and end (first of each type)."""
    found: dict[bytes, tuple[int, int]] = {}
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[start + 8 : start + 16])
            header = 16
        elif size == 0:
            size = end - start
        found.setdefault(kind, (start + header, start + size))
        start += size
    return found


def mp4_sample_fourcc(path: Path) -> str:
    """The four-character code of the first sample entry of moov/trak/mdia/minf/stbl/stsd."""
    data = path.read_bytes()
    start, end = 0, len(data)
    for kind in _CONTAINERS:
        start, end = _boxes(data, start, end)[kind]
    stsd, _ = _boxes(data, start, end)[b"stsd"]
    # stsd: version+flags (4), entry count (4), then the first entry: size (4), format (4).
    (count,) = struct.unpack(">I", data[stsd + 4 : stsd + 8])
    assert count >= 1
    return data[stsd + 12 : stsd + 16].decode("ascii")


def _frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    return [np.dstack([np.roll(ramp, 4 * i)[None].repeat(height, 0)] * 3) for i in range(n)]


def test_overlay_video_is_a_codec_browsers_play(tmp_path: Path) -> None:
    path = tmp_path / "overlay.mp4"
    codec = write_overlay_video(path, _frames(10), 15.0, (64, 48))
    assert mp4_sample_fourcc(path) == codec.fourcc
    # opencv-python-headless 5.0 here has no H.264 encoder but has VP9; either plays in browsers.
    assert codec.fourcc in ("avc1", "vp09") and codec.plays_in_browsers
    assert not list(tmp_path.glob(".*partial*"))  # renamed into place
    capture = cv2.VideoCapture(str(path))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    assert decoded == 10


def test_a_build_without_browser_codecs_falls_back_to_mpeg4_part2_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unavailable = VideoCodec("zz00", "no such codec", True)
    path = tmp_path / "fallback.mp4"
    with caplog.at_level(logging.WARNING, logger="seg_perception.core.video_file"):
        writer, codec = open_mp4_writer(path, 15.0, (64, 48), (unavailable, CODECS[-1]))
        for frame in _frames(3):
            writer.write(frame)
        writer.release()
    assert codec.fourcc == "mp4v" and not codec.plays_in_browsers
    assert mp4_sample_fourcc(path) == "mp4v"
    assert any("browsers do not play" in r.getMessage() for r in caplog.records)


def test_demo_summary_names_the_codec_in_its_video(tmp_path: Path) -> None:
    out = tmp_path / "demo_out"
    cmd = [sys.executable, "-m", "seg_perception.demo", "--out", str(out), "--frames", "12", "--size", "320x180"]
    cmd += ["--rate", "10", "--backend", "onnxruntime"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    # The log names the file the user finds, never the temporary one it was written under.
    assert "partial" not in proc.stderr
    assert f"wrote {out / 'overlay.mp4'}: " in proc.stderr
    written = mp4_sample_fourcc(out / summary["video"])
    assert summary["video_codec"]["fourcc"] == written
    assert written in ("avc1", "vp09") and summary["video_codec"]["plays_in_browsers"] is True


def test_a_camera_sized_video_is_written_at_preview_size(tmp_path: Path) -> None:
    """VP9 costs ~0.8 s per 1280x720 frame here: the demo video is at most VIDEO_MAX_WIDTH wide."""
    assert video_size(1280, 720) == (640, 360) and video_size(320, 180) == (320, 180)
    assert video_size(1920, 1080, max_width=640) == (640, 360) and video_size(1000, 563) == (640, 360)
    path = tmp_path / "overlay.mp4"
    write_overlay_video(path, _frames(3, 128, 96), 15.0, (64, 48))
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    assert ok and frame.shape == (48, 64, 3)

"""core/video_file.open_mp4_writer on its own: the codec order, what it logs for each choice (word for word,
naming the final file), the error when no codec can write, the frame rate and size the file gets, and that
FFmpeg's quieting is undone afterwards."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.core import video_file
from seg_perception.core.video_file import CODECS, VideoCodec, open_mp4_writer

LOGGER = "seg_perception.core.video_file"
NONE = VideoCodec("zz00", "no such codec", True)
NONE_EITHER = VideoCodec("zz01", "nor this one", False)


def test_codecs_in_preference_order_h264_then_vp9_then_mpeg4_part2() -> None:
    assert (
        VideoCodec("avc1", "H.264", True),
        VideoCodec("vp09", "VP9", True),
        VideoCodec("mp4v", "MPEG-4 Part 2", False),
    ) == CODECS


def _write(writer: cv2.VideoWriter, n: int, width: int, height: int) -> None:
    for k in range(n):
        writer.write(np.full((height, width, 3), 20 * k, np.uint8))
    writer.release()


def test_the_file_gets_the_frame_rate_and_size_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    writer, codec = open_mp4_writer(path, 12.5, (80, 48), (CODECS[-1],))
    assert codec is CODECS[-1]
    _write(writer, 4, 80, 48)
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5, abs=0.01)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (80, 48)
    capture.release()


def test_the_first_codec_that_opens_is_taken_and_only_mpeg4_part2_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        writer, codec = open_mp4_writer(tmp_path / "v.mp4", 15.0, (64, 48), (CODECS[-1], NONE))
    writer.release()
    assert codec is CODECS[-1]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        f"this OpenCV build encodes neither H.264 nor VP9: {tmp_path / 'v.mp4'} is MPEG-4 Part 2 (mp4v), "
        "which browsers do not play"
    ]
    caplog.clear()
    browser = VideoCodec("mp4v", "a browser codec", True)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        writer, codec = open_mp4_writer(tmp_path / "w.mp4", 15.0, (64, 48), (browser, NONE))
    writer.release()
    assert codec is browser
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_a_later_browser_codec_says_which_it_is_naming_the_final_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    browser = VideoCodec("mp4v", "a browser codec", True)
    final = tmp_path / "overlay.mp4"
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        writer, codec = open_mp4_writer(tmp_path / ".overlay.partial.mp4", 15.0, (64, 48), (NONE, browser), final)
    writer.release()
    assert codec is browser
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.INFO, f"{final}: a browser codec (mp4v); this OpenCV build has no H.264 encoder")
    ]


def test_the_fallback_warning_names_the_final_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    final = tmp_path / "overlay.mp4"
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        writer, _ = open_mp4_writer(tmp_path / "tmp.mp4", 15.0, (64, 48), (NONE, CODECS[-1]), final_path=final)
    writer.release()
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (
            logging.WARNING,
            f"this OpenCV build encodes neither H.264 nor VP9: {final} is MPEG-4 Part 2 (mp4v), "
            "which browsers do not play",
        )
    ]


def test_no_codec_that_can_write_is_an_os_error_naming_the_file_and_the_codecs(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    with pytest.raises(OSError) as info:
        open_mp4_writer(path, 15.0, (64, 48), (NONE, NONE_EITHER))
    assert str(info.value) == f"OpenCV cannot write {path} with any of zz00, zz01"
    final = tmp_path / "final.mp4"
    with pytest.raises(OSError) as info:
        open_mp4_writer(path, 15.0, (64, 48), (NONE,), final)
    assert str(info.value) == f"OpenCV cannot write {final} with any of zz00"


@pytest.mark.parametrize("before", [None, "32"])
def test_ffmpeg_is_quiet_while_probing_and_as_it_was_afterwards(
    before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before is None:
        monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    else:
        monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", before)
    level = cv2.utils.logging.getLogLevel()
    with video_file._quiet_ffmpeg():
        assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
        assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT
    assert os.environ.get("OPENCV_FFMPEG_LOGLEVEL") == before
    assert cv2.utils.logging.getLogLevel() == level
    with pytest.raises(RuntimeError), video_file._quiet_ffmpeg():  # undone on an error too
        raise RuntimeError
    assert os.environ.get("OPENCV_FFMPEG_LOGLEVEL") == before
    assert cv2.utils.logging.getLogLevel() == level

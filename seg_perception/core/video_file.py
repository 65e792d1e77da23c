"""MP4 files that browsers play: H.264 where OpenCV's FFmpeg can encode it, else VP9, else MPEG-4 Part 2.

The opencv-python wheels ship FFmpeg without an H.264 software encoder (libx264 is GPL; the only H.264
encoder they carry is the V4L2 hardware one, absent on most machines). They do ship libvpx, and VP9 in
MP4 is a codec Chrome, Firefox and Edge play. MPEG-4 Part 2 (`mp4v`) always works but plays in no
browser, so it is the last resort and is logged as such.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoCodec:
    """A codec as written in the MP4 sample description (`stsd`): its four-character code and name."""

    fourcc: str
    name: str
    plays_in_browsers: bool


CODECS = (
    VideoCodec("avc1", "H.264", True),
    VideoCodec("vp09", "VP9", True),
    VideoCodec("mp4v", "MPEG-4 Part 2", False),
)


@contextlib.contextmanager
def _quiet_ffmpeg() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's error lines while encoders are probed (a failed probe is expected)."""
    saved_level = cv2.utils.logging.getLogLevel()
    saved_env = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET; OpenCV reads it when it opens a writer
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(saved_level)
        if saved_env is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
        else:
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = saved_env


def open_mp4_writer(
    path: Path,
    fps: float,
    size: tuple[int, int],
    codecs: tuple[VideoCodec, ...] = CODECS,
    final_path: Path | None = None,
) -> tuple[cv2.VideoWriter, VideoCodec]:
    """An open cv2.VideoWriter for `path` (BGR frames of `size` = (width, height)) with the first codec
    in `codecs` this OpenCV build can encode; raises OSError when none can. Messages name `final_path`
    (the name a temporary `path` is renamed to), so the log shows the file the user will find."""
    shown = final_path or path
    for codec in codecs:
        with _quiet_ffmpeg():
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec.fourcc), fps, size)
        if writer.isOpened():
            if not codec.plays_in_browsers:
                LOG.warning(
                    "this OpenCV build encodes neither H.264 nor VP9: %s is %s (%s), which browsers do not play",
                    shown,
                    codec.name,
                    codec.fourcc,
                )
            elif codec is not codecs[0]:
                LOG.info("%s: %s (%s); this OpenCV build has no H.264 encoder", shown, codec.name, codec.fourcc)
            return writer, codec
        writer.release()
    raise OSError(f"OpenCV cannot write {shown} with any of {', '.join(c.fourcc for c in codecs)}")

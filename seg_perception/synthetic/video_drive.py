"""Write a synthetic drive as a bag whose camera is recorded as video (H.264, H.265, ...), encoded with PyAV.

One access unit per message, in decode order, as a recorder writes a video topic: Foxglove's
`foxglove_msgs/msg/CompressedVideo` or ffmpeg_image_transport's `FFMPEGPacket` (on `<base>/ffmpeg`). Each
message's stamp is its picture's presentation time; with B-frames the record (log) times follow decode order.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bag.bag_io import (
    CAMERA_INFO,
    COMPRESSED_VIDEO,
    DEFAULT_STORAGE,
    FFMPEG_PACKET,
    BagError,
    add_typed_connection,
    bag_writer,
    typestore,
)
from seg_perception.synthetic.drive_bag import INFO_LEAD_NS, START_NS, SynthSummary, _header, camera_info
from seg_perception.synthetic.scenes import generate_drive

VIDEO_TOPIC = "/camera/front/video"
FORMAT_WORD = {"libx264": "h264", "libx265": "h265", "libvpx-vp9": "vp9", "libsvtav1": "av1"}


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings: codec (a PyAV encoder name), keyframe interval, B-frames, quality (CRF)."""

    codec: str = "libx264"
    gop: int = 10
    bframes: int = 0
    crf: int = 18
    preset: str = "veryfast"


def _encoder(settings: VideoSettings, width: int, height: int, rate_hz: float) -> Any:
    import av

    if settings.codec not in av.codecs_available:
        raise BagError(f"encoder {settings.codec} is not in this PyAV's FFmpeg")
    enc: Any = av.CodecContext.create(settings.codec, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, 1000)
    enc.framerate = Fraction(rate_hz).limit_denominator(1000)
    enc.gop_size = settings.gop
    common = f"keyint={settings.gop}:min-keyint={settings.gop}:scenecut=0:bframes={settings.bframes}"
    if settings.codec == "libx264":
        enc.options = {"preset": settings.preset, "crf": str(settings.crf), "x264-params": common}
    elif settings.codec == "libx265":
        enc.options = {"preset": settings.preset, "crf": str(settings.crf), "x265-params": f"{common}:log-level=error"}
    else:
        enc.options = {"crf": str(settings.crf)}
    return enc


def encode_frames(frames: list[np.ndarray], settings: VideoSettings, rate_hz: float = 15.0) -> list[tuple[int, bytes]]:
    """(presentation index, access unit) per picture, in decode order."""
    import av

    height, width = frames[0].shape[:2]
    enc = _encoder(settings, width, height, rate_hz)
    period_ms = 1000.0 / rate_hz
    packets = []
    for i, rgb in enumerate(frames):
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
        picture.pts = round(i * period_ms)
        packets += enc.encode(picture)
    packets += enc.encode(None)
    index = {round(i * period_ms): i for i in range(len(frames))}
    return [(index[p.pts], bytes(p)) for p in packets]


def video_message(msgtype: str, header: Any, fmt: str, data: bytes, width: int, height: int, key: bool) -> Any:
    """A CompressedVideo or FFMPEGPacket message holding one access unit."""
    types = typestore().types
    payload = np.frombuffer(data, np.uint8)
    if msgtype == COMPRESSED_VIDEO:
        return types[COMPRESSED_VIDEO](timestamp=header.stamp, frame_id=header.frame_id, data=payload, format=fmt)
    return types[FFMPEG_PACKET](
        header=header,
        width=width,
        height=height,
        encoding=f"{'hevc' if fmt == 'h265' else fmt};yuv420p;rgb8;rgb8",
        pts=header.stamp.sec * 1_000_000_000 + header.stamp.nanosec,
        flags=int(key),
        is_bigendian=False,
        data=payload,
    )


def write_video_drive(
    out: Path,
    frames: int,
    width: int = 1280,
    height: int = 720,
    settings: VideoSettings = VideoSettings(),
    msgtype: str = COMPRESSED_VIDEO,
    topic: str = VIDEO_TOPIC,
    rate_hz: float = 15.0,
    seed: int = 0,
    storage: str = DEFAULT_STORAGE,
    force: bool = False,
) -> SynthSummary:
    """Encode `frames` frames of the drive `synth --bag` writes (same seed, same pictures) onto `topic`."""
    from seg_perception.core.video_stream import decoder_for, is_keyframe

    if frames < 1:
        raise BagError(f"--frames must be at least 1, got {frames}")
    pictures = [scene.image for scene in generate_drive(frames, width, height, seed, fps=rate_hz)]
    units = encode_frames(pictures, settings, rate_hz)
    fmt = FORMAT_WORD.get(settings.codec, settings.codec)
    namespace = topic.rsplit("/", 2)[0] if msgtype == FFMPEG_PACKET and topic.endswith("/ffmpeg") else None
    namespace = namespace or topic.rsplit("/", 1)[0]
    frame_id = namespace.strip("/").replace("/", "_") or "camera"
    store, period = typestore(), 1e9 / rate_hz
    with bag_writer(out, storage, force) as writer:
        video = add_typed_connection(writer, topic, msgtype)
        info = add_typed_connection(writer, f"{namespace}/camera_info", CAMERA_INFO)
        for i in range(frames):
            stamp = START_NS + round(i * period)
            msg = camera_info(_header(stamp, frame_id), width, height)
            writer.write(info, stamp - INFO_LEAD_NS, store.serialize_cdr(msg, CAMERA_INFO))
        for k, (shown, data) in enumerate(units):
            header = _header(START_NS + round(shown * period), frame_id)
            key = is_keyframe(decoder_for(fmt), data)
            msg = video_message(msgtype, header, fmt, data, width, height, key)
            writer.write(video, START_NS + round(k * period), store.serialize_cdr(msg, msgtype))
    return SynthSummary(Path(out), frames, 1, frames + len(units))

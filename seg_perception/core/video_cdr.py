"""Whether a serialized video message carries a keyframe, read from its CDR bytes without deserializing it.

The node's video subscription hands the callback serialized bytes (ros/video_input.py), and deserializing is
the decoder thread's job. To drop a backlog back to its newest keyframe the callback needs one bit per unit;
both message types put what it needs early or in plain fields, so this reads just that (image_cdr's reader:
same alignment rules and bounds checks):

- foxglove_msgs/CompressedVideo: `Time timestamp, string frame_id, uint8[] data, string format`; the bit is
  in the H.264/H.265 NAL unit types (or a VP9 header) of `data` (core/video_stream.is_keyframe).
- ffmpeg_image_transport_msgs/FFMPEGPacket: `Header header, int32 width, int32 height, string encoding,
  uint64 pts, uint8 flags, ...`; the bit is libavcodec's AV_PKT_FLAG_KEY in `flags`.

None where it cannot be told (a malformed buffer, an unknown format, AV1 in CompressedVideo).
"""

from __future__ import annotations

from typing import Final

from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_cdr import CdrReader
from seg_perception.core.video_stream import decoder_for, is_keyframe

AV_PKT_FLAG_KEY: Final = 1  # libavcodec's packet flag (FFMPEGPacket.flags)


def compressed_video_keyframe(buf: bytes) -> bool | None:
    """Whether a serialized foxglove_msgs/CompressedVideo holds a keyframe; None when that cannot be told."""
    try:
        r = CdrReader(buf, "foxglove_msgs/CompressedVideo")
        r.header()  # timestamp and frame_id: laid out as a std_msgs/Header
        data = r.sequence("data")
        (length,) = r.uint32s(1, "I")
        decoder = decoder_for(r.text(length, "format"))
    except ImageCodecError:
        return None
    if decoder == "av1":  # is_keyframe cannot tell from the bytes; guessing would keep a unit that needs others
        return None
    return is_keyframe(decoder, bytes(data))


def ffmpeg_packet_keyframe(buf: bytes) -> bool | None:
    """Whether a serialized ffmpeg_image_transport_msgs/FFMPEGPacket is a keyframe (its flags); None when
    that cannot be told."""
    try:
        r = CdrReader(buf, "ffmpeg_image_transport_msgs/FFMPEGPacket")
        r.header()
        _, _, length = r.uint32s(3, "iiI")  # width, height, the encoding's length
        r.text(length, "encoding")
        r.pos += -(r.pos - 4) % 8 + 8  # pts: uint64, aligned to 8
        if r.pos >= len(r.view):
            r.fail("ends before flags")
        return bool(r.view[r.pos] & AV_PKT_FLAG_KEY)
    except ImageCodecError:
        return None

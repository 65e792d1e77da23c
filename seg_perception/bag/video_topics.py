"""Video camera topics in bags: foxglove_msgs/msg/CompressedVideo and ffmpeg_image_transport_msgs/msg/FFMPEGPacket.

Neither type is in rosbags' built-in typestores, so their definitions (as their packages ship them) are
registered into ours. A message becomes (format word, access unit bytes, header, keyframe flag or None)
for `core.video_stream.VideoStreamDecoder`; CompressedVideo has no header, so its `timestamp` and
`frame_id` make one (what the node's outputs carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from seg_perception.core.video_cdr import AV_PKT_FLAG_KEY  # FFMPEGPacket.flags: libavcodec's packet flags

COMPRESSED_VIDEO: Final = "foxglove_msgs/msg/CompressedVideo"  # bag_io.CAMERA_TYPES names them too
FFMPEG_PACKET: Final = "ffmpeg_image_transport_msgs/msg/FFMPEGPacket"

# foxglove_msgs/msg/CompressedVideo.msg (foxglove-sdk, ros_foxglove_msgs)
COMPRESSED_VIDEO_MSG: Final = """\
builtin_interfaces/Time timestamp
string frame_id
uint8[] data
string format
"""
# ffmpeg_image_transport_msgs/msg/FFMPEGPacket.msg (ros-misc-utilities/ffmpeg_image_transport_msgs)
FFMPEG_PACKET_MSG: Final = """\
std_msgs/Header header
int32 width
int32 height
string encoding
uint64 pts
uint8 flags
bool is_bigendian
uint8[] data
"""


def register_video_types(store: Any) -> None:
    """Add both message types to a rosbags typestore (idempotent)."""
    from rosbags.typesys import get_types_from_msg

    types: dict[str, Any] = {}
    types.update(get_types_from_msg(COMPRESSED_VIDEO_MSG, COMPRESSED_VIDEO))
    types.update(get_types_from_msg(FFMPEG_PACKET_MSG, FFMPEG_PACKET))
    store.register(types)


@dataclass(frozen=True)
class VideoUnit:
    """One message of a video topic: what the decoder needs and the header its outputs carry."""

    fmt: str
    data: bytes
    header: Any  # std_msgs/msg/Header
    keyframe: bool | None


def video_unit(msg: Any, msgtype: str, store: Any) -> VideoUnit:
    """The access unit of a deserialized CompressedVideo or FFMPEGPacket."""
    data = bytes(memoryview(msg.data))
    if msgtype == COMPRESSED_VIDEO:
        header = store.types["std_msgs/msg/Header"](stamp=msg.timestamp, frame_id=msg.frame_id)
        return VideoUnit(msg.format, data, header, None)
    return VideoUnit(msg.encoding, data, msg.header, bool(msg.flags & AV_PKT_FLAG_KEY))

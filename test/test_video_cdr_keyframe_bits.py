"""The keyframe bit core/video_cdr.py reads from a serialized video message, without deserializing it, on
messages serialized by rosbags (the bags' own typestore, bag_io.typestore(), which holds both video types):
every alignment of the fields it skips, every truncation, both byte orders, each flag bit."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from seg_perception.bag.bag_io import typestore
from seg_perception.bag.video_topics import COMPRESSED_VIDEO, FFMPEG_PACKET
from seg_perception.core.video_cdr import AV_PKT_FLAG_KEY, compressed_video_keyframe, ffmpeg_packet_keyframe

STORE = typestore()
TYPES = STORE.types
STAMP = TYPES["builtin_interfaces/msg/Time"](sec=7, nanosec=8)
H264_IDR = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88"  # SPS, then an IDR slice (NAL type 5)
H264_P = b"\x00\x00\x00\x01\x41\x9a"  # a non-IDR slice (NAL type 1)
HEVC_IDR = b"\x00\x00\x01\x26\x01\xaf"  # IDR_W_RADL (NAL type 19)
HEVC_TRAIL = b"\x00\x00\x01\x02\x01\xd0"  # TRAIL_R (NAL type 1)
VP9_KEY = b"\x82\x49\x83"  # frame_marker 2, profile 0, show_existing_frame 0, frame_type 0 (key)
VP9_INTER = b"\x86\x00"  # frame_type 1 (inter)


def _cdr(msg: Any, msgtype: str, big_endian: bool) -> bytes:
    return bytes(STORE.serialize_cdr(msg, msgtype, little_endian=not big_endian))


def compressed_video(data: bytes, fmt: str, frame_id: str = "cam", big_endian: bool = False) -> bytes:
    """A serialized foxglove_msgs/CompressedVideo (Time timestamp, string frame_id, uint8[] data, string format)."""
    payload = np.frombuffer(data, np.uint8)
    msg = TYPES[COMPRESSED_VIDEO](timestamp=STAMP, frame_id=frame_id, data=payload, format=fmt)
    return _cdr(msg, COMPRESSED_VIDEO, big_endian)


def _packet(flags: int, encoding: str, frame_id: str, other: int) -> Any:
    return TYPES[FFMPEG_PACKET](
        header=TYPES["std_msgs/msg/Header"](stamp=STAMP, frame_id=frame_id),
        width=160,
        height=96,
        encoding=encoding,
        pts=int.from_bytes(bytes([other | 0x10] * 8), "little"),
        flags=flags,
        is_bigendian=bool(other),
        data=np.full(4, other, np.uint8),
    )


def ffmpeg_packet(
    flags: int, encoding: str = "h264;yuv420p", frame_id: str = "cam", big_endian: bool = False
) -> tuple[bytes, int]:
    """A serialized ffmpeg_image_transport_msgs/FFMPEGPacket (Header header, int32 width, int32 height, string
    encoding, uint64 pts, uint8 flags, bool is_bigendian, uint8[] data) and the offset of its flags byte (the
    one byte that differs from the same packet with the other flags). The fields around flags have the other
    low bit: every byte of pts, is_bigendian and the data."""
    other = 0x00 if flags & 1 else 0x01
    out = _cdr(_packet(flags, encoding, frame_id, other), FFMPEG_PACKET, big_endian)
    flipped = _cdr(_packet(flags ^ 0xFF, encoding, frame_id, other), FFMPEG_PACKET, big_endian)
    (at,) = [i for i, (a, b) in enumerate(zip(out, flipped, strict=True)) if a != b]
    return out, at


def test_av_pkt_flag_key_is_libavcodecs_bit() -> None:
    assert AV_PKT_FLAG_KEY == 1  # libavcodec/packet.h: #define AV_PKT_FLAG_KEY 0x0001


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (H264_IDR, "h264", True),
        (H264_P, "h264", False),
        (HEVC_IDR, "h265", True),
        (HEVC_TRAIL, "h265", False),
        (HEVC_IDR, "hevc", True),
        (VP9_KEY, "vp9", True),
        (VP9_INTER, "vp9", False),
        (b"", "h264", False),  # no slice at all: nothing to start decoding from
        (b"", "vp9", True),  # an empty VP9 unit: is_keyframe leaves it to the decoder
    ],
)
def test_the_compressed_video_keyframe_bit_of_each_codec(data: bytes, fmt: str, expected: bool) -> None:
    assert compressed_video_keyframe(compressed_video(data, fmt)) is expected


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "front_camera"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_every_alignment_and_byte_order_of_a_compressed_video(frame_id: str, big_endian: bool) -> None:
    for pad in range(4):  # data of 4 lengths moves the format string across its alignment
        assert compressed_video_keyframe(compressed_video(H264_IDR + bytes(pad), "h264", frame_id, big_endian))
        assert compressed_video_keyframe(compressed_video(H264_P + bytes(pad), "h264", frame_id, big_endian)) is False


def test_av1_and_unknown_formats_cannot_be_told() -> None:
    assert compressed_video_keyframe(compressed_video(H264_IDR, "av1")) is None  # AV1 units carry no bit here
    assert compressed_video_keyframe(compressed_video(H264_IDR, "AV1")) is None
    assert compressed_video_keyframe(compressed_video(H264_IDR, "mjpeg")) is None
    assert compressed_video_keyframe(compressed_video(H264_IDR, "")) is None


def test_every_truncated_compressed_video_cannot_be_told() -> None:
    full = compressed_video(H264_IDR, "h264", "front")
    assert compressed_video_keyframe(full) is True
    for n in range(len(full)):
        assert compressed_video_keyframe(full[:n]) is None, n
    assert compressed_video_keyframe(b"\x00\x09\x00\x00" + full[4:]) is None  # unknown encapsulation


@pytest.mark.parametrize(
    ("flags", "expected"), [(0, False), (1, True), (2, False), (3, True), (0xFE, False), (0xFF, True)]
)
def test_the_ffmpeg_packet_keyframe_bit_is_bit_0_of_flags(flags: int, expected: bool) -> None:
    packet, _ = ffmpeg_packet(flags)
    assert ffmpeg_packet_keyframe(packet) is expected


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd"])
@pytest.mark.parametrize("encoding", ["h264", "hevc;yuv420p", "vp9;yuv4", "av1;yuv42", "h264;yuv420", "x"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_flags_is_found_after_pts_at_every_alignment(frame_id: str, encoding: str, big_endian: bool) -> None:
    # the encoding's length puts pts at each of the 8 offsets modulo 8 with one frame_id or another
    for flags in (0, 1):
        packet, _ = ffmpeg_packet(flags, encoding, frame_id, big_endian)
        assert ffmpeg_packet_keyframe(packet) is bool(flags), (flags, len(packet))


def test_an_ffmpeg_packet_cut_before_its_flags_cannot_be_told_and_after_them_can() -> None:
    for flags in (0, 1):
        packet, at = ffmpeg_packet(flags, "h264;yuv420p", "front")
        for n in range(at + 1):  # up to and including the byte before flags (n == at ends just before it)
            assert ffmpeg_packet_keyframe(packet[:n]) is None, (flags, n)
        for n in range(at + 1, len(packet) + 1):  # flags is the last byte it needs
            assert ffmpeg_packet_keyframe(packet[:n]) is bool(flags), (flags, n)


def test_an_ffmpeg_packet_with_a_broken_encoding_string_cannot_be_told() -> None:
    packet, _ = ffmpeg_packet(1, "h264")
    nul = packet.index(b"h264\x00") + 4
    assert ffmpeg_packet_keyframe(packet[:nul] + b"x" + packet[nul + 1 :]) is None  # not NUL-terminated
    assert ffmpeg_packet_keyframe(b"\x00\x09\x00\x00" + packet[4:]) is None  # unknown encapsulation


@pytest.mark.parametrize("declared", [2**31 - 1, 2**31, 2**32 - 1])
def test_a_string_length_past_the_end_cannot_be_told(declared: int) -> None:
    # CDR lengths are unsigned: 2**31 and above run past the end like any other too-long string
    video = compressed_video(H264_IDR, "h264")
    at = len(video) - len(b"h264\0") - 4  # the format's length field
    assert compressed_video_keyframe(video[:at] + struct.pack("<I", declared) + video[at + 4 :]) is None
    packet, _ = ffmpeg_packet(1, "h264")
    at = packet.index(b"h264\0") - 4  # the encoding's length field
    assert ffmpeg_packet_keyframe(packet[:at] + struct.pack("<I", declared) + packet[at + 4 :]) is None
    sequence = 4 + 12 + len(b"cam\0")  # the data's length field (after the 4-byte-aligned header)
    assert compressed_video_keyframe(video[:sequence] + struct.pack("<I", declared) + video[sequence + 4 :]) is None

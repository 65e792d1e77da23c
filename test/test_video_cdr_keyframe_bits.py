"""The keyframe bit core/video_cdr.py reads from a serialized video message, without deserializing it, on
hand-built CDR bytes: every alignment of the fields it skips, every truncation, both byte orders, each flag
bit. (The layout of these bytes is checked against rclpy's own serialization in
test_video_backlog_keeps_newest_keyframe.py, which needs the message packages and a child process.)"""

from __future__ import annotations

import struct

import pytest

from seg_perception.core.video_cdr import AV_PKT_FLAG_KEY, compressed_video_keyframe, ffmpeg_packet_keyframe

LE, BE = b"\x00\x01\x00\x00", b"\x00\x00\x00\x00"
H264_IDR = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88"  # SPS, then an IDR slice (NAL type 5)
H264_P = b"\x00\x00\x00\x01\x41\x9a"  # a non-IDR slice (NAL type 1)
HEVC_IDR = b"\x00\x00\x01\x26\x01\xaf"  # IDR_W_RADL (NAL type 19)
HEVC_TRAIL = b"\x00\x00\x01\x02\x01\xd0"  # TRAIL_R (NAL type 1)
VP9_KEY = b"\x82\x49\x83"  # frame_marker 2, profile 0, show_existing_frame 0, frame_type 0 (key)
VP9_INTER = b"\x86\x00"  # frame_type 1 (inter)


def _pad(out: bytes, to: int) -> bytes:
    """CDR aligns a field to its size, counted from the end of the 4-byte encapsulation header."""
    return bytes(-(len(out) - 4) % to)


def _text(value: str, order: str) -> bytes:
    raw = value.encode() + b"\0"
    return struct.pack(order + "I", len(raw)) + raw


def compressed_video(data: bytes, fmt: str, frame_id: str = "cam", big_endian: bool = False) -> bytes:
    """foxglove_msgs/CompressedVideo: Time timestamp, string frame_id, uint8[] data, string format."""
    order = ">" if big_endian else "<"
    out = (BE if big_endian else LE) + struct.pack(order + "iI", 7, 8) + _text(frame_id, order)
    out += _pad(out, 4) + struct.pack(order + "I", len(data)) + data
    return out + _pad(out, 4) + _text(fmt, order)


def ffmpeg_packet(
    flags: int, encoding: str = "h264;yuv420p", frame_id: str = "cam", big_endian: bool = False
) -> tuple[bytes, int]:
    """ffmpeg_image_transport_msgs/FFMPEGPacket (Header header, int32 width, int32 height, string encoding,
    uint64 pts, uint8 flags, bool is_bigendian, uint8[] data) and the offset of its flags byte. The bytes
    around flags have the other low bit: pts all odd when flags is even and all even when it is odd, and so
    the is_bigendian byte, the padding and the data after it."""
    order = ">" if big_endian else "<"
    other = 0x00 if flags & 1 else 0x01
    out = (BE if big_endian else LE) + struct.pack(order + "iI", 7, 8) + _text(frame_id, order)
    out += _pad(out, 4) + struct.pack(order + "ii", 160, 96) + _text(encoding, order)
    out += _pad(out, 8) + bytes([other | 0x10] * 8)  # pts
    at = len(out)
    out += bytes([flags, other])  # flags, is_bigendian
    out += bytes([other] * (-(len(out) - 4) % 4)) + struct.pack(order + "I", 4) + bytes([other] * 4)
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
    sequence = len(LE) + 12 + len(b"cam\0")  # the data's length field (after the 4-byte-aligned header)
    assert compressed_video_keyframe(video[:sequence] + struct.pack("<I", declared) + video[sequence + 4 :]) is None

"""Our reader and writer of serialized sensor_msgs/Image and CompressedImage agree byte for byte with
rclpy's own serialization (rclpy.serialization, the rmw the node runs on), on many messages: odd widths,
padded rows, the big-endian flag, empty, long and non-ASCII frame ids, compressed images; big-endian CDR
is checked against rosbags' serializer. Broken buffers are refused with one reason, never another error."""

from __future__ import annotations

import array

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_cdr import (
    BAD_SERIALIZATION,
    compressed_image_cdr,
    header_cdr,
    parse_compressed_image,
    parse_image,
)
from seg_perception.core.image_cdr import image_cdr as serialize_image
from seg_perception.ros.drive_player import serialized_frame, stamped

ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "mono16": 2, "rgba8": 4, "yuv422": 2, "bayer_rggb8": 1, "rgb16": 6}
frame_ids = st.one_of(
    st.just(""),
    st.just("camera_front"),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=300),  # not NUL: C strings
    st.text(alphabet="abc_/", min_size=200, max_size=1000),
)
stamps = st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _header(stamp: tuple[int, int], frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = stamp
    return header


def _image(stamp: tuple[int, int], frame_id: str, encoding: str, height: int, width: int, pad: int, big: int) -> Image:
    step = width * ENCODINGS[encoding] + pad
    msg = Image(header=_header(stamp, frame_id), height=height, width=width, encoding=encoding, step=step)
    msg.is_bigendian = big
    msg.data = array.array("B", np.random.default_rng(height * width).integers(0, 256, step * height, np.uint8))
    return msg


def _padding(header_len: int, fields_len: int) -> list[int]:
    """Byte offsets (in the whole buffer) of the alignment padding after the header and after the
    fields_len bytes that follow it up to the data's count; rmw leaves them as they were in memory."""
    aligned = header_len + (-header_len % 4)
    body = aligned + fields_len
    return [*range(4 + header_len, 4 + aligned), *range(4 + body, 4 + body + (-body % 4))]


def _same_but_padding(ours: bytes, theirs: bytes, padding: list[int]) -> None:
    assert len(ours) == len(theirs)
    a, b = bytearray(ours), bytearray(theirs)
    for i in padding:
        assert ours[i] == 0, f"our padding byte {i} is not zero"
        a[i] = b[i] = 0
    assert a == b


@SETTINGS
@given(
    stamp=stamps,
    frame_id=frame_ids,
    encoding=st.sampled_from(sorted(ENCODINGS)),
    height=st.integers(1, 9),
    width=st.integers(1, 11),
    pad=st.integers(0, 7),
    big=st.sampled_from([0, 1, 255]),
)
def test_reading_rclpy_serialized_images_gives_every_field(
    stamp: tuple[int, int], frame_id: str, encoding: str, height: int, width: int, pad: int, big: int
) -> None:
    msg = _image(stamp, frame_id, encoding, height, width, pad, big)
    raw = serialize_message(msg)
    got = parse_image(raw)
    assert (got.header.sec, got.header.nanosec, got.header.frame_id) == (*stamp, frame_id)
    assert got.header.stamp_ns == stamp[0] * 1_000_000_000 + stamp[1]
    assert (got.height, got.width, got.encoding, got.step, got.is_bigendian) == (
        height,
        width,
        encoding,
        msg.step,
        big,
    )
    assert got.data.tobytes() == msg.data.tobytes()
    assert got.data.obj is raw, "the pixel data must be a view on the received buffer, not a copy"
    # The header we re-serialise is the one rclpy wrote, byte for byte.
    assert raw[4 : 4 + len(got.header.cdr)] == got.header.cdr == header_cdr(*stamp, frame_id)


@SETTINGS
@given(
    stamp=stamps,
    frame_id=frame_ids,
    encoding=st.sampled_from(["mono8", "rgb8", "bgr8", "rgba8"]),
    height=st.integers(1, 9),
    width=st.integers(1, 11),
)
def test_writing_images_matches_rclpy_byte_for_byte(
    stamp: tuple[int, int], frame_id: str, encoding: str, height: int, width: int
) -> None:
    channels = ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = np.random.default_rng(width).integers(0, 256, shape, np.uint8)
    header = header_cdr(*stamp, frame_id)
    ours = serialize_image(header, pixels, encoding)
    msg = _image(stamp, frame_id, encoding, height, width, 0, 0)
    msg.data = array.array("B", pixels.tobytes())
    # height, width, the encoding's length, the encoding with its NUL, is_bigendian
    fields = 12 + len(encoding) + 1 + 1
    _same_but_padding(ours, serialize_message(msg), _padding(len(header), fields))
    assert deserialize_message(ours, Image) == msg


@SETTINGS
@given(stamp=stamps, frame_id=frame_ids, fmt=st.sampled_from(["png", "jpeg", "mono8; png compressed ", ""]))
def test_compressed_images_read_and_write_as_rclpy_does(stamp: tuple[int, int], frame_id: str, fmt: str) -> None:
    data = np.random.default_rng(len(frame_id)).integers(0, 256, len(frame_id) * 7 + 3, np.uint8).tobytes()
    msg = CompressedImage(header=_header(stamp, frame_id), format=fmt, data=data)
    raw = serialize_message(msg)
    got = parse_compressed_image(raw)
    assert (got.header.sec, got.header.nanosec, got.header.frame_id, got.format) == (*stamp, frame_id, fmt)
    assert got.data.tobytes() == data
    header = header_cdr(*stamp, frame_id)
    ours = compressed_image_cdr(header, fmt, data)
    _same_but_padding(ours, raw, _padding(len(header), 4 + len(fmt) + 1))  # format's length, format, NUL
    assert deserialize_message(ours, CompressedImage) == msg


def test_the_bench_camera_sends_what_rclpy_would_with_a_fresh_stamp() -> None:
    frame = np.random.default_rng(3).integers(0, 256, (5, 7, 3), np.uint8)
    once = serialized_frame(frame, "camera_front")
    for stamp in (0, 1_700_000_000_123_456_789, 2**31 * 1_000_000_000 - 1):
        msg = _image(divmod(stamp, 1_000_000_000), "camera_front", "rgb8", 5, 7, 0, 0)
        msg.data = array.array("B", frame.tobytes())
        assert deserialize_message(stamped(once, stamp), Image) == msg


def test_a_strided_array_is_written_as_packed_rows() -> None:
    wide = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10)
    view = wide[:, 2:7]  # rows of 5 out of 10: not contiguous
    msg = deserialize_message(serialize_image(header_cdr(1, 2, "f"), view, "mono8"), Image)
    assert (msg.width, msg.height, msg.step) == (5, 6, 5)
    assert np.array_equal(np.frombuffer(msg.data, np.uint8).reshape(6, 5), view)


@pytest.mark.parametrize("typename", ["sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"])
def test_big_endian_cdr_reads_like_little_endian(typename: str) -> None:
    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=-5, nanosec=7), frame_id="ß")
    data = np.arange(2 * 3 * 3, dtype=np.uint8)
    if typename.endswith("CompressedImage"):
        msg = types[typename](header=header, format="png", data=data)
    else:
        msg = types[typename](header=header, height=2, width=3, encoding="rgb8", is_bigendian=1, step=9, data=data)
    little = bytes(store.serialize_cdr(msg, typename))
    big = bytes(store.serialize_cdr(msg, typename, little_endian=False))
    assert big[:2] == b"\x00\x00" and little[:2] == b"\x00\x01"
    parse = parse_image if typename.endswith("/Image") else parse_compressed_image
    a, b = parse(little), parse(big)
    assert a.header == b.header and a.data.tobytes() == b.data.tobytes() == data.tobytes()
    assert (a.header.sec, a.header.nanosec, a.header.frame_id) == (-5, 7, "ß")


def _refused(buf: bytes, parse: object) -> None:
    with pytest.raises(ImageCodecError) as err:
        parse(buf)  # type: ignore[operator]
    assert err.value.reason == BAD_SERIALIZATION


@pytest.mark.parametrize("parse", [parse_image, parse_compressed_image])
def test_every_truncation_is_refused_as_bad_serialization(parse: object) -> None:
    msg: Image | CompressedImage
    if parse is parse_image:
        msg = _image((3, 4), "camera_front", "rgb8", 2, 3, 1, 0)
    else:
        msg = CompressedImage(header=_header((3, 4), "camera_front"), format="png", data=b"\x89PNG....")
    raw = serialize_message(msg)
    for cut in range(len(raw)):
        _refused(raw[:cut], parse)


def test_broken_fields_are_refused_with_what_is_wrong() -> None:
    raw = bytearray(serialize_message(_image((3, 4), "cam", "rgb8", 2, 3, 0, 0)))
    with pytest.raises(ImageCodecError, match="unknown CDR encapsulation"):
        parse_image(b"\x12\x34" + bytes(raw[2:]))
    no_nul = bytearray(raw)
    no_nul[4 + 12 + 3] = ord("x")  # the frame_id's NUL
    with pytest.raises(ImageCodecError, match="not NUL-terminated"):
        parse_image(bytes(no_nul))
    huge = bytearray(raw)
    huge[-18 - 4 : -18] = (10**6).to_bytes(4, "little")  # data's count, before the 18 pixel bytes
    with pytest.raises(ImageCodecError, match="declares 1000000 bytes, 18 follow"):
        parse_image(bytes(huge))
    bad_utf8 = bytearray(raw)
    bad_utf8[4 + 12] = 0xFF
    with pytest.raises(ImageCodecError, match="not UTF-8"):
        parse_image(bytes(bad_utf8))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_parsed_or_refused_never_an_other_error(buf: bytes) -> None:
    for parse in (parse_image, parse_compressed_image):
        try:
            parse(buf)
        except ImageCodecError as exc:
            assert exc.reason == BAD_SERIALIZATION

"""sensor_msgs/Image and CompressedImage in their serialized (CDR) form, without building Python messages.

The node takes camera frames as serialized bytes (rclpy `raw=True`) and publishes its outputs as
serialized bytes, so a 2.7 MB frame is neither deserialised into an `array.array` nor serialised back:
the pixels are a numpy view on the received buffer and an output is one copy of its label bytes
behind a small prefix. Both messages have a fixed layout (a header, then fields in order), so this
reads and writes it directly; `test_image_cdr_matches_rclpy.py` proves it byte for byte against
`rclpy.serialization` on many messages.

Layout (CDR, as rmw_fastrtps writes it): a 4-byte encapsulation header (00 01 = little-endian CDR,
00 00 = big-endian; the XCDR2 ids 00 07 / 00 06 lay these types out identically), then each field
aligned to its size from the end of the encapsulation header: `int32 sec, uint32 nanosec`, strings as
`uint32 length (with the NUL)` + bytes + NUL, `uint32` fields, `uint8 is_bigendian`, and
`uint8[] data` as `uint32 count` + bytes. Padding bytes are not defined (rmw leaves them as they were).

Pure: imports numpy and the package errors only; a malformed buffer raises `ImageCodecError` with reason
`bad_serialization`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np

from seg_perception.core.errors import ImageCodecError

BAD_SERIALIZATION: Final = "bad_serialization"
_BYTE_ORDER: Final[dict[bytes, str]] = {b"\x00\x01": "<", b"\x00\x07": "<", b"\x00\x00": ">", b"\x00\x06": ">"}
_LITTLE_ENDIAN_CDR: Final = b"\x00\x01\x00\x00"
_ZEROS: Final = bytes(3)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """std_msgs/Header as read from a serialized message; `cdr` is its little-endian serialized form."""

    sec: int
    nanosec: int
    frame_id: str
    cdr: bytes

    @property
    def stamp_ns(self) -> int:
        return self.sec * 1_000_000_000 + self.nanosec


@dataclass(frozen=True, slots=True)
class ImageCdr:
    """The fields of a serialized sensor_msgs/Image; `data` is a view on the received buffer (no copy)."""

    header: FrameHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


@dataclass(frozen=True, slots=True)
class CompressedImageCdr:
    """The fields of a serialized sensor_msgs/CompressedImage; `data` is a view on the received buffer."""

    header: FrameHeader
    format: str
    data: memoryview


def header_cdr(sec: int, nanosec: int, frame_id: str) -> bytes:
    """A std_msgs/Header serialized little-endian, as it starts a message (offset 0, aligned)."""
    text = frame_id.encode("utf-8") + b"\0"
    return struct.pack("<iII", sec, nanosec, len(text)) + text


def frame_header(sec: int, nanosec: int, frame_id: str) -> FrameHeader:
    return FrameHeader(sec, nanosec, frame_id, header_cdr(sec, nanosec, frame_id))


class CdrReader:
    """Reads CDR fields in order from one buffer, with the alignment rules and bounds checks."""

    __slots__ = ("order", "pos", "view", "what")

    def __init__(self, buf: bytes | bytearray | memoryview, what: str) -> None:
        self.what = what
        self.view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else memoryview(buf)
        if len(self.view) < 4:
            self.fail(f"{len(self.view)} bytes, shorter than the CDR encapsulation header")
        order = _BYTE_ORDER.get(bytes(self.view[:2]))
        if order is None:
            self.fail(f"unknown CDR encapsulation {bytes(self.view[:2]).hex(' ')}")
        self.order: str = order  # type: ignore[assignment]
        self.pos = 4

    def fail(self, why: str) -> None:
        raise ImageCodecError(f"malformed serialized {self.what}: {why}", BAD_SERIALIZATION)

    def uint32s(self, count: int, fmt: str) -> tuple[int, ...]:
        self.pos += -(self.pos - 4) % 4
        size = 4 * count
        if self.pos + size > len(self.view):
            self.fail(f"ends at byte {len(self.view)}, inside its fixed fields")
        values = struct.unpack_from(self.order + fmt, self.view, self.pos)
        self.pos += size
        return values

    def text(self, length: int, field: str) -> str:
        """A string whose length field (NUL included) was just read."""
        if length == 0:  # not what rmw writes, but Fast CDR reads it as "", so do we
            return ""
        end = self.pos + length
        if end > len(self.view):
            self.fail(f"{field} of {length} bytes runs past the end ({len(self.view)} bytes)")
        if self.view[end - 1] != 0:
            self.fail(f"{field} is not NUL-terminated")
        try:
            value = str(self.view[self.pos : end - 1], "utf-8")
        except UnicodeDecodeError:
            self.fail(f"{field} is not UTF-8")
        self.pos = end
        return value

    def header(self) -> FrameHeader:
        sec, nanosec, length = self.uint32s(3, "iII")
        frame_id = self.text(length, "header.frame_id")
        return frame_header(sec, nanosec, frame_id)

    def sequence(self, field: str) -> memoryview:
        (count,) = self.uint32s(1, "I")
        end = self.pos + count
        if end > len(self.view):
            self.fail(f"{field} declares {count} bytes, {len(self.view) - self.pos} follow")
        data = self.view[self.pos : end]
        self.pos = end
        return data


def parse_image(buf: bytes | bytearray | memoryview) -> ImageCdr:
    """Read a serialized sensor_msgs/Image; the pixel data stays a view on `buf`."""
    r = CdrReader(buf, "sensor_msgs/Image")
    header = r.header()
    height, width, length = r.uint32s(3, "III")
    encoding = r.text(length, "encoding")
    if r.pos >= len(r.view):
        r.fail("ends before is_bigendian")
    is_bigendian = r.view[r.pos]
    r.pos += 1
    (step,) = r.uint32s(1, "I")
    data = r.sequence("data")
    return ImageCdr(header, height, width, encoding, is_bigendian, step, data)


def parse_compressed_image(buf: bytes | bytearray | memoryview) -> CompressedImageCdr:
    """Read a serialized sensor_msgs/CompressedImage; the data stays a view on `buf`."""
    r = CdrReader(buf, "sensor_msgs/CompressedImage")
    header = r.header()
    (length,) = r.uint32s(1, "I")
    fmt = r.text(length, "format")
    return CompressedImageCdr(header, fmt, r.sequence("data"))


def _pad(offset: int) -> bytes:
    """Zero bytes that align `offset` (counted from the end of the encapsulation header) to 4."""
    return _ZEROS[: -offset % 4]


def _body(data: np.ndarray | bytes | memoryview) -> memoryview:
    """`data` as a flat byte view; a copy only for a non-contiguous array (the Segmenter's are contiguous)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8).data
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def image_cdr(header: bytes, pixels: np.ndarray, encoding: str) -> bytes:
    """A serialized sensor_msgs/Image (little-endian, unpadded rows) of `pixels` behind `header`
    (from `header_cdr`): the pixels are copied once, into the returned bytes."""
    height, width = pixels.shape[:2]
    body = _body(pixels)
    size = len(body)
    text = encoding.encode("ascii") + b"\0"
    fixed = len(header) + len(_pad(len(header)))
    tail = fixed + 12 + len(text) + 1
    prefix = b"".join(
        (
            _LITTLE_ENDIAN_CDR,
            header,
            _pad(len(header)),
            struct.pack("<III", height, width, len(text)),
            text,
            b"\0",  # is_bigendian
            _pad(tail),
            struct.pack("<II", size // height if height else 0, size),
        )
    )
    return b"".join((prefix, body))


def compressed_image_cdr(header: bytes, fmt: str, data: np.ndarray | bytes | memoryview) -> bytes:
    """A serialized sensor_msgs/CompressedImage of `data` behind `header` (from `header_cdr`)."""
    body = _body(data)
    size = len(body)
    text = fmt.encode("utf-8") + b"\0"
    fixed = len(header) + len(_pad(len(header)))
    tail = fixed + 4 + len(text)
    prefix = b"".join(
        (
            _LITTLE_ENDIAN_CDR,
            header,
            _pad(len(header)),
            struct.pack("<I", len(text)),
            text,
            _pad(tail),
            struct.pack("<I", size),
        )
    )
    return b"".join((prefix, body))

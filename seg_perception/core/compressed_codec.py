"""Decode and encode sensor_msgs/CompressedImage data (image_transport's `compressed`: JPEG or PNG).

Pure: imports only numpy, cv2 and the package's raw-image codec (for its byte view and pixel budget).
Every bad input raises ``ImageCodecError`` naming the numbers; a cut-off or lying file is refused before
cv2 sees it, and the header's size is checked against the pixel budget before anything is decoded.
"""

from __future__ import annotations

import re
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_codec import ByteData, as_int, byte_view, check_pixel_budget

# image_transport "compressed" formats: "jpeg", "png", or "<encoding>; <jpeg|png> compressed [<encoding>]".
_TRANSPORT_FORMAT: Final = re.compile(r"^(?:[\w]+\s*;\s*)?(jpeg|jpg|png)(?:\s+compressed(?:\s+\w+)?)?$")
_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TAIL_BYTES: Final = 64  # where the end marker of a complete file must appear (encoders may pad a little)


def _compressed_codec(fmt: object) -> str:
    """Return "jpeg" or "png" for a CompressedImage format string, refusing anything else."""
    if not isinstance(fmt, str):
        raise ImageCodecError(f"compressed format must be a string, got {type(fmt).__name__}", "bad_type")
    text = fmt.strip().lower()
    if "compresseddepth" in text:
        raise ImageCodecError(f"compressed format {fmt!r} is compressedDepth, which is not supported", "unknown_format")
    match = _TRANSPORT_FORMAT.match(text)
    if match is None:
        raise ImageCodecError(
            f"unknown compressed format {fmt!r}; expected 'jpeg', 'png' or e.g. 'rgb8; jpeg compressed bgr8'",
            "unknown_format",
        )
    return "jpeg" if match.group(1) in ("jpeg", "jpg") else "png"


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's start-of-frame header, or None if it is not found before the scan."""
    pos = 2
    end = len(buf)
    while pos + 4 <= end:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers carry no length
            pos += 2
            continue
        if marker == 0xDA:  # start of scan: no frame header came first
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        if marker in _JPEG_SOF_MARKERS:
            if pos + 9 > end:
                return None
            height = int.from_bytes(buf[pos + 5 : pos + 7], "big")
            width = int.from_bytes(buf[pos + 7 : pos + 9], "big")
            return width, height
        if length < 2:
            return None
        pos += 2 + length
    return None


def _png_size(buf: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None if the header is malformed."""
    if len(buf) < 24 or buf[12:16] != b"IHDR":
        return None
    return int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")


def compressed_to_inference_frame(
    format: str, data: ByteData, max_pixels: int | None = None
) -> tuple[npt.NDArray[np.uint8], str]:
    """Decode a CompressedImage (JPEG or PNG) to a C-contiguous uint8 (H, W, 3) frame in "BGR" order."""
    codec = _compressed_codec(format)
    flat = byte_view(data)
    if flat.size == 0:
        raise ImageCodecError(f"compressed {codec} data is empty", "data_empty")
    head = flat[:4096].tobytes()  # frame headers live near the start; avoid copying the whole image
    tail = flat[-_TAIL_BYTES:].tobytes()
    if codec == "jpeg":
        if not head.startswith(_JPEG_MAGIC):
            raise ImageCodecError(
                f"format says jpeg but data ({flat.size} bytes) does not start with FF D8 FF", "bad_signature"
            )
        # libjpeg happily returns a half-grey frame for a cut-off file; a complete one ends with EOI (FF D9).
        if b"\xff\xd9" not in tail:
            raise ImageCodecError(
                f"jpeg data ({flat.size} bytes) is truncated: no end-of-image marker FF D9", "truncated"
            )
        size = _jpeg_size(head)
    else:
        if not head.startswith(_PNG_MAGIC):
            raise ImageCodecError(
                f"format says png but data ({flat.size} bytes) does not start with the PNG signature", "bad_signature"
            )
        if b"IEND" not in tail:
            raise ImageCodecError(f"png data ({flat.size} bytes) is truncated: no IEND chunk", "truncated")
        size = _png_size(head)
    if size is not None:
        width, height = size
        if width <= 0 or height <= 0:
            raise ImageCodecError(f"{codec} header declares an empty image {width}x{height}", "zero_size")
        check_pixel_budget(width, height, max_pixels)
    try:
        frame = cv2.imdecode(flat, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageCodecError(f"cannot decode {codec} data ({flat.size} bytes): {exc}", "undecodable") from None
    if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
        raise ImageCodecError(f"cannot decode {codec} data ({flat.size} bytes): corrupt or unsupported", "undecodable")
    check_pixel_budget(int(frame.shape[1]), int(frame.shape[0]), max_pixels)
    return np.ascontiguousarray(frame, dtype=np.uint8), "BGR"


def encode_compressed(
    frame: np.ndarray,
    channel_order: str = "RGB",
    fmt: str = "jpeg",
    quality: int = 90,
    *,
    png_level: int = 3,
) -> tuple[str, bytes]:
    """Encode a uint8 (H, W, 3) frame as JPEG or PNG; return (image_transport format string, bytes)."""
    if channel_order not in ("RGB", "BGR"):
        raise ImageCodecError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
    codec = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}.get(fmt.lower() if isinstance(fmt, str) else "")
    if codec is None:
        raise ImageCodecError(f"unknown compressed format {fmt!r}; expected 'jpeg' or 'png'")
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = tuple(frame.shape) if isinstance(frame, np.ndarray) else type(frame).__name__
        dtype = frame.dtype if isinstance(frame, np.ndarray) else "-"
        raise ImageCodecError(f"encode needs a uint8 (H, W, 3) frame, got shape {shape} dtype {dtype}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ImageCodecError(f"cannot encode an empty frame of shape {tuple(frame.shape)}")
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if channel_order == "RGB" else frame
    if codec == "jpeg":
        quality = as_int("quality", quality)
        if not 1 <= quality <= 100:
            raise ImageCodecError(f"jpeg quality must be in 1..100, got {quality}")
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        png_level = as_int("png_level", png_level)
        if not 0 <= png_level <= 9:
            raise ImageCodecError(f"png_level must be in 0..9, got {png_level}")
        ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    if not ok:
        raise ImageCodecError(f"cv2 failed to encode a {frame.shape[1]}x{frame.shape[0]} frame as {codec}")
    source = "rgb8" if channel_order == "RGB" else "bgr8"
    return f"{source}; {codec} compressed bgr8", encoded.tobytes()

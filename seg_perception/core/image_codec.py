"""Convert sensor_msgs/Image fields to and from numpy with cv_bridge semantics (CompressedImage data:
`compressed_codec`).

Pure: imports only numpy, cv2 and the package errors. The ROS layer passes message fields in, so this
module never sees rclpy or message types. Every bad input raises ``ImageCodecError`` naming the numbers.
"""

from __future__ import annotations

import array
import operator
import sys
from dataclasses import dataclass
from typing import Final, Union

import cv2
import numpy as np
import numpy.typing as npt

from seg_perception.core import image_color
from seg_perception.core.errors import ImageCodecError

# What a message's ``data`` field may be: rclpy hands out array.array('B'); tests and bags use the rest.
ByteData = Union[bytes, bytearray, memoryview, "array.array[int]", npt.NDArray[np.uint8]]


@dataclass(frozen=True)
class _Layout:
    """How one ROS encoding lays out a pixel in memory."""

    channels: int
    depth_bytes: int  # 1 (uint8) or 2 (uint16)
    kind: str  # "rgb", "bgr", "mono", "uyvy", "yuyv" or "bayer"

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies in a row."""
        return self.channels * self.depth_bytes

    @property
    def dtype(self) -> np.dtype[np.uint8] | np.dtype[np.uint16]:
        """Native-order numpy dtype of one channel."""
        return np.dtype(np.uint8) if self.depth_bytes == 1 else np.dtype(np.uint16)


_LAYOUTS: Final[dict[str, _Layout]] = {
    "rgb8": _Layout(3, 1, "rgb"),
    "bgr8": _Layout(3, 1, "bgr"),
    "rgba8": _Layout(4, 1, "rgb"),
    "bgra8": _Layout(4, 1, "bgr"),
    "mono8": _Layout(1, 1, "mono"),
    "mono16": _Layout(1, 2, "mono"),
    "rgb16": _Layout(3, 2, "rgb"),
    "bgr16": _Layout(3, 2, "bgr"),
    "rgba16": _Layout(4, 2, "rgb"),
    "bgra16": _Layout(4, 2, "bgr"),
    # ROS "yuv422" is UYVY and "yuv422_yuy2" is YUYV; newer sensor_msgs spell them "uyvy" and "yuyv", names
    # cv_bridge (3.4) does not know: accepting them is ours.
    "yuv422": _Layout(2, 1, "uyvy"),
    "uyvy": _Layout(2, 1, "uyvy"),
    "yuv422_yuy2": _Layout(2, 1, "yuyv"),
    "yuyv": _Layout(2, 1, "yuyv"),
    "bayer_rggb8": _Layout(1, 1, "bayer"),
    "bayer_bggr8": _Layout(1, 1, "bayer"),
    "bayer_gbrg8": _Layout(1, 1, "bayer"),
    "bayer_grbg8": _Layout(1, 1, "bayer"),
    "bayer_rggb16": _Layout(1, 2, "bayer"),
    "bayer_bggr16": _Layout(1, 2, "bayer"),
    "bayer_gbrg16": _Layout(1, 2, "bayer"),
    "bayer_grbg16": _Layout(1, 2, "bayer"),
}

SUPPORTED_ENCODINGS: Final[tuple[str, ...]] = tuple(_LAYOUTS)

_MACHINE_IS_BIG_ENDIAN: Final[bool] = sys.byteorder == "big"


@dataclass(frozen=True)
class ImageFields:
    """The fields of a sensor_msgs/Image, ready to copy into a message."""

    height: int
    width: int
    step: int
    encoding: str
    is_bigendian: bool
    data: bytes


def as_int(name: str, value: object) -> int:
    """Return ``value`` as a Python int, refusing floats, bools and other non-integers."""
    if isinstance(value, bool):
        raise ImageCodecError(f"{name} must be an integer, got bool {value}", "not_integer")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ImageCodecError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}", "not_integer"
        ) from None


def _layout_for(encoding: object) -> _Layout:
    """Look up a ROS encoding, refusing empty, unknown and non-string ones."""
    if not isinstance(encoding, str):
        raise ImageCodecError(f"encoding must be a string, got {type(encoding).__name__}", "bad_type")
    if not encoding:
        raise ImageCodecError(f"empty encoding; supported: {', '.join(SUPPORTED_ENCODINGS)}", "empty_encoding")
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageCodecError(
            f"unknown encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}", "unknown_encoding"
        )
    return layout


def check_pixel_budget(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse an image larger than ``max_pixels`` before anything is allocated for it."""
    if max_pixels is None:
        return
    limit = as_int("max_pixels", max_pixels)
    if height * width > limit:
        raise ImageCodecError(
            f"image {width}x{height} = {height * width} pixels exceeds max_image_pixels {limit}", "too_many_pixels"
        )


def _check_geometry(encoding: str, layout: _Layout, height: int, width: int) -> None:
    """Refuse sizes an encoding cannot have: non-positive, odd-width YUV 4:2:2 (Bayer takes any size, as in cv2)."""
    if height <= 0:
        raise ImageCodecError(f"height must be > 0, got {height}", "zero_size")
    if width <= 0:
        raise ImageCodecError(f"width must be > 0, got {width}", "zero_size")
    # cv2 >= 4.10 refuses an odd width too (cvtColor's "sz.width % 2 == 0"); older cv2 reads past the row.
    if layout.kind in ("uyvy", "yuyv") and width % 2:
        raise ImageCodecError(
            f"encoding {encoding} needs an even width (pixel pairs share U and V), got {width}", "odd_size"
        )


def byte_view(data: object, what: str = "data") -> npt.NDArray[np.uint8]:
    """Return ``data`` as a flat uint8 array, sharing memory whenever the buffer allows."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageCodecError(f"{what} array must have dtype uint8, got {data.dtype}", "bad_type")
        return data.reshape(-1)  # a view unless the array is non-contiguous
    if isinstance(data, str):
        raise ImageCodecError(f"{what} must be bytes-like, got str", "bad_type")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise ImageCodecError(f"{what} must be bytes-like, got {type(data).__name__}", "bad_type") from None
    if not view.contiguous:
        view = memoryview(view.tobytes())
    return np.frombuffer(view.cast("B") if view.ndim != 1 or view.format != "B" else view, dtype=np.uint8)


@dataclass(frozen=True)
class _CheckedImage:
    """A validated Image: its layout and its pixel rows as a (height, width * bytes/pixel) uint8 view."""

    encoding: str
    layout: _Layout
    height: int
    width: int
    big_endian: bool
    rows: npt.NDArray[np.uint8]


def _check_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: ByteData,
    max_pixels: int | None,
) -> _CheckedImage:
    """Validate every Image field against the others and return the pixel rows without copying."""
    layout = _layout_for(encoding)
    height = as_int("height", height)
    width = as_int("width", width)
    step = as_int("step", step)
    # The field is a uint8 (rclpy gives int, users pass bool); cv_bridge treats any non-zero as big-endian.
    big_endian = is_bigendian if isinstance(is_bigendian, bool) else as_int("is_bigendian", is_bigendian) != 0
    _check_geometry(encoding, layout, height, width)
    check_pixel_budget(width, height, max_pixels)
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ImageCodecError(
            f"step {step} is smaller than width {width} x {layout.bytes_per_pixel} bytes/pixel = {row_bytes} "
            f"for encoding {encoding}",
            "step_too_small",
        )
    flat = byte_view(data)
    expected = step * height
    if flat.size < expected:
        raise ImageCodecError(
            f"data too short: {flat.size} bytes, expected step {step} x height {height} = {expected}", "data_short"
        )
    if flat.size > expected:
        raise ImageCodecError(
            f"data too long: {flat.size} bytes, expected exactly step {step} x height {height} = {expected}",
            "data_long",
        )
    # Padded rows, then drop the padding columns: a strided view, no copy.
    rows = flat.reshape(height, step)[:, :row_bytes]
    return _CheckedImage(encoding, layout, height, width, big_endian, rows)


def image_to_array(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: ByteData,
    max_pixels: int | None = None,
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """Decode Image fields like cv_bridge's passthrough: (H, W) for one channel, else (H, W, C), native order.

    The result is a view on ``data`` where possible (read-only for immutable buffers); 16-bit data is copied
    only when its byte order differs from the machine's or an odd ``step`` leaves it unaligned.
    """
    image = _check_image(encoding, height, width, step, is_bigendian, data, max_pixels)
    layout = image.layout
    pixels = image.rows if layout.depth_bytes == 1 else _native_16bit(image)
    if layout.channels == 1:
        return pixels
    return pixels.reshape(image.height, image.width, layout.channels)


def _native_16bit(image: _CheckedImage) -> npt.NDArray[np.uint16]:
    """The 16-bit samples as native uint16 (H, W * channels): a view unless byte order or alignment forbid."""
    wide = image.rows.view(np.dtype(">u2" if image.big_endian else "<u2"))
    if image.big_endian != _MACHINE_IS_BIG_ENDIAN or not wide.flags.aligned:
        return wide.astype(np.uint16)
    return wide.view(np.uint16)


def array_to_image_fields(array: np.ndarray, encoding: str) -> ImageFields:
    """Encode an array as Image fields (little-endian, unpadded); the inverse of :func:`image_to_array`.

    The array's dtype and channel count must match ``encoding`` exactly; mismatches are refused, not guessed.
    """
    layout = _layout_for(encoding)
    if not isinstance(array, np.ndarray):
        raise ImageCodecError(f"expected a numpy array, got {type(array).__name__}")
    if array.dtype.kind != "u" or array.dtype.itemsize != layout.depth_bytes:
        expected = "uint8" if layout.depth_bytes == 1 else "uint16"
        raise ImageCodecError(f"encoding {encoding} needs dtype {expected}, got {array.dtype}")
    if layout.channels == 1:
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim != 2:
            raise ImageCodecError(f"encoding {encoding} needs a 2-D (H, W) array, got shape {tuple(array.shape)}")
    elif array.ndim != 3 or array.shape[2] != layout.channels:
        raise ImageCodecError(
            f"encoding {encoding} needs an (H, W, {layout.channels}) array, got shape {tuple(array.shape)}"
        )
    height, width = int(array.shape[0]), int(array.shape[1])
    _check_geometry(encoding, layout, height, width)
    wire = np.dtype(np.uint8) if layout.depth_bytes == 1 else np.dtype("<u2")
    data = np.ascontiguousarray(array, dtype=wire).tobytes()
    return ImageFields(height, width, width * layout.bytes_per_pixel, encoding, False, data)


def to_inference_frame(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: ByteData,
    max_pixels: int | None = None,
) -> tuple[npt.NDArray[np.uint8], str]:
    """Decode Image fields to a C-contiguous uint8 (H, W, 3) frame and its channel order, "RGB" or "BGR".

    The numbers are cv_bridge's ``toCvCopy(msg, "rgb8")``, or ``"bgr8"`` for the bgr encodings: 16-bit data is
    scaled by 255/65535 with rounding, mono is replicated, YUV 4:2:2 and Bayer (any size) converted. The
    cheapest route wins: unpadded rgb8/bgr8 come back as a view on ``data`` (read-only for immutable buffers),
    every other 8-bit encoding costs one copy.
    """
    image = _check_image(encoding, height, width, step, is_bigendian, data, max_pixels)
    layout = image.layout
    order = "BGR" if layout.kind == "bgr" else "RGB"
    if layout.depth_bytes == 2:
        return _from_16bit(image), order
    rows = image.rows
    if layout.channels == 1:
        plane = image_color.inner_contiguous(rows)
        if layout.kind == "bayer":
            return image_color.demosaic(plane, _bayer_pattern(encoding)), order
        return image_color.cvt(plane, cv2.COLOR_GRAY2RGB), order
    pixels = rows.reshape(image.height, image.width, layout.channels)  # a view, padding and all
    if layout.kind in image_color.YUV_TO_RGB:
        return image_color.cvt(image_color.inner_contiguous(pixels), image_color.YUV_TO_RGB[layout.kind]), order
    if layout.channels == 4:
        # Dropping alpha is a layout change, not a colour conversion; cv2 does it far faster than numpy.
        return image_color.cvt(image_color.inner_contiguous(pixels), cv2.COLOR_RGBA2RGB), order
    return np.ascontiguousarray(pixels), order


def _bayer_pattern(encoding: str) -> str:
    """The pattern of a Bayer encoding: "rggb" for bayer_rggb8 and bayer_rggb16."""
    return encoding[len("bayer_") : len("bayer_") + 4]


def _from_16bit(image: _CheckedImage) -> npt.NDArray[np.uint8]:
    """A 16-bit image as cv_bridge converts it to 8 bits: the colour step at 16 bits, then convertTo 255/65535."""
    layout, samples = image.layout, _native_16bit(image)
    if layout.kind == "bayer":
        return image_color.demosaic(samples, _bayer_pattern(image.encoding))
    # Elsewhere the colour step only copies samples (GRAY2RGB, RGBA2RGB), so scaling first gives cv_bridge's
    # numbers too, and scales a third of the samples (mono) or drops alpha from bytes, not words.
    scaled = image_color.scale_16_to_8(samples)
    if layout.channels == 1:
        return image_color.cvt(scaled, cv2.COLOR_GRAY2RGB)
    pixels = scaled.reshape(image.height, image.width, layout.channels)
    if layout.channels == 4:
        return image_color.cvt(pixels, cv2.COLOR_RGBA2RGB)
    return pixels

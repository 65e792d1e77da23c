"""Image codec: every encoding round-trips, decodes to the right pixels, and bad input raises ImageCodecError."""

from __future__ import annotations

import array
import tracemalloc

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seg_perception.core.compressed_codec import compressed_to_inference_frame, encode_compressed
from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageFields,
    array_to_image_fields,
    byte_view,
    image_to_array,
    to_inference_frame,
)

PROPERTY_EXAMPLES = 2000  # the reliability target: at least 2,000 examples per property

# (channels, dtype) of the native array for each encoding, written out independently of the module.
NATIVE = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8),
    "mono16": (1, np.uint16),
    "rgb16": (3, np.uint16),
    "bgr16": (3, np.uint16),
    "rgba16": (4, np.uint16),
    "bgra16": (4, np.uint16),
    "yuv422": (2, np.uint8),
    "uyvy": (2, np.uint8),
    "yuv422_yuy2": (2, np.uint8),
    "yuyv": (2, np.uint8),
    "bayer_rggb8": (1, np.uint8),
    "bayer_bggr8": (1, np.uint8),
    "bayer_gbrg8": (1, np.uint8),
    "bayer_grbg8": (1, np.uint8),
    "bayer_rggb16": (1, np.uint16),
    "bayer_bggr16": (1, np.uint16),
    "bayer_gbrg16": (1, np.uint16),
    "bayer_grbg16": (1, np.uint16),
}


def random_native(encoding: str, height: int = 6, width: int = 10, seed: int = 0) -> np.ndarray:
    """A random array shaped and typed as image_to_array returns it for ``encoding``."""
    channels, dtype = NATIVE[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    high = 256 if dtype == np.uint8 else 65536
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def pad_rows(data: bytes, height: int, row_bytes: int, padding: int) -> bytes:
    """Insert ``padding`` junk bytes after every row, as a driver with an aligned ``step`` would."""
    rows = np.frombuffer(data, np.uint8).reshape(height, row_bytes)
    junk = np.full((height, padding), 0xAB, np.uint8)
    return np.hstack([rows, junk]).tobytes()


def uniform_image(height: int, width: int, pixel: list[int]) -> bytes:
    """Unpadded data whose every pixel is the byte sequence ``pixel``."""
    return bytes(pixel) * (height * width)


def test_supported_encodings_are_exactly_the_documented_ones() -> None:
    assert set(SUPPORTED_ENCODINGS) == set(NATIVE)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_every_encoding_round_trips_exactly(encoding: str) -> None:
    original = random_native(encoding)
    fields = array_to_image_fields(original, encoding)
    assert (fields.height, fields.width, fields.encoding, fields.is_bigendian) == (6, 10, encoding, False)
    assert fields.step == 10 * original.itemsize * (original.shape[2] if original.ndim == 3 else 1)
    assert len(fields.data) == fields.step * fields.height
    decoded = image_to_array(
        fields.encoding, fields.height, fields.width, fields.step, fields.is_bigendian, fields.data
    )
    assert decoded.dtype == original.dtype
    assert decoded.shape == original.shape
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize(
    "container",
    [bytes, bytearray, memoryview, lambda d: array.array("B", d), lambda d: np.frombuffer(d, np.uint8)],
    ids=["bytes", "bytearray", "memoryview", "array.array", "ndarray"],
)
def test_every_data_container_decodes(container: object) -> None:
    original = random_native("rgb16")
    fields = array_to_image_fields(original, "rgb16")
    data = container(fields.data)  # type: ignore[operator]
    decoded = image_to_array("rgb16", fields.height, fields.width, fields.step, False, data)
    np.testing.assert_array_equal(decoded, original)


def test_little_endian_output_is_little_endian_even_for_big_endian_input() -> None:
    fields = array_to_image_fields(np.array([[0x0102]], dtype=">u2"), "mono16")
    assert fields.data == b"\x02\x01"
    assert fields.is_bigendian is False


@pytest.mark.parametrize(
    "encoding", ["rgb8", "bgra8", "mono8", "mono16", "rgba16", "yuv422", "yuv422_yuy2", "bayer_grbg8", "bayer_bggr16"]
)
@pytest.mark.parametrize("padding", [7, 8, 64])
def test_padded_step_is_honoured(encoding: str, padding: int) -> None:
    original = random_native(encoding, seed=padding)
    fields = array_to_image_fields(original, encoding)
    step = fields.step + padding
    data = pad_rows(fields.data, fields.height, fields.step, padding)
    decoded = image_to_array(encoding, fields.height, fields.width, step, False, data)
    np.testing.assert_array_equal(decoded, original)
    frame, _ = to_inference_frame(encoding, fields.height, fields.width, step, False, data)
    unpadded, _ = to_inference_frame(encoding, fields.height, fields.width, fields.step, False, fields.data)
    np.testing.assert_array_equal(frame, unpadded)


def test_padded_8bit_decode_is_a_view_not_a_copy() -> None:
    original = random_native("rgb8")
    fields = array_to_image_fields(original, "rgb8")
    buffer = np.frombuffer(pad_rows(fields.data, 6, fields.step, 7), np.uint8)
    decoded = image_to_array("rgb8", 6, 10, fields.step + 7, 0, buffer)
    assert np.shares_memory(decoded, buffer)


@pytest.mark.parametrize(("encoding", "order"), [("rgb8", "RGB"), ("bgr8", "BGR")])
def test_unpadded_three_channel_frame_is_zero_copy(encoding: str, order: str) -> None:
    buffer = np.frombuffer(random_native(encoding).tobytes(), np.uint8)
    frame, channel_order = to_inference_frame(encoding, 6, 10, 30, 0, buffer)
    assert channel_order == order
    assert frame.flags.c_contiguous and frame.shape == (6, 10, 3) and frame.dtype == np.uint8
    assert np.shares_memory(frame, buffer)


def test_cv2_gets_packed_rows_as_they_are_and_anything_else_packed() -> None:
    """image_color.inner_contiguous: any row stride is kept (no copy); pixels or channels apart are packed."""
    from seg_perception.core.image_color import inner_contiguous

    base = np.arange(6 * 12 * 3, dtype=np.uint16).reshape(6, 12, 3)
    for packed in (base, base[::2], base[:, 2:7], base[:, :, 0].copy()[::3], base[:, :, 0].copy()[:, 1:5]):
        assert inner_contiguous(packed) is packed
    for strided in (base[:, ::2], base[:, :, ::2], base[:, :, 1], base[:, ::3, 0], base[::-1, ::-1]):
        out = inner_contiguous(strided)
        assert out.flags.c_contiguous and not np.shares_memory(out, base)
        assert out.dtype == np.uint16 and out.shape == strided.shape
        np.testing.assert_array_equal(out, strided)


EIGHT_BIT_ENCODINGS = [encoding for encoding, (_, dtype) in NATIVE.items() if dtype == np.uint8]


@pytest.mark.parametrize("encoding", EIGHT_BIT_ENCODINGS)
@pytest.mark.parametrize("padding", [0, 7])
def test_8bit_inference_frame_costs_at_most_one_copy(encoding: str, padding: int) -> None:
    """What the fused graph's uint8 input costs per 8-bit frame: at most one frame-sized array is allocated
    (numpy and cv2's numpy-backed outputs both report to tracemalloc), whatever the 16-bit path does."""
    height, width = 240, 320
    fields = array_to_image_fields(random_native(encoding, height, width), encoding)
    data = np.frombuffer(pad_rows(fields.data, height, fields.step, padding), np.uint8)
    step = fields.step + padding
    to_inference_frame(encoding, height, width, step, 0, data)  # warm: cv2's first call allocates tables
    tracemalloc.start()
    try:
        frame, _ = to_inference_frame(encoding, height, width, step, 0, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frame.nbytes == height * width * 3
    assert peak <= frame.nbytes + 4096, f"{peak} bytes allocated for a {frame.nbytes}-byte frame"


def test_big_endian_mono16_decodes_to_the_right_values() -> None:
    data = bytes([0x01, 0x02, 0xAB, 0xCD])
    big = image_to_array("mono16", 1, 2, 4, True, data)
    little = image_to_array("mono16", 1, 2, 4, 0, data)
    assert big.dtype == np.uint16 and big.dtype.isnative
    np.testing.assert_array_equal(big, [[0x0102, 0xABCD]])
    np.testing.assert_array_equal(little, [[0x0201, 0xCDAB]])


def test_big_endian_mono16_with_odd_step_decodes_to_the_right_values() -> None:
    data = bytes([0x01, 0x02, 0xAB, 0xCD, 0xEE, 0x03, 0x04, 0x05, 0x06, 0xEE])
    decoded = image_to_array("mono16", 2, 2, 5, 1, data)
    np.testing.assert_array_equal(decoded, [[0x0102, 0xABCD], [0x0304, 0x0506]])
    frame, _ = to_inference_frame("mono16", 2, 2, 5, 1, data)
    np.testing.assert_array_equal(frame[..., 0], [[0x01, 0xAB], [0x03, 0x05]])  # 258, 43981, 772, 1286 / 257


@pytest.mark.parametrize(
    ("encoding", "pixel", "order", "expected"),
    [
        ("rgb8", [10, 20, 30], "RGB", [10, 20, 30]),
        ("bgr8", [30, 20, 10], "BGR", [30, 20, 10]),
        ("rgba8", [10, 20, 30, 255], "RGB", [10, 20, 30]),
        ("bgra8", [30, 20, 10, 0], "BGR", [30, 20, 10]),
        ("mono8", [77], "RGB", [77, 77, 77]),
        # 16-bit: cv_bridge's convertTo(CV_8U, 255/65535) = round(v / 257), not the high byte (v >> 8)
        ("mono16", [0x34, 0x12], "RGB", [0x12, 0x12, 0x12]),  # little-endian 0x1234 = 4660 -> 18.13 -> 0x12
        ("mono16", [0xFF, 0x12], "RGB", [0x13, 0x13, 0x13]),  # 0x12FF = 4863 -> 18.92 -> 0x13 (>> 8 gives 0x12)
        ("rgb16", [0xFF, 0x10, 0x00, 0x80, 0x34, 0xFF], "RGB", [0x11, 0x80, 0xFE]),  # 0x10FF, 0x8000, 0xFF34
        ("bgra16", [0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04], "BGR", [0x01, 0x02, 0x03]),
        ("bgra16", [0x80, 0x00, 0x81, 0x00, 0x00, 0xFF, 0x00, 0x00], "BGR", [0x00, 0x01, 0xFE]),  # 128, 129, 65280
    ],
)
def test_inference_frame_has_exact_pixels(encoding: str, pixel: list[int], order: str, expected: list[int]) -> None:
    data = uniform_image(4, 6, pixel)
    frame, channel_order = to_inference_frame(encoding, 4, 6, 6 * len(pixel), False, data)
    assert channel_order == order
    assert frame.shape == (4, 6, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert (frame == np.array(expected, np.uint8)).all()


def test_inference_frame_of_big_endian_rgb16_is_scaled_like_little_endian() -> None:
    data = uniform_image(2, 2, [0x10, 0xFF, 0x80, 0x00, 0xFF, 0x34])  # big-endian 0x10FF, 0x8000, 0xFF34
    frame, _ = to_inference_frame("rgb16", 2, 2, 12, True, data)
    assert (frame == np.array([0x11, 0x80, 0xFE], np.uint8)).all()  # 17.0, 127.5 -> 128, 254.2


# BT.601 video range: pure red is Y=81, U(Cb)=90, V(Cr)=240; mid grey is Y=U=V=128.
@pytest.mark.parametrize(
    ("encoding", "pair"),
    [
        ("yuv422", lambda y, u, v: [u, y, v, y]),
        ("uyvy", lambda y, u, v: [u, y, v, y]),
        ("yuv422_yuy2", lambda y, u, v: [y, u, y, v]),
        ("yuyv", lambda y, u, v: [y, u, y, v]),
    ],
)
@pytest.mark.parametrize(("yuv", "rgb"), [((81, 90, 240), (255, 0, 0)), ((128, 128, 128), (131, 131, 131))])
def test_yuv422_variants_decode_to_the_known_colour(
    encoding: str, pair: object, yuv: tuple[int, int, int], rgb: tuple[int, int, int]
) -> None:
    width, height = 8, 4
    data = bytes(pair(*yuv)) * (height * width // 2)  # type: ignore[operator]
    frame, order = to_inference_frame(encoding, height, width, width * 2, False, data)
    assert order == "RGB" and frame.shape == (height, width, 3)
    assert np.abs(frame.astype(int) - np.array(rgb)).max() <= 2


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("colour", [(200, 100, 50), (30, 180, 240)])
@pytest.mark.parametrize(("depth", "scale"), [(8, 1), (16, 257)])
@pytest.mark.parametrize(("height", "width"), [(8, 12), (7, 11)])
def test_bayer_patch_demosaics_to_its_colour(
    pattern: str, colour: tuple[int, int, int], depth: int, scale: int, height: int, width: int
) -> None:
    value = {name: level * scale for name, level in zip("rgb", colour, strict=True)}
    mosaic = np.empty((height, width), np.uint8 if depth == 8 else np.uint16)
    mosaic[0::2, 0::2] = value[pattern[0]]
    mosaic[0::2, 1::2] = value[pattern[1]]
    mosaic[1::2, 0::2] = value[pattern[2]]
    mosaic[1::2, 1::2] = value[pattern[3]]
    fields = array_to_image_fields(mosaic, f"bayer_{pattern}{depth}")
    frame, order = to_inference_frame(fields.encoding, height, width, fields.step, 0, fields.data)
    assert order == "RGB" and frame.shape == (height, width, 3)
    assert np.abs(frame.astype(int) - np.array(colour)).max() <= 2


def smooth_frame(height: int = 48, width: int = 64) -> npt.NDArray[np.uint8]:
    """An RGB gradient: JPEG-friendly, so the lossy round trip stays close."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=2).astype(np.uint8)


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_png_round_trip_is_exact(order: str) -> None:
    frame = np.random.default_rng(1).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    fmt, data = encode_compressed(frame, order, "png")
    assert fmt == f"{order.lower()}8; png compressed bgr8"
    decoded, decoded_order = compressed_to_inference_frame(fmt, data)
    assert decoded_order == "BGR" and decoded.flags.c_contiguous
    expected = frame[:, :, ::-1] if order == "RGB" else frame
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("format_string", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"])
def test_jpeg_round_trip_is_close(format_string: str) -> None:
    frame = smooth_frame()
    fmt, data = encode_compressed(frame, "RGB", "jpeg", quality=95)
    assert fmt == "rgb8; jpeg compressed bgr8"
    decoded, order = compressed_to_inference_frame(format_string, array.array("B", data))
    assert order == "BGR" and decoded.shape == frame.shape
    error = np.abs(decoded[:, :, ::-1].astype(int) - frame.astype(int))
    assert error.mean() < 2 and error.max() <= 12


def test_plain_png_format_and_ndarray_data_decode() -> None:
    _, data = encode_compressed(smooth_frame(), "BGR", "png")
    decoded, _ = compressed_to_inference_frame("png", np.frombuffer(data, np.uint8))
    np.testing.assert_array_equal(decoded, smooth_frame())


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_size_above_max_pixels_is_refused(fmt: str) -> None:
    _, data = encode_compressed(smooth_frame(48, 64), "RGB", fmt)
    with pytest.raises(ImageCodecError, match=r"image 64x48 = 3072 pixels exceeds max_image_pixels 3071"):
        compressed_to_inference_frame(fmt, data, max_pixels=3071)
    compressed_to_inference_frame(fmt, data, max_pixels=3072)


def test_png_header_size_is_checked_before_decoding() -> None:
    _, data = encode_compressed(smooth_frame(), "RGB", "png")
    # Claim 100000 x 100000 in IHDR (its CRC now fails too): the header check must refuse it first.
    bomb = data[:16] + (100000).to_bytes(4, "big") * 2 + data[24:]
    with pytest.raises(ImageCodecError, match=r"image 100000x100000 = 10000000000 pixels exceeds"):
        compressed_to_inference_frame("png", bomb, max_pixels=33177600)


def fields_of(encoding: str, height: int = 4, width: int = 6) -> dict[str, object]:
    """Valid Image fields for a random image, as keyword arguments."""
    f = array_to_image_fields(random_native(encoding, height, width), encoding)
    return {"encoding": f.encoding, "height": f.height, "width": f.width, "step": f.step,
            "is_bigendian": f.is_bigendian, "data": f.data}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"height": 0}, r"height must be > 0, got 0"),
        ({"width": 0}, r"width must be > 0, got 0"),
        ({"width": -3}, r"width must be > 0, got -3"),
        ({"height": 2.0}, r"height must be an integer, got float 2\.0"),
        ({"width": 6.0}, r"^width must be an integer, got float 6\.0$"),
        ({"width": True}, r"^width must be an integer, got bool True$"),
        ({"step": 18.0}, r"^step must be an integer, got float 18\.0$"),
        ({"step": 17}, r"step 17 is smaller than width 6 x 3 bytes/pixel = 18 for encoding rgb8"),
        ({"data": bytes(71)}, r"data too short: 71 bytes, expected step 18 x height 4 = 72"),
        ({"data": bytes(73)}, r"data too long: 73 bytes, expected exactly step 18 x height 4 = 72"),
        ({"data": "x" * 72}, r"data must be bytes-like, got str"),
        ({"data": np.zeros(36, np.uint16)}, r"data array must have dtype uint8, got uint16"),
        ({"encoding": "8UC3"}, r"unknown encoding '8UC3'; supported: rgb8, bgr8"),
        ({"encoding": "RGB8"}, r"unknown encoding 'RGB8'"),
        ({"encoding": ""}, r"empty encoding; supported: rgb8"),
        ({"encoding": None}, r"encoding must be a string, got NoneType"),
        ({"is_bigendian": "yes"}, r"is_bigendian must be an integer, got str"),
    ],
)
@pytest.mark.parametrize("decode", [image_to_array, to_inference_frame])
def test_bad_image_fields_are_refused(decode: object, changes: dict[str, object], message: str) -> None:
    kwargs = fields_of("rgb8") | changes
    with pytest.raises(ImageCodecError, match=message):
        decode(**kwargs)  # type: ignore[operator]


ALL_ENCODINGS = (
    "rgb8, bgr8, rgba8, bgra8, mono8, mono16, rgb16, bgr16, rgba16, bgra16, yuv422, uyvy, yuv422_yuy2, yuyv, "
    "bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8, bayer_rggb16, bayer_bggr16, bayer_gbrg16, bayer_grbg16"
)


# Word for word, with the slug the node counts per kind in /diagnostics (fields_of("rgb8"): 6x4, step 18, 72 bytes).
@pytest.mark.parametrize(
    ("changes", "message", "reason"),
    [
        ({"height": 0}, "height must be > 0, got 0", "zero_size"),
        ({"height": -1}, "height must be > 0, got -1", "zero_size"),
        ({"width": 0}, "width must be > 0, got 0", "zero_size"),
        ({"height": 2.0}, "height must be an integer, got float 2.0", "not_integer"),
        ({"width": True}, "width must be an integer, got bool True", "not_integer"),
        ({"step": "18"}, "step must be an integer, got str '18'", "not_integer"),
        ({"is_bigendian": None}, "is_bigendian must be an integer, got NoneType None", "not_integer"),
        ({"max_pixels": 24.0}, "max_pixels must be an integer, got float 24.0", "not_integer"),
        ({"max_pixels": 23}, "image 6x4 = 24 pixels exceeds max_image_pixels 23", "too_many_pixels"),
        ({"step": 17}, "step 17 is smaller than width 6 x 3 bytes/pixel = 18 for encoding rgb8", "step_too_small"),
        ({"data": bytes(71)}, "data too short: 71 bytes, expected step 18 x height 4 = 72", "data_short"),
        ({"data": bytes(73)}, "data too long: 73 bytes, expected exactly step 18 x height 4 = 72", "data_long"),
        ({"data": "x" * 72}, "data must be bytes-like, got str", "bad_type"),
        ({"data": 72}, "data must be bytes-like, got int", "bad_type"),
        ({"data": np.zeros(36, np.uint16)}, "data array must have dtype uint8, got uint16", "bad_type"),
        ({"encoding": None}, "encoding must be a string, got NoneType", "bad_type"),
        ({"encoding": b"rgb8"}, "encoding must be a string, got bytes", "bad_type"),
        ({"encoding": ""}, f"empty encoding; supported: {ALL_ENCODINGS}", "empty_encoding"),
        ({"encoding": "8UC3"}, f"unknown encoding '8UC3'; supported: {ALL_ENCODINGS}", "unknown_encoding"),
    ],
)
@pytest.mark.parametrize("decode", [image_to_array, to_inference_frame])
def test_bad_image_fields_are_refused_word_for_word_with_their_reason(
    decode: object, changes: dict[str, object], message: str, reason: str
) -> None:
    with pytest.raises(ImageCodecError) as err:
        decode(**(fields_of("rgb8") | changes))  # type: ignore[operator]
    assert (str(err.value), err.value.reason) == (message, reason)


def test_the_smallest_valid_sizes_and_the_pixel_budget_boundary_decode() -> None:
    assert image_to_array("mono8", 1, 1, 1, 0, b"\x07").tolist() == [[7]]
    assert image_to_array("rgb8", 4, 6, 18, 0, bytes(72), max_pixels=24).shape == (4, 6, 3)
    assert image_to_array("rgb8", 4, 6, 18, 0, bytes(72), max_pixels=None).shape == (4, 6, 3)


@pytest.mark.parametrize(
    ("is_bigendian", "value"), [(0, 0x0201), (False, 0x0201), (1, 0x0102), (2, 0x0102), (True, 0x0102)]
)
def test_any_non_zero_is_bigendian_is_big_endian(is_bigendian: bool | int, value: int) -> None:
    assert image_to_array("mono16", 1, 1, 2, is_bigendian, b"\x01\x02").tolist() == [[value]]


def test_strided_and_multi_byte_buffers_are_read_as_their_bytes() -> None:
    data = bytes(range(24))
    strided = memoryview(bytes(range(48)))[::2]  # not contiguous: bytes 0, 2, 4, ...
    assert image_to_array("mono8", 2, 12, 12, 0, strided).reshape(-1).tolist() == list(range(0, 48, 2))
    words = memoryview(data).cast("H")  # format "H": 12 items, 24 bytes
    assert image_to_array("mono8", 2, 12, 12, 0, words).reshape(-1).tolist() == list(range(24))
    grid = memoryview(data).cast("B", (2, 12))  # 2-D
    assert image_to_array("mono8", 2, 12, 12, 0, grid).reshape(-1).tolist() == list(range(24))
    plane = np.frombuffer(data, np.uint8).reshape(2, 12)  # an (H, W) array is flattened, not refused
    assert image_to_array("mono8", 2, 12, 12, 0, plane).reshape(-1).tolist() == list(range(24))


def test_byte_view_is_a_flat_view_of_the_bytes() -> None:
    plane = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    flat = byte_view(plane)
    assert flat.shape == (24,) and flat.dtype == np.uint8 and np.shares_memory(flat, plane)
    assert byte_view(bytearray(b"ab")).tolist() == [97, 98]


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2", "uyvy", "yuyv"])
def test_odd_width_yuv422_is_refused(encoding: str) -> None:
    with pytest.raises(ImageCodecError, match=rf"encoding {encoding} needs an even width .*got 5"):
        image_to_array(encoding, 2, 5, 10, 0, bytes(20))


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "bayer_gbrg16"])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (4, 5), (3, 6), (3, 5)])
def test_odd_sized_bayer_demosaics_as_cv2_does(encoding: str, height: int, width: int) -> None:
    plane = random_native(encoding, height, width)
    fields = array_to_image_fields(plane, encoding)
    frame, order = to_inference_frame(encoding, height, width, fields.step, 0, fields.data)
    code = cv2.COLOR_BayerBG2RGB if encoding == "bayer_rggb8" else cv2.COLOR_BayerGR2RGB
    want = cv2.cvtColor(plane, code)
    if plane.dtype == np.uint16:
        want = cv2.convertScaleAbs(want, alpha=255 / 65535)
    assert order == "RGB" and frame.shape == (height, width, 3)
    np.testing.assert_array_equal(frame, want)


def test_image_above_max_pixels_is_refused_before_the_data_is_looked_at() -> None:
    message = r"image 10000x10000 = 100000000 pixels exceeds max_image_pixels 33177600"
    with pytest.raises(ImageCodecError, match=message):
        image_to_array("rgb8", 10000, 10000, 30000, 0, b"", max_pixels=33177600)
    image = fields_of("mono8", 4, 6)
    assert to_inference_frame(**image, max_pixels=24)[0].shape == (4, 6, 3)  # type: ignore[arg-type]
    with pytest.raises(ImageCodecError, match=r"image 6x4 = 24 pixels exceeds max_image_pixels 23"):
        to_inference_frame(**image, max_pixels=23)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array_in", "encoding", "message"),
    [
        (np.zeros((4, 6, 3), np.uint16), "rgb8", r"encoding rgb8 needs dtype uint8, got uint16"),
        (np.zeros((4, 6), np.uint8), "mono16", r"encoding mono16 needs dtype uint16, got uint8"),
        (np.zeros((4, 6, 3), np.float32), "rgb8", r"needs dtype uint8, got float32"),
        (np.zeros((4, 6, 4), np.uint8), "rgb8", r"encoding rgb8 needs an \(H, W, 3\) array, got shape \(4, 6, 4\)"),
        (np.zeros((4, 6, 3), np.uint8), "mono8", r"encoding mono8 needs a 2-D \(H, W\) array, got shape \(4, 6, 3\)"),
        (np.zeros((0, 6, 3), np.uint8), "rgb8", r"height must be > 0, got 0"),
        (np.zeros((4, 5, 2), np.uint8), "yuv422", r"needs an even width"),
        (np.zeros((4, 6), np.uint8), "bayer", r"unknown encoding 'bayer'"),
    ],
)
def test_array_encoding_mismatch_is_refused(array_in: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        array_to_image_fields(array_in, encoding)


@pytest.fixture(scope="module")
def compressed() -> dict[str, bytes]:
    """A small valid JPEG and PNG."""
    return {fmt: encode_compressed(smooth_frame(), "RGB", fmt)[1] for fmt in ("jpeg", "png")}


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_empty_compressed_data_is_refused(fmt: str) -> None:
    with pytest.raises(ImageCodecError, match=rf"compressed {fmt} data is empty"):
        compressed_to_inference_frame(fmt, b"")


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.9])
def test_truncated_compressed_data_is_refused(compressed: dict[str, bytes], fmt: str, keep: float) -> None:
    data = compressed[fmt]
    with pytest.raises(ImageCodecError, match=rf"{fmt} data \(\d+ bytes\) is truncated"):
        compressed_to_inference_frame(fmt, data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("jpeg", b"hello world" * 10, r"format says jpeg but data \(110 bytes\) does not start with FF D8 FF"),
        ("png", b"hello world" * 10, r"format says png but data \(110 bytes\) does not start with the PNG"),
        ("jpeg", b"\xff\xd8\xff" + bytes(200) + b"\xff\xd9", r"cannot decode jpeg data \(205 bytes\)"),
        ("png", b"\x89PNG\r\n\x1a\n" + b"x" * 100 + b"IEND", r"cannot decode png data \(112 bytes\)"),
    ],
)
def test_garbage_compressed_data_is_refused(fmt: str, data: bytes, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        compressed_to_inference_frame(fmt, data)


def test_mismatched_compressed_format_is_refused(compressed: dict[str, bytes]) -> None:
    with pytest.raises(ImageCodecError, match=r"format says png but data"):
        compressed_to_inference_frame("bgr8; png compressed bgr8", compressed["jpeg"])


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("webp", r"unknown compressed format 'webp'"),
        ("", r"unknown compressed format ''"),
        ("rgb8; tiff compressed bgr8", r"unknown compressed format 'rgb8; tiff compressed bgr8'"),
        ("16UC1; compressedDepth png", r"compressedDepth, which is not supported"),
    ],
)
def test_unknown_compressed_format_is_refused(compressed: dict[str, bytes], fmt: str, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        compressed_to_inference_frame(fmt, compressed["jpeg"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame": np.zeros((4, 6), np.uint8)}, r"encode needs a uint8 \(H, W, 3\) frame, got shape \(4, 6\)"),
        ({"frame": np.zeros((4, 6, 3), np.float32)}, r"got shape \(4, 6, 3\) dtype float32"),
        ({"channel_order": "RGBA"}, r"channel_order must be 'RGB' or 'BGR', got 'RGBA'"),
        ({"fmt": "webp"}, r"unknown compressed format 'webp'; expected 'jpeg' or 'png'"),
        ({"quality": 0}, r"jpeg quality must be in 1..100, got 0"),
    ],
)
def test_bad_encode_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"frame": smooth_frame()} | kwargs
    with pytest.raises(ImageCodecError, match=message):
        encode_compressed(**arguments)  # type: ignore[arg-type]


BOGUS_ENCODINGS = ("", "RGB8", "8UC3", "bayer_rggb12", "nv12", "mono8 ", "yuv422\x00")


def mostly(draw: st.DrawFn, valid: st.SearchStrategy[object], invalid: st.SearchStrategy[object]) -> object:
    """Draw from ``valid`` four times in five, so that whole messages are often valid; shrinks toward valid."""
    return draw(valid if draw(st.integers(0, 4)) else invalid)


@st.composite
def image_fields(draw: st.DrawFn) -> dict[str, object]:
    """Image fields that are often valid and otherwise subtly or wildly wrong in one or more fields."""
    encoding = mostly(draw, st.sampled_from(SUPPORTED_ENCODINGS), st.sampled_from(BOGUS_ENCODINGS))
    bad_size = st.one_of(st.integers(-2, 0), st.integers(1, 9), st.sampled_from([2.0, None, True, "4"]))
    height = mostly(draw, st.sampled_from([2, 4, 6]), bad_size)
    width = mostly(draw, st.sampled_from([2, 4, 6]), bad_size)
    channels, dtype = NATIVE.get(str(encoding), (3, np.uint8))
    nominal = width * channels * np.dtype(dtype).itemsize if isinstance(width, int) else 0
    step = int(mostly(draw, st.integers(nominal, nominal + 9), st.integers(-3, 80)))  # type: ignore[call-overload]
    rows = height if isinstance(height, int) and height > 0 else 0
    length = int(mostly(draw, st.just(max(step, 0) * rows), st.integers(0, 400)))  # type: ignore[call-overload]
    data = draw(st.binary(min_size=length, max_size=length))
    return {
        "encoding": encoding,
        "height": height,
        "width": width,
        "step": step,
        "is_bigendian": mostly(draw, st.sampled_from([0, 1, True, False]), st.sampled_from([7, 1.0, None])),
        "data": draw(st.sampled_from([bytes, bytearray, memoryview, lambda d: array.array("B", d)]))(data),
        "max_pixels": draw(st.one_of(st.none(), st.integers(0, 100))),
    }


YUV422_ENCODINGS = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")


def is_exact_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass, and not a size


def fields_are_valid(fields: dict[str, object]) -> bool:
    """Whether an Image with these fields is well formed, decided from sensor_msgs/Image's own rules."""
    encoding, height, width = fields["encoding"], fields["height"], fields["width"]
    if encoding not in NATIVE or not is_exact_int(height) or not is_exact_int(width):
        return False
    h, w = int(height), int(width)  # type: ignore[call-overload]
    if h <= 0 or w <= 0:
        return False
    if encoding in YUV422_ENCODINGS and w % 2:  # U and V are shared by pixel pairs
        return False
    channels, dtype = NATIVE[str(encoding)]
    step = fields["step"]
    if not is_exact_int(step) or int(step) < w * channels * np.dtype(dtype).itemsize:  # type: ignore[call-overload]
        return False
    if len(bytes(fields["data"])) != int(step) * h:  # type: ignore[arg-type, call-overload]
        return False
    big = fields["is_bigendian"]
    if not isinstance(big, bool) and not is_exact_int(big):
        return False
    limit = fields["max_pixels"]
    return limit is None or h * w <= int(limit)  # type: ignore[call-overload]


def expected_pixels(fields: dict[str, object]) -> np.ndarray:
    """The native array for valid fields, read straight from the bytes with numpy."""
    channels, dtype = NATIVE[str(fields["encoding"])]
    h, w, step = int(fields["height"]), int(fields["width"]), int(fields["step"])  # type: ignore[call-overload]
    row_bytes = w * channels * np.dtype(dtype).itemsize
    rows = np.frombuffer(bytes(fields["data"]), np.uint8).reshape(h, step)[:, :row_bytes]  # type: ignore[arg-type]
    if dtype == np.uint16:
        wire = ">u2" if fields["is_bigendian"] else "<u2"
        rows = np.ascontiguousarray(rows).view(wire).astype(np.uint16)
    return rows.reshape((h, w) if channels == 1 else (h, w, channels))


@settings(deadline=None, max_examples=PROPERTY_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(image_fields())
def test_random_fields_decode_to_the_stated_shape_or_raise_image_codec_error(fields: dict[str, object]) -> None:
    """Valid fields decode to the exact stated shape and bytes; invalid ones raise ImageCodecError only."""
    if not fields_are_valid(fields):
        event("invalid fields")
        with pytest.raises(ImageCodecError):
            image_to_array(**fields)  # type: ignore[arg-type]
        with pytest.raises(ImageCodecError):
            to_inference_frame(**fields)  # type: ignore[arg-type]
        return
    event("valid fields")
    want = expected_pixels(fields)
    decoded = image_to_array(**fields)  # type: ignore[arg-type]
    assert decoded.dtype == want.dtype and decoded.shape == want.shape
    np.testing.assert_array_equal(decoded, want)
    frame, order = to_inference_frame(**fields)  # type: ignore[arg-type]
    assert frame.shape == (fields["height"], fields["width"], 3) and frame.dtype == np.uint8
    assert frame.flags.c_contiguous and order in ("RGB", "BGR")


@st.composite
def compressed_messages(draw: st.DrawFn) -> tuple[str, bytes, str, np.ndarray]:
    """(format, data, kind, frame): valid, cut short, corrupted, or random behind a plausible header.

    PNG frames are random pixels (the round trip must be exact); JPEG frames are one colour (lossy).
    """
    fmt = draw(st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8", "gif"]))
    codec = "png" if "png" in fmt else "jpeg"
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if codec == "png":
        pixels = draw(st.binary(min_size=height * width * 3, max_size=height * width * 3))
        frame = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
    else:
        frame = np.full((height, width, 3), draw(st.integers(0, 255)), np.uint8)
    valid = encode_compressed(frame, "BGR", codec)[1]
    kind = draw(st.sampled_from(["valid", "cut", "flip", "random"]))
    if kind == "cut":
        data = valid[: draw(st.integers(0, len(valid) - 1))]
    elif kind == "flip":
        position = draw(st.integers(0, len(valid) - 1))
        data = valid[:position] + bytes([valid[position] ^ draw(st.integers(1, 255))]) + valid[position + 1 :]
    elif kind == "random":
        data = valid[:8] + draw(st.binary(max_size=200)) + valid[-12:]
    else:
        data = valid
    return fmt, data, kind, frame


@settings(deadline=None, max_examples=PROPERTY_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(compressed_messages(), st.one_of(st.none(), st.integers(1, 200)))
def test_random_compressed_data_decodes_or_raises_image_codec_error(
    message: tuple[str, bytes, str, np.ndarray], max_pixels: int | None
) -> None:
    """Valid encodings within the pixel budget decode to their exact shape (PNG: exact pixels); damaged or
    unsupported ones may only raise ImageCodecError, or decode to a frame of the header's shape."""
    fmt, data, kind, frame = message
    over_budget = max_pixels is not None and frame.shape[0] * frame.shape[1] > max_pixels
    if fmt == "gif" or (kind == "valid" and over_budget):
        event("must be refused")
        with pytest.raises(ImageCodecError):
            compressed_to_inference_frame(fmt, data, max_pixels=max_pixels)
        return
    if kind == "valid":
        event("must decode")
        decoded, order = compressed_to_inference_frame(fmt, data, max_pixels=max_pixels)
        assert decoded.shape == frame.shape and decoded.dtype == np.uint8 and order == "BGR"
        if "png" in fmt:
            np.testing.assert_array_equal(decoded, frame)
        else:
            assert np.abs(decoded.astype(int) - frame.astype(int)).max() <= 3
        return
    try:
        decoded, order = compressed_to_inference_frame(fmt, data, max_pixels=max_pixels)
    except ImageCodecError:
        return
    event(f"{kind} data decoded")
    assert decoded.ndim == 3 and decoded.shape[2] == 3 and decoded.dtype == np.uint8 and order == "BGR"
    assert max_pixels is None or decoded.shape[0] * decoded.shape[1] <= max_pixels
    if kind == "cut":  # a cut keeps the header: if anything decodes, it has the header's size
        assert decoded.shape == frame.shape


def test_cv2_and_module_agree_that_rgb_to_bgr_is_a_channel_flip() -> None:
    # Guards encode_compressed's assumption that RGB2BGR only reorders channels.
    frame = smooth_frame()
    np.testing.assert_array_equal(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), frame[:, :, ::-1])


# --- array_to_image_fields' refusals word for word, and the (H, W, 1) array a one-channel encoding takes ---
def test_a_non_array_is_refused_naming_its_type() -> None:
    with pytest.raises(ImageCodecError, match=r"^expected a numpy array, got list$") as err:
        array_to_image_fields([[1, 2]], "mono8")  # type: ignore[arg-type]
    assert err.value.reason == "invalid"  # a refusal without a kind of its own: the default slug


def test_an_image_codec_error_without_a_reason_is_counted_as_invalid() -> None:
    assert ImageCodecError("bad frame").reason == "invalid"
    assert ImageCodecError("short", "data_short").reason == "data_short"


def test_one_channel_encodings_take_a_trailing_axis_of_one() -> None:
    pixels = np.arange(6, dtype=np.uint8).reshape(2, 3)
    expected = ImageFields(2, 3, 3, "mono8", False, bytes(range(6)))
    assert array_to_image_fields(pixels, "mono8") == expected
    assert array_to_image_fields(pixels[:, :, None], "mono8") == expected
    wide = np.arange(6, dtype=np.uint16).reshape(2, 3, 1) * 257
    assert array_to_image_fields(wide, "mono16").data == (np.arange(6, dtype="<u2") * 257).tobytes()
    with pytest.raises(ImageCodecError, match=r"^encoding mono8 needs a 2-D \(H, W\) array, got shape \(2, 3, 2\)$"):
        array_to_image_fields(np.zeros((2, 3, 2), np.uint8), "mono8")
    with pytest.raises(ImageCodecError, match=r"^encoding mono8 needs a 2-D \(H, W\) array, got shape \(2, 3, 1, 1\)$"):
        array_to_image_fields(np.zeros((2, 3, 1, 1), np.uint8), "mono8")


def test_an_odd_width_yuv422_array_is_refused_naming_the_encoding() -> None:
    with pytest.raises(
        ImageCodecError, match=r"^encoding yuv422 needs an even width \(pixel pairs share U and V\), got 3$"
    ):
        array_to_image_fields(np.zeros((2, 3, 2), np.uint8), "yuv422")
    assert array_to_image_fields(np.zeros((2, 4, 2), np.uint8), "yuv422").step == 8

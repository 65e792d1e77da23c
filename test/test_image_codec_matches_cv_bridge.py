"""The image decoder against cv_bridge's conversion table, restated from its source: exact equality.

Reference: ros-perception/vision_opencv ``rolling`` at 8b42d66 (cv_bridge 3.4.0), cv_bridge/src/cv_bridge.cpp:

* getCvType, L75-101: each encoding's depth and channel count (``CV_TYPE`` below);
* getEncoding, L126-143: the colour family of each encoding, 8 and 16 bit alike (``FAMILY``);
* getConversionCodes, L151-213: SAME_FORMAT for a family to itself (L154-156) and the cvtColor codes, of which
  the decoder needs those to RGB and BGR: GRAY L158-159, RGB/BGR L164/L169, RGBA/BGRA L174-175/L179-180,
  YUV422 L184-185, YUV422_YUY2 L190-191, Bayer L195-210 (``CONVERSION_CODES``);
* getConversionCode, L215-272: the table's codes, plus a SAME_FORMAT step when the depths differ and the
  families differ (L263-269);
* matFromImage, L277-328: refuses step < width x bytes/pixel (L283-289) and height x step != size (L291-296),
  shares the rows ``step`` bytes apart (L299-300) when the byte order is the machine's or the depth is 8 bit
  (L302-307), else swaps the bytes of each channel (L309-322);
* toCvCopyImpl, L331-378: the same encoding is a copy (L342-344); otherwise each code in turn, cvtColor
  (L369) or, for SAME_FORMAT, ``convertTo`` with alpha 255/65535 from 16 to 8 bit (L362-363);
* toCvCopy, L422-428: matFromImage, then toCvCopyImpl. ``to_inference_frame`` is ``toCvCopy(msg, "rgb8")``,
  or ``"bgr8"`` for the bgr encodings; ``image_to_array`` is the passthrough ``toCvCopy(msg, "")``.

Where the reference restates what cv_bridge means rather than what it does (the decoder is deliberately better
there, see the README): L325 discards ``mat_swap.reshape(num_channels)``, so a big-endian 16-bit message on a
little-endian machine comes out as 8-bit with twice the channels (mono16/rgba16/bgra16 then throw in cvtColor,
rgb16/bgr16 give 6-channel garbage); here the swapped bytes are read as the 16-bit channels L309-322 build.
cv::Mat refuses a step that is not a multiple of a channel's size (opencv2/core/mat.inl.hpp, "Step must be a
multiple of esz1"), so C++ cv_bridge throws on an odd step for 16-bit data; here rows start ``step`` bytes apart
whatever the step. The Python cv_bridge (cv_bridge/python/cv_bridge/core.py) reads rows ``int(step / itemsize /
channels)`` whole pixels apart (L176, L180), which shifts rows when the padding is not a whole pixel (pinned
below), and its ``byteswap().newbyteorder()`` (L186) no longer exists in NumPy 2.

``convertTo`` is not bound in cv2's Python API; ``cv2.convertScaleAbs`` with the same alpha is, and
``test_convert_scale_abs_is_mat_convert_to_on_every_16_bit_value`` proves it equal to ``Mat::convertTo`` (reached
through ``cv2.normalize``, whose NORM_MINMAX is ``src.convertTo(dst, rtype, scale, shift)``) on all 65,536 values.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_codec import SUPPORTED_ENCODINGS, image_to_array, to_inference_frame

# getCvType, L78-101: (bytes per channel, channels).
CV_TYPE: dict[str, tuple[int, int]] = {
    "bgr8": (1, 3),
    "mono8": (1, 1),
    "rgb8": (1, 3),
    "mono16": (2, 1),
    "bgr16": (2, 3),
    "rgb16": (2, 3),
    "bgra8": (1, 4),
    "rgba8": (1, 4),
    "bgra16": (2, 4),
    "rgba16": (2, 4),
    "bayer_rggb8": (1, 1),
    "bayer_bggr8": (1, 1),
    "bayer_gbrg8": (1, 1),
    "bayer_grbg8": (1, 1),
    "bayer_rggb16": (2, 1),
    "bayer_bggr16": (2, 1),
    "bayer_gbrg16": (2, 1),
    "bayer_grbg16": (2, 1),
    "yuv422": (1, 2),
    "yuv422_yuy2": (1, 2),
}

# getEncoding, L128-139.
FAMILY: dict[str, str] = {
    "mono8": "GRAY",
    "mono16": "GRAY",
    "bgr8": "BGR",
    "bgr16": "BGR",
    "rgb8": "RGB",
    "rgb16": "RGB",
    "bgra8": "BGRA",
    "bgra16": "BGRA",
    "rgba8": "RGBA",
    "rgba16": "RGBA",
    "yuv422": "YUV422",
    "yuv422_yuy2": "YUV422_YUY2",
    "bayer_rggb8": "BAYER_RGGB",
    "bayer_rggb16": "BAYER_RGGB",
    "bayer_bggr8": "BAYER_BGGR",
    "bayer_bggr16": "BAYER_BGGR",
    "bayer_gbrg8": "BAYER_GBRG",
    "bayer_gbrg16": "BAYER_GBRG",
    "bayer_grbg8": "BAYER_GRBG",
    "bayer_grbg16": "BAYER_GRBG",
}

SAME_FORMAT = -1  # L145
# getConversionCodes: L154-156 (the first six families to themselves), then the codes to RGB and BGR.
CONVERSION_CODES: dict[tuple[str, str], list[int]] = {
    **{(f, f): [SAME_FORMAT] for f in ("GRAY", "RGB", "BGR", "RGBA", "BGRA", "YUV422")},
    ("GRAY", "RGB"): [cv2.COLOR_GRAY2RGB],
    ("GRAY", "BGR"): [cv2.COLOR_GRAY2BGR],
    ("RGB", "BGR"): [cv2.COLOR_RGB2BGR],
    ("BGR", "RGB"): [cv2.COLOR_BGR2RGB],
    ("RGBA", "RGB"): [cv2.COLOR_RGBA2RGB],
    ("RGBA", "BGR"): [cv2.COLOR_RGBA2BGR],
    ("BGRA", "RGB"): [cv2.COLOR_BGRA2RGB],
    ("BGRA", "BGR"): [cv2.COLOR_BGRA2BGR],
    ("YUV422", "RGB"): [cv2.COLOR_YUV2RGB_UYVY],
    ("YUV422", "BGR"): [cv2.COLOR_YUV2BGR_UYVY],
    ("YUV422_YUY2", "RGB"): [cv2.COLOR_YUV2RGB_YUY2],
    ("YUV422_YUY2", "BGR"): [cv2.COLOR_YUV2BGR_YUY2],
    ("BAYER_RGGB", "RGB"): [cv2.COLOR_BayerBG2RGB],
    ("BAYER_RGGB", "BGR"): [cv2.COLOR_BayerBG2BGR],
    ("BAYER_BGGR", "RGB"): [cv2.COLOR_BayerRG2RGB],
    ("BAYER_BGGR", "BGR"): [cv2.COLOR_BayerRG2BGR],
    ("BAYER_GBRG", "RGB"): [cv2.COLOR_BayerGR2RGB],
    ("BAYER_GBRG", "BGR"): [cv2.COLOR_BayerGR2BGR],
    ("BAYER_GRBG", "RGB"): [cv2.COLOR_BayerGB2RGB],
    ("BAYER_GRBG", "BGR"): [cv2.COLOR_BayerGB2BGR],
}

# Names cv_bridge 3.4 does not know (getCvType throws "Unrecognized image encoding"); the decoder reads them as
# the encodings they alias.
OUR_ALIASES = {"uyvy": "yuv422", "yuyv": "yuv422_yuy2"}
YUV422 = ("yuv422", "yuv422_yuy2", "uyvy", "yuyv")


class CvBridgeError(Exception):
    """What cv_bridge::Exception is in the restatement."""


def conversion_codes(src: str, dst: str) -> list[int]:
    """getConversionCode, L215-272, for colour encodings (every one the decoder converts is one)."""
    codes = list(CONVERSION_CODES[(FAMILY[src], FAMILY[dst])])
    if 8 * CV_TYPE[src][0] != 8 * CV_TYPE[dst][0] and FAMILY[src] != FAMILY[dst]:  # L265-269
        codes.append(SAME_FORMAT)
    return codes


def mat_from_image(encoding: str, height: int, width: int, step: int, big_endian: bool, data: bytes) -> np.ndarray:
    """matFromImage, L277-328 (with the byte swap's result kept, as L324 says it means to)."""
    depth, channels = CV_TYPE[encoding]
    row_bytes = width * depth * channels
    if step < row_bytes:
        raise CvBridgeError("Image is wrongly formed: step < width * byte_depth * num_channels")
    if height * step != len(data):
        raise CvBridgeError("Image is wrongly formed: height * step != size")
    # cv::Mat(height, width, type, data, step): row r starts at byte r * step.
    rows = np.stack([np.frombuffer(data, np.uint8, row_bytes, r * step) for r in range(height)])
    if depth == 2:
        rows = rows.view(">u2" if big_endian else "<u2").astype(np.uint16)  # shared, or bytes swapped per channel
    return rows.reshape(height, width) if channels == 1 else rows.reshape(height, width, channels)


def to_cv_copy_impl(source: np.ndarray, src: str, dst: str) -> np.ndarray:
    """toCvCopyImpl, L331-378."""
    if not dst or dst == src:
        return source.copy()  # L342-344
    image1 = source
    for code in conversion_codes(src, dst):
        if code == SAME_FORMAT:  # L352-366
            if CV_TYPE[src][0] == 2 and CV_TYPE[dst][0] == 1:
                image2 = cv2.convertScaleAbs(image1, alpha=255.0 / 65535.0)  # convertTo(CV_8U, 255. / 65535.)
            else:
                image2 = image1.copy()  # same depth: convertTo without scaling copies
        else:
            image2 = cv2.cvtColor(image1, code)  # L369
        image1 = image2
    return image2


def cv_bridge_to_cv_copy(
    encoding: str, height: int, width: int, step: int, big_endian: bool, data: bytes, dst: str
) -> np.ndarray:
    """toCvCopy(msg, dst), L422-428."""
    return to_cv_copy_impl(mat_from_image(encoding, height, width, step, big_endian, data), encoding, dst)


def target_of(encoding: str) -> str:
    """The cv_bridge encoding ``to_inference_frame`` stands for: bgr8 for the bgr family, rgb8 for the rest."""
    return "bgr8" if FAMILY[encoding] in ("BGR", "BGRA") else "rgb8"


def message(
    encoding: str, height: int, width: int, padding: int, big_endian: bool, seed: int
) -> tuple[int, bytes, npt.NDArray[np.uint8]]:
    """(step, data, the unpadded wire rows) of a random message; the padding bytes are random too."""
    depth, channels = CV_TYPE[encoding]
    step = width * depth * channels + padding
    data = np.random.default_rng(seed).integers(0, 256, height * step, dtype=np.uint8)
    return step, data.tobytes(), data.reshape(height, step)[:, : step - padding]


def assert_decoder_matches_cv_bridge(
    encoding: str, height: int, width: int, padding: int, big_endian: bool, seed: int
) -> None:
    step, data, _ = message(encoding, height, width, padding, big_endian, seed)
    dst = target_of(encoding)
    want = cv_bridge_to_cv_copy(encoding, height, width, step, big_endian, data, dst)
    frame, order = to_inference_frame(encoding, height, width, step, big_endian, data)
    assert order == dst[:3].upper()
    assert frame.dtype == want.dtype == np.uint8 and frame.shape == want.shape == (height, width, 3)
    np.testing.assert_array_equal(frame, want)
    passthrough = cv_bridge_to_cv_copy(encoding, height, width, step, big_endian, data, "")
    decoded = image_to_array(encoding, height, width, step, big_endian, data)
    assert decoded.dtype == passthrough.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, passthrough)


CV_BRIDGE_ENCODINGS = sorted(CV_TYPE)


def test_every_encoding_cv_bridge_converts_is_decoded_and_the_rest_are_our_aliases() -> None:
    assert set(CV_TYPE) == set(FAMILY)
    assert set(SUPPORTED_ENCODINGS) == set(CV_TYPE) | set(OUR_ALIASES)
    assert not set(OUR_ALIASES) & set(CV_TYPE)


# (height, width, padding, big_endian): 1x1, odd, camera sizes.
FIXED_CASES = [(1, 1, 0, False), (1, 2, 3, True), (3, 5, 1, False), (480, 640, 0, True), (481, 641, 5, False)]
FIXED_CASES += [(720, 1280, 64, True)]


@pytest.mark.parametrize("encoding", CV_BRIDGE_ENCODINGS)
@pytest.mark.parametrize(("height", "width", "padding", "big_endian"), FIXED_CASES)
def test_tiny_odd_and_large_frames_equal_cv_bridge(
    encoding: str, height: int, width: int, padding: int, big_endian: bool
) -> None:
    if encoding in YUV422:
        width += width % 2  # odd-width 4:2:2 is refused: test_odd_width_yuv422_is_refused_with_its_reason
    assert_decoder_matches_cv_bridge(encoding, height, width, padding, big_endian, seed=height + width)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, int, int, int, bool, int]:
    """(encoding, height, width, padding, big_endian, seed): every encoding, 1x1 upwards, odd and even sizes."""
    encoding = draw(st.sampled_from(CV_BRIDGE_ENCODINGS))
    height = draw(st.integers(1, 40))
    width = draw(st.integers(1, 40))
    if encoding in YUV422:
        width += width % 2  # odd-width 4:2:2 is refused: test_odd_width_yuv422_is_refused_with_its_reason
    return encoding, height, width, draw(st.integers(0, 64)), draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@settings(deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_random_messages_decode_to_cv_bridge_values(case: tuple[str, int, int, int, bool, int]) -> None:
    assert_decoder_matches_cv_bridge(*case)


@pytest.mark.parametrize(("alias", "encoding"), sorted(OUR_ALIASES.items()))
def test_our_yuv_aliases_decode_as_the_cv_bridge_names(alias: str, encoding: str) -> None:
    step, data, _ = message(encoding, 5, 6, 3, False, seed=1)
    want = cv_bridge_to_cv_copy(encoding, 5, 6, step, False, data, "rgb8")
    np.testing.assert_array_equal(to_inference_frame(alias, 5, 6, step, False, data)[0], want)


@pytest.mark.parametrize("encoding", YUV422)
def test_odd_width_yuv422_is_refused_with_its_reason(encoding: str) -> None:
    with pytest.raises(ImageCodecError, match=r"needs an even width \(pixel pairs share U and V\), got 5") as info:
        to_inference_frame(encoding, 2, 5, 10, False, bytes(20))
    assert info.value.reason == "odd_size"
    if tuple(int(part) for part in cv2.__version__.split(".")[:2]) >= (4, 10):  # OpenCV refuses it too
        with pytest.raises(cv2.error, match=r"width % 2 == 0"):
            cv2.cvtColor(np.zeros((2, 5, 2), np.uint8), cv2.COLOR_YUV2RGB_UYVY)


def test_convert_scale_abs_is_mat_convert_to_on_every_16_bit_value() -> None:
    values = np.arange(65536, dtype=np.uint16)
    # cv2.normalize NORM_MINMAX over [0, 65535] -> [0, 255] is Mat::convertTo(CV_8U, 255 * (1 / 65535), 0).
    convert_to = cv2.normalize(values.reshape(256, 256), None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U).ravel()
    scale_abs = cv2.convertScaleAbs(values.reshape(256, 256), alpha=255.0 / 65535.0).ravel()
    np.testing.assert_array_equal(scale_abs, convert_to)
    # saturate_cast rounds half to even (cvRound); numpy's rint does too. No value is a tie (510 v is even,
    # 65535 (2 n + 1) odd), so it is round(v / 257) whichever way ties would go: (v + 128) // 257.
    np.testing.assert_array_equal(convert_to, np.rint(values * (255.0 / 65535.0)))
    np.testing.assert_array_equal(convert_to, (values.astype(np.uint32) + 128) // 257)
    # Lengths that leave a scalar tail after the SIMD lanes agree too.
    for length in (1, 3, 7, 17, 33, 65535):
        part = values[-length:].reshape(1, -1)
        np.testing.assert_array_equal(cv2.convertScaleAbs(part, alpha=255.0 / 65535.0).ravel(), convert_to[-length:])
    # What the decoder did before (the high byte) is one off on a quarter of the values.
    high_byte = (values >> 8).astype(np.uint8)
    assert ((high_byte < convert_to).sum(), (high_byte > convert_to).sum()) == (8128, 8128)


@pytest.mark.parametrize("big_endian", [False, True])
def test_every_16_bit_value_decodes_to_cv_bridge_scaling(big_endian: bool) -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    data = values.astype(">u2" if big_endian else "<u2").tobytes()
    frame, _ = to_inference_frame("mono16", 256, 256, 512, big_endian, data)
    want = (values.astype(np.uint32) + 128) // 257
    for channel in range(3):
        np.testing.assert_array_equal(frame[..., channel], want)


@pytest.mark.parametrize("encoding", ["bayer_rggb16", "bayer_bggr16", "bayer_gbrg16", "bayer_grbg16"])
def test_16_bit_bayer_is_demosaiced_before_it_is_scaled(encoding: str) -> None:
    # Demosaicing averages neighbours at 16 bits; scaling each neighbour first rounds before averaging, which
    # lands on another value for some pixels of a random mosaic: only cv_bridge's order (L196-210 code, then the
    # SAME_FORMAT step of L268) gives its numbers.
    step, data, _ = message(encoding, 9, 11, 0, False, seed=3)
    want = cv_bridge_to_cv_copy(encoding, 9, 11, step, False, data, "rgb8")
    plane = np.frombuffer(data, "<u2").reshape(9, 11)
    code = conversion_codes(encoding, "rgb8")[0]
    scaled_first = cv2.cvtColor(cv2.convertScaleAbs(plane, alpha=255.0 / 65535.0), code)
    assert (want != scaled_first).any()
    np.testing.assert_array_equal(to_inference_frame(encoding, 9, 11, step, False, data)[0], want)


def python_cv_bridge_passthrough(encoding: str, height: int, width: int, step: int, data: bytes) -> np.ndarray:
    """core.py imgmsg_to_cv2 L169-182, little-endian: rows int(step / itemsize / channels) pixels apart."""
    depth, channels = CV_TYPE[encoding]
    dtype = np.dtype("<u2" if depth == 2 else np.uint8)
    if channels == 1:
        im = np.ndarray(shape=(height, int(step / dtype.itemsize)), dtype=dtype, buffer=data)
        return np.ascontiguousarray(im[:height, :width])
    im = np.ndarray(shape=(height, int(step / dtype.itemsize / channels), channels), dtype=dtype, buffer=data)
    return np.ascontiguousarray(im[:height, :width, :])


@pytest.mark.parametrize(("encoding", "padding"), [("rgb8", 1), ("bgra8", 2), ("mono16", 1), ("rgb16", 4)])
def test_python_cv_bridge_shifts_rows_when_padding_is_not_a_whole_pixel(encoding: str, padding: int) -> None:
    step, data, _ = message(encoding, 6, 8, padding, False, seed=7)
    cpp = cv_bridge_to_cv_copy(encoding, 6, 8, step, False, data, "")
    assert (python_cv_bridge_passthrough(encoding, 6, 8, step, data) != cpp).any()
    np.testing.assert_array_equal(image_to_array(encoding, 6, 8, step, False, data), cpp)
    whole = CV_TYPE[encoding][0] * CV_TYPE[encoding][1] * 3  # three whole pixels of padding: all agree
    step, data, _ = message(encoding, 6, 8, whole, False, seed=7)
    np.testing.assert_array_equal(
        python_cv_bridge_passthrough(encoding, 6, 8, step, data), image_to_array(encoding, 6, 8, step, False, data)
    )

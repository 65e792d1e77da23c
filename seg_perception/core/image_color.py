"""cv_bridge's conversions from decoded Image pixels to an 8-bit three-channel frame.

Pure: numpy and cv2 only. ``image_codec`` validates a message's fields and hands over native-order pixels; the
numbers produced here are cv_bridge's ``toCvCopy(msg, "rgb8")`` / ``toCvCopy(msg, "bgr8")``: the cvtColor codes
of its conversion table and its 16 -> 8 bit scaling (vision_opencv ``rolling``, cv_bridge/src/cv_bridge.cpp,
getConversionCodes and toCvCopyImpl). test/test_image_codec_matches_cv_bridge.py holds every value to a
restatement of that table.
"""

from __future__ import annotations

from typing import Final, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

# OpenCV names a Bayer pattern by the second row's 2nd and 3rd pixels, ROS by the top-left 2x2 block, so the
# names look shifted. These are the pairs cv_bridge uses (cv_bridge.cpp getConversionCodes, "Deal with Bayer"),
# for the 8- and the 16-bit encodings alike; cv2 demosaics any size, odd and 1x1 included.
BAYER_TO_RGB: Final[dict[str, int]] = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
YUV_TO_RGB: Final[dict[str, int]] = {
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUY2,
}
# cv_bridge's 16 -> 8 bit step: ``convertTo(CV_8U, 255. / 65535.)``, i.e. round(v / 257) (no v is a tie).
SCALE_16_TO_8: Final[float] = 255.0 / 65535.0

_Pixels = TypeVar("_Pixels", bound="np.ndarray")


def scale_16_to_8(pixels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]:
    """cv_bridge's 16 -> 8 bit conversion, element by element; a fresh C-contiguous array of the same shape.

    ``cv2.convertScaleAbs`` is ``Mat::convertTo(CV_8U, alpha)`` for unsigned input (the absolute value changes
    nothing); the test proves the two equal on all 65,536 values. Unlike keeping the high byte (``v >> 8``) it
    rounds: ``v >> 8`` is one lower on 8,128 values and one higher on 8,128.
    """
    return np.asarray(cv2.convertScaleAbs(pixels, alpha=SCALE_16_TO_8), dtype=np.uint8)


def demosaic(plane: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], pattern: str) -> npt.NDArray[np.uint8]:
    """An (H, W) Bayer plane of any size as an RGB uint8 frame.

    16-bit planes are demosaiced at 16 bits and scaled afterwards, as cv_bridge orders the two steps (its
    conversion list is the Bayer code, then the depth change); scaling first would round differently.
    """
    rgb = cv2.cvtColor(inner_contiguous(plane), BAYER_TO_RGB[pattern])
    if plane.dtype == np.uint16:
        return scale_16_to_8(np.asarray(rgb, dtype=np.uint16))
    return np.asarray(rgb, dtype=np.uint8)


def cvt(pixels: npt.NDArray[np.uint8], code: int) -> npt.NDArray[np.uint8]:
    """cv2.cvtColor, typed: the result is always a fresh C-contiguous uint8 array."""
    return np.asarray(cv2.cvtColor(pixels, code), dtype=np.uint8)


def inner_contiguous(pixels: _Pixels) -> _Pixels:
    """Return ``pixels`` as cv2 can take them: any row stride, but each row packed; copy only if not."""
    packed = pixels.strides[1] == pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    if packed and (pixels.ndim == 2 or pixels.strides[2] == pixels.itemsize):
        return pixels
    return np.ascontiguousarray(pixels)  # type: ignore[return-value]

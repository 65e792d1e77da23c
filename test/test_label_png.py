"""The lossless label PNG codec alone (no node): exact values back, the refusals word for word, the mono8 format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.label_png import PNG_LEVEL, PNG_MONO8_FORMAT, decode_label_png, encode_label_png


def test_every_value_comes_back_from_bytes_and_from_the_array() -> None:
    labels = np.arange(256 * 3, dtype=np.uint16).reshape(24, 32).astype(np.uint8)
    data = encode_label_png(labels)
    assert data.dtype == np.uint8 and data.ndim == 1
    assert bytes(data[:8]) == b"\x89PNG\r\n\x1a\n"
    for given in (data, data.tobytes(), bytearray(data.tobytes())):
        out = decode_label_png(given)  # type: ignore[arg-type]  # a bytearray works too
        assert out.dtype == np.uint8 and out.shape == (24, 32)
        assert np.array_equal(out, labels)


def test_encoded_as_opencv_writes_level_1_rle_png() -> None:
    labels = np.zeros((40, 60), np.uint8)
    labels[10:30, 5:50] = 7
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    assert PNG_LEVEL == 1
    assert encode_label_png(labels).tobytes() == cv2.imencode(".png", labels, params)[1].tobytes()
    assert PNG_MONO8_FORMAT == "mono8; png compressed "


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((4, 5, 3), np.uint8), "a label PNG needs a 2-D uint8 mask, got uint8 of shape (4, 5, 3)"),
        (np.zeros((4, 5), np.uint16), "a label PNG needs a 2-D uint8 mask, got uint16 of shape (4, 5)"),
        (np.zeros(5, np.uint8), "a label PNG needs a 2-D uint8 mask, got uint8 of shape (5,)"),
    ],
)
def test_only_a_2d_uint8_mask_is_encoded(pixels: np.ndarray, message: str) -> None:
    with pytest.raises(SegPerceptionError) as err:
        encode_label_png(pixels)
    assert str(err.value) == message


def test_a_failed_encode_names_the_mask_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "imencode", lambda *_: (False, None))
    with pytest.raises(SegPerceptionError) as err:
        encode_label_png(np.zeros((3, 7), np.uint8))
    assert str(err.value) == "PNG encoding of a 7x3 mask failed"


@pytest.mark.parametrize("data", [b"not a png at all", np.frombuffer(b"\x00" * 32, np.uint8)])
def test_bytes_that_are_not_png_are_refused(data: bytes | np.ndarray) -> None:
    with pytest.raises(SegPerceptionError) as err:
        decode_label_png(data)
    assert str(err.value) == "not a PNG image"


def test_decode_keeps_what_the_png_holds() -> None:
    # "Values unchanged": a 16-bit mask stays 16-bit and a colour PNG stays colour (for the caller to refuse),
    # nothing is converted to 8-bit grey on the way.
    wide = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    out = decode_label_png(cv2.imencode(".png", wide)[1])
    assert out.dtype == np.uint16 and np.array_equal(out, wide)
    colour = np.zeros((2, 3, 3), np.uint8)
    colour[..., 2] = 200
    assert decode_label_png(cv2.imencode(".png", colour)[1].tobytes()).shape == (2, 3, 3)

"""Skip marker for tests that quantize: INT8 calibration needs onnxruntime >= 1.32 (not on Python 3.10)."""

from __future__ import annotations

import onnxruntime
import pytest

from seg_perception.core.quantization import INT8_QUANTIZER_NEEDS, int8_quantizer_available

needs_int8_quantizer = pytest.mark.skipif(
    not int8_quantizer_available(), reason=f"{INT8_QUANTIZER_NEEDS}; this environment has {onnxruntime.__version__}"
)

"""Activation ranges for INT8: ONNX Runtime's calibrators, with settings that hold on real activations.

ONNX Runtime's histogram calibrators fail or degrade on real networks when used with their defaults:

* **percentile** bins each tensor's ``|x|`` between the *first batch's* smallest and largest ``|x|``. A
  tensor whose values sit in a narrow band away from zero (a gate near 1.0, a saturated sigmoid, a
  constant-ish channel) spans only a few float32 steps, and numpy refuses: "Too many bins for data range.
  Cannot create 2048 finite-sized bins." The bins also depend on which frame came first.
* **entropy** with its defaults (128 histogram bins, 128 quantized bins) has exactly one candidate
  threshold, the full range: it is minmax under another name (byte-identical graphs).

So calibration runs in two passes over the same frames. Pass 1 (ONNX Runtime's MinMax calibrater) finds
every calibrated tensor's range over *all* frames. Pass 2 (the histogram calibrater) starts from
histograms we seed with fixed bins from that range, as TensorRT's own calibrators do: ``|x|`` over
``[0, max|x|]`` for percentile, ``[-max|x|, max|x|]`` for entropy (ONNX Runtime's layouts). Bins then never
need to grow, never degenerate, and do not depend on frame order. Settings (``CALIBRATION_SETTINGS``):

* minmax: the exact range of pass 1;
* percentile: 2048 bins of ``|x|``, threshold at the 99.999th percentile (symmetric, as TensorRT's
  explicit Q/DQ wants: zero point 0);
* entropy: 2048 bins over ``[-max|x|, max|x|]``, merged into 128 quantized bins, choosing the threshold
  of least KL divergence: the numbers of NVIDIA's "8-bit Inference with TensorRT" (GTC 2017), which ONNX
  Runtime's implementation cites. The bin holding exact zeros gets its neighbour's count first (as
  NVIDIA's pytorch-quantization does): otherwise the ReLU spike at 0 makes the search clip every ReLU
  output to an eighth of its range (measured: 79.7 % agreement on the demo model instead of 99.9 %).
  Entropy is the slow method: its KL search is Python, about 0.6 s per calibrated tensor.

Whatever the method, the quantizer then quantizes symmetrically (scale = max(|lo|, |hi|) / 127).
The ranges are ONNX Runtime ``TensorsData``; ``quantization.qdq_from_ranges`` turns them into a QDQ graph
as often as mixed precision needs, without calibrating again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from seg_perception.core.errors import SegPerceptionError

LOG = logging.getLogger(__name__)
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Ops whose inputs get Q/DQ pairs: the compute-heavy ones TensorRT runs as INT8 kernels.
QUANTIZED_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")
CHUNK_FRAMES = 8  # frames per collect call: bounds the memory the calibrators hold for intermediate outputs
SMALLEST_RANGE = 1e-30  # an all-zero tensor still gets strictly increasing bin edges


class CalibrationError(SegPerceptionError):
    """The calibration frames or the calibrator could not produce activation ranges."""


@dataclass(frozen=True)
class CalibrationSettings:
    """What a calibration method is run with (recorded in the QDQ graph's cache sidecar)."""

    method: str
    num_bins: int = 0
    num_quantized_bins: int = 0
    percentile: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v}


CALIBRATION_SETTINGS = {
    "minmax": CalibrationSettings("minmax"),
    "percentile": CalibrationSettings("percentile", num_bins=2048, percentile=99.999),
    "entropy": CalibrationSettings("entropy", num_bins=2048, num_quantized_bins=128),
}


class _FrameReader:
    """CalibrationDataReader over camera batches, advancing a progress bar per frame."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray], bar: Any) -> None:
        self._input_name = input_name
        self._it = iter(batches)
        self._bar = bar

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        self._bar.update(1)
        return {self._input_name: batch}


def _collect(calibrator: Any, input_name: str, batches: Sequence[np.ndarray], bar: Any) -> None:
    from onnxruntime.quantization import CalibrationDataReader

    reader_type = type("_Reader", (_FrameReader, CalibrationDataReader), {})
    for start in range(0, len(batches), CHUNK_FRAMES):
        calibrator.collect_data(reader_type(input_name, batches[start : start + CHUNK_FRAMES], bar))


def _seed_histograms(calibrator: Any, minmax: Any, settings: CalibrationSettings) -> None:
    """Give the histogram collector fixed bins from pass 1's ranges (see the module docstring)."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    symmetric = settings.method == "percentile"
    collector = HistogramCollector(
        method=settings.method,
        symmetric=symmetric,
        num_bins=settings.num_bins,
        num_quantized_bins=settings.num_quantized_bins or 128,
        percentile=settings.percentile or 99.999,
        scenario="same",
    )
    for name, data in minmax.items():
        low, high = data.range_value  # arrays (per-channel calibrations have one value per channel)
        lo, hi = np.float32(np.min(low)), np.float32(np.max(high))
        amax = np.float32(max(abs(float(lo)), abs(float(hi)), SMALLEST_RANGE))
        empty = np.zeros(settings.num_bins, np.int64)
        if symmetric:  # ONNX Runtime's |x| histogram: (hist, edges, min, max)
            edges = np.linspace(0.0, amax, settings.num_bins + 1, dtype=np.float32)
            collector.histogram_dict[name] = (empty, edges, lo, hi)
        else:  # its signed histogram: (hist, edges, min, max, threshold)
            edges = np.linspace(-amax, amax, settings.num_bins + 1, dtype=np.float32)
            collector.histogram_dict[name] = (empty, edges, lo, hi, np.array(amax, np.float32))
    calibrator.collector = collector


def _flatten_zero_spike(collector: Any) -> None:
    """Give the bin that holds exact zeros its neighbour's count before the KL search.

    After a ReLU most values are exactly 0; that spike dominates the KL divergence, so every wider
    threshold (which merges the spike with its neighbours) looks worse and the search settles on its
    narrowest candidate, clipping the activations to an eighth of their range. NVIDIA's
    pytorch-quantization entropy calibrator does the same (``bins[0] = bins[1]``)."""
    for name, entry in collector.histogram_dict.items():
        hist = entry[0].copy()
        zero = len(hist) // 2  # signed histogram over [-t, t]: 0 is the left edge of this bin
        if zero + 1 < len(hist):
            hist[zero] = hist[zero + 1]
        collector.histogram_dict[name] = (hist, *entry[1:])


def calibrate(
    model: onnx.ModelProto,
    input_name: str,
    batches: Sequence[np.ndarray],
    method: str,
    op_types: Sequence[str] = QUANTIZED_OP_TYPES,
) -> Any:
    """Activation ranges (onnxruntime ``TensorsData``) of the inputs and outputs of `model`'s `op_types` nodes."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from tqdm import tqdm

    if method not in CALIBRATION_SETTINGS:
        raise CalibrationError(f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    if not batches:
        raise CalibrationError("no calibration frames")
    settings = CALIBRATION_SETTINGS[method]
    passes = 1 if method == "minmax" else 2
    chatter = io.StringIO()  # the histogram collector print()s its progress; keep stdout ours
    with (
        tempfile.TemporaryDirectory(prefix="seg_calib_") as tmp,
        tqdm(total=passes * len(batches), desc=f"calibrating ({method})", unit="frame", disable=None) as bar,
        contextlib.redirect_stdout(chatter),
    ):
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        try:
            minmax_calibrator = create_calibrator(
                path,
                list(op_types),
                augmented_model_path=str(Path(tmp) / "minmax.onnx"),
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"symmetric": False},
            )
            _collect(minmax_calibrator, input_name, batches, bar)
            ranges = minmax_calibrator.compute_data()
            del minmax_calibrator
            if method != "minmax":
                calibrator = create_calibrator(
                    path,
                    list(op_types),
                    augmented_model_path=str(Path(tmp) / "histogram.onnx"),
                    calibrate_method={"percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}[
                        method
                    ],
                    extra_options={
                        "symmetric": method == "percentile",
                        "num_bins": settings.num_bins,
                        "num_quantized_bins": settings.num_quantized_bins,
                        "percentile": settings.percentile,
                    },
                )
                _seed_histograms(calibrator, ranges, settings)
                _collect(calibrator, input_name, batches, bar)
                if method == "entropy":
                    _flatten_zero_spike(calibrator.collector)
                ranges = calibrator.compute_data()
                del calibrator
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CalibrationError(f"onnxruntime could not calibrate the fused graph ({method}): {exc}") from exc
    LOG.debug("calibrator output: %s", chatter.getvalue().strip())
    return ranges

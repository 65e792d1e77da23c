"""Mixed precision: keep the layers INT8 hurts most in fp32 until the accuracy gate passes.

What TensorRT users do by hand, as one search:

1. **Sensitivity**, on the calibration frames: each weighted node (Conv/MatMul/Gemm of the model) is
   quantized *alone*, every other node in fp32, with the ranges already calibrated; its score is how far
   its labels move from the fp32 labels (disagreement plus the lowest class IoU's shortfall). One quantizer
   run and one pass over a few frames per node; no recalibration.
2. **Search**, on the held-out frames: the most sensitive nodes are excluded from quantization one more at a
   time (``nodes_to_exclude``; TensorRT then runs them in fp32/fp16) until the gate passes or only
   ``min_quantized_fraction`` of the weighted nodes would remain quantized.

The held-out frames decide when to stop (they are what the gate checks), the calibration frames decide
the order, so the layers chosen are not fitted to the frames that judge them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from seg_perception.core.int8_gate import AccuracyCheck, GateThresholds, check_accuracy
from seg_perception.core.quantization import qdq_from_ranges, weighted_nodes

LOG = logging.getLogger(__name__)
SENSITIVITY_FRAMES = 4  # calibration frames each single-node graph is scored on


@dataclass(frozen=True)
class MixedPrecisionResult:
    """The graph the search ended with, the nodes kept in fp32 and how it scored."""

    qdq: onnx.ModelProto
    fp32_nodes: tuple[str, ...]
    weighted_nodes: int
    check: AccuracyCheck
    passed: bool
    sensitivity: tuple[tuple[str, float], ...]

    @property
    def quantized_fraction(self) -> float:
        return 1.0 - len(self.fp32_nodes) / max(1, self.weighted_nodes)

    def to_json(self) -> dict[str, Any]:
        return {
            "fp32_nodes": list(self.fp32_nodes),
            "weighted_nodes": self.weighted_nodes,
            "quantized_fraction": round(self.quantized_fraction, 4),
            "passed": self.passed,
            "label_agreement": round(self.check.label_agreement, 6),
            "sensitivity": [{"node": n, "score": round(s, 6)} for n, s in self.sensitivity[:16]],
        }


def _score(check: AccuracyCheck) -> float:
    gated = [v for n, v in check.per_class_iou.items() if n in check.gated_classes and v is not None]
    return (1.0 - check.label_agreement) + (1.0 - min(gated, default=1.0))


def layer_sensitivity(
    fused: onnx.ModelProto,
    ranges: Any,
    batches: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    class_names: Sequence[str],
    drivable_ids: Sequence[int],
    target: str = "tensorrt",
) -> list[tuple[str, float]]:
    """(node, score) for every weighted node quantized alone, most harmful first."""
    nodes = weighted_nodes(fused, target)
    scored = []
    for node in nodes:
        alone = qdq_from_ranges(fused, ranges, exclude=[n for n in nodes if n != node], target=target)
        check = check_accuracy(alone, batches, reference, class_names, drivable_ids)
        scored.append((node, _score(check)))
        LOG.debug("sensitivity of %s: %.4f (agreement %.4f)", node, scored[-1][1], check.label_agreement)
    order = {n: i for i, n in enumerate(nodes)}
    return sorted(scored, key=lambda item: (-item[1], order[item[0]]))


def search_mixed_precision(
    fused: onnx.ModelProto,
    ranges: Any,
    calibration: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    held_out: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    class_names: Sequence[str],
    drivable_ids: Sequence[int],
    thresholds: GateThresholds,
    min_quantized_fraction: float = 0.5,
    target: str = "tensorrt",
) -> MixedPrecisionResult:
    """Exclude the most sensitive nodes one at a time until the gate passes (see the module docstring).

    `calibration` and `held_out` are (camera batches, fp32 labels) pairs."""
    nodes = weighted_nodes(fused, target)
    calib_batches, calib_ref = calibration
    ranking = layer_sensitivity(
        fused,
        ranges,
        calib_batches[:SENSITIVITY_FRAMES],
        calib_ref[:SENSITIVITY_FRAMES],
        class_names,
        drivable_ids,
        target,
    )
    most = max(0, math.floor(len(nodes) * (1.0 - min_quantized_fraction) + 1e-9))
    best: MixedPrecisionResult | None = None
    for count in range(1, most + 1):
        keep = tuple(n for n, _ in ranking[:count])
        qdq = qdq_from_ranges(fused, ranges, exclude=keep, target=target)
        check = check_accuracy(qdq, held_out[0], held_out[1], class_names, drivable_ids)
        passed = not check.failures(thresholds)
        LOG.info(
            "mixed precision: %d of %d weighted nodes in fp32 (%s): agreement %.2f%%%s",
            count,
            len(nodes),
            ", ".join(keep[-1:]),
            check.label_agreement * 100,
            ", gate passes" if passed else "",
        )
        result = MixedPrecisionResult(qdq, keep, len(nodes), check, passed, tuple(ranking))
        if best is None or check.label_agreement > best.check.label_agreement or passed:
            best = result
        if passed:
            return result
    if best is None:  # nothing may be excluded (one weighted node, or min_quantized_fraction 1)
        qdq = qdq_from_ranges(fused, ranges, target=target)
        check = check_accuracy(qdq, held_out[0], held_out[1], class_names, drivable_ids)
        best = MixedPrecisionResult(qdq, (), len(nodes), check, not check.failures(thresholds), tuple(ranking))
    return best

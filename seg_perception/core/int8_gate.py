"""The INT8 accuracy gate: a QDQ graph is checked against the fp32 graph on held-out frames of the user's data.

No ground truth is needed: the fp32 graph's labels are the reference, so the check runs on the very frames
the user calibrates with (a held-out split) or on ``--val DIR``. Measured per check:

* label agreement: the fraction of pixels where both graphs give the same label;
* mIoU and per-class IoU of the INT8 labels against the fp32 labels;
* drivable-mask agreement: the fraction of pixels where both agree on drivable / not drivable.

The gate passes when agreement >= ``min_agreement`` (default 98 %) and no class IoU is below
``min_class_iou`` (default 90 %). Only classes that cover at least ``MIN_CLASS_SHARE`` of the held-out
pixels (in either graph's labels) are held to the IoU floor: a class seen on a few dozen pixels has an IoU
that swings with every pixel and would veto any graph. The figures go into the QDQ graph's cache sidecar
(``to_json``), which the engine builder and the node read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.graph_compiler import INPUT_NAME, LABELS_NAME

MIN_CLASS_SHARE = 0.001  # classes on fewer than 0.1 % of held-out pixels are reported, not gated
WORST_FRAMES = 3


class AccuracyGateError(SegPerceptionError):
    """An INT8 graph failed its accuracy gate (the message says by how much and what to do)."""


@dataclass(frozen=True)
class GateThresholds:
    """What an INT8 graph must reach against fp32 on held-out frames."""

    min_agreement: float = 0.98
    min_class_iou: float = 0.90

    def __post_init__(self) -> None:
        for name, value in (("min_agreement", self.min_agreement), ("min_class_iou", self.min_class_iou)):
            if not 0.0 <= value <= 1.0:
                raise SegPerceptionError(f"{name} {value} is outside 0..1")


@dataclass(frozen=True)
class AccuracyCheck:
    """INT8 labels against fp32 labels on held-out frames."""

    frames: int
    pixels: int
    label_agreement: float
    miou_vs_fp32: float
    per_class_iou: dict[str, float | None]  # None: the class appears in neither graph's labels
    gated_classes: tuple[str, ...]  # classes large enough to be held to the IoU floor
    drivable_agreement: float
    worst_frames: tuple[tuple[str, float], ...] = field(default=())

    def failures(self, thresholds: GateThresholds) -> list[str]:
        """Why the gate fails (empty when it passes)."""
        reasons = []
        if self.label_agreement < thresholds.min_agreement:
            reasons.append(f"label agreement {self.label_agreement * 100:.2f}% < {thresholds.min_agreement * 100:.1f}%")
        low = [
            f"{name} {iou * 100:.1f}%"
            for name, iou in self.per_class_iou.items()
            if name in self.gated_classes and iou is not None and iou < thresholds.min_class_iou
        ]
        if low:
            reasons.append(f"class IoU vs fp32 under {thresholds.min_class_iou * 100:.1f}%: {', '.join(low)}")
        return reasons

    def describe(self) -> str:
        lowest = min(
            ((n, v) for n, v in self.per_class_iou.items() if n in self.gated_classes and v is not None),
            key=lambda item: item[1],
            default=None,
        )
        worst_class = "" if lowest is None else f", lowest class IoU {lowest[0]} {lowest[1] * 100:.1f}%"
        return (
            f"label agreement {self.label_agreement * 100:.2f}% over {self.frames} held-out frames, "
            f"mIoU vs fp32 {self.miou_vs_fp32 * 100:.2f}%{worst_class}, "
            f"drivable agreement {self.drivable_agreement * 100:.2f}%"
        )

    def to_json(self, thresholds: GateThresholds, accepted_loss: bool = False) -> dict[str, Any]:
        failures = self.failures(thresholds)
        return {
            "passed": not failures,
            "accepted_accuracy_loss": bool(accepted_loss and failures),
            "failures": failures,
            "min_agreement": thresholds.min_agreement,
            "min_class_iou": thresholds.min_class_iou,
            "held_out_frames": self.frames,
            "label_agreement": round(self.label_agreement, 6),
            "miou_vs_fp32": round(self.miou_vs_fp32, 6),
            "drivable_agreement": round(self.drivable_agreement, 6),
            "per_class_iou_vs_fp32": {n: None if v is None else round(v, 6) for n, v in self.per_class_iou.items()},
            "worst_frames": [{"frame": name, "agreement": round(a, 6)} for name, a in self.worst_frames],
        }


def _session(model: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def fp32_labels(fp32: onnx.ModelProto, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The fp32 graph's labels for camera batches ([1, H, W, 3] uint8): the reference, computed once."""
    session = _session(fp32)
    return [session.run([LABELS_NAME], {INPUT_NAME: b})[0][0] for b in batches]


def check_accuracy(
    reduced: onnx.ModelProto,
    batches: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    class_names: Sequence[str],
    drivable_ids: Sequence[int],
    frame_names: Sequence[str] = (),
) -> AccuracyCheck:
    """Run `reduced` on the held-out camera batches and score its labels against the fp32 `reference`."""
    if not batches or len(batches) != len(reference):
        raise SegPerceptionError(f"the accuracy check needs held-out frames ({len(batches)} given)")
    k = len(class_names)
    session = _session(reduced)
    total = np.zeros((k, k), np.int64)
    per_frame: list[tuple[str, float]] = []
    names = list(frame_names) or [f"frame {i}" for i in range(len(batches))]
    for name, batch, ref in zip(names, batches, reference, strict=True):
        labels = session.run([LABELS_NAME], {INPUT_NAME: batch})[0][0]
        confusion = metrics.confusion_matrix(ref, labels, k)
        total += confusion
        per_frame.append((name, metrics.pixel_accuracy(confusion)))
    scores = metrics.scores(total, class_names, drivable_ids)
    share = (total.sum(axis=0) + total.sum(axis=1)) / max(1, 2 * int(total.sum()))
    ious = {n: (None if math.isnan(v) else float(v)) for n, v in zip(class_names, scores.per_class_iou, strict=True)}
    return AccuracyCheck(
        frames=len(batches),
        pixels=int(total.sum()),
        label_agreement=float(scores.pixel_accuracy),
        miou_vs_fp32=float(scores.miou),
        per_class_iou=ious,
        gated_classes=tuple(n for n, s in zip(class_names, share, strict=True) if s >= MIN_CLASS_SHARE),
        drivable_agreement=_drivable_agreement(total, drivable_ids),
        worst_frames=tuple(sorted(per_frame, key=lambda item: item[1])[:WORST_FRAMES]),
    )


def _drivable_agreement(confusion: np.ndarray, drivable_ids: Sequence[int]) -> float:
    """Pixels where fp32 and INT8 agree on drivable vs not drivable, from the class confusion matrix."""
    total = int(confusion.sum())
    if total == 0:
        return float("nan")
    mask = np.zeros(confusion.shape[0], bool)
    mask[list(drivable_ids)] = True
    both = int(confusion[np.ix_(mask, mask)].sum()) + int(confusion[np.ix_(~mask, ~mask)].sum())
    return both / total

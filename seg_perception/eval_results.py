"""What `eval` and `compare` report: the worst frames kept for the report, and the JSON-ready results."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_perception.core import metrics
from seg_perception.core.model_spec import ModelSpec


@dataclass
class FrameView:
    """What the report shows of one frame: input, a labelling, the reference it is scored against."""

    stem: str
    score: float
    caption: str
    image: np.ndarray
    prediction: np.ndarray
    reference: np.ndarray


class WorstFrames:
    """The N lowest-scoring frames; pixel arrays are kept only when `keep_pixels` (for the report)."""

    def __init__(self, count: int, keep_pixels: bool) -> None:
        self.count = count
        self.keep_pixels = keep_pixels
        self._heap: list[tuple[float, int, FrameView]] = []  # max-heap on score via negation
        self._seen = 0

    def offer(self, view: FrameView) -> None:
        if np.isnan(view.score):
            return
        if not self.keep_pixels:
            empty = np.zeros((0, 0), np.uint8)
            view = FrameView(view.stem, view.score, view.caption, empty, empty, empty)
        self._seen += 1
        heapq.heappush(self._heap, (-view.score, self._seen, view))
        if len(self._heap) > self.count:
            heapq.heappop(self._heap)

    def frames(self) -> list[FrameView]:
        """Worst first."""
        return [v for _, _, v in sorted(self._heap, key=lambda item: (-item[0], item[1]))]


def _num(value: float, digits: int = 6) -> float | None:
    """JSON-friendly: NaN (undefined score) becomes null."""
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


@dataclass
class EvalResult:
    """`eval`: a model's labels scored against ground truth."""

    spec: ModelSpec
    variant: str
    backend_detail: str
    space: metrics.LabelSpace
    scores: metrics.Scores
    frames: int
    fps: float
    worst: list[FrameView]
    settings: dict[str, Any]
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        s = self.scores
        return {
            "command": "eval",
            "model": self.spec.name,
            "backend": self.variant,
            "backend_detail": self.backend_detail,
            "frames": self.frames,
            "pixels": s.pixels,
            "miou": _num(s.miou),
            "pixel_accuracy": _num(s.pixel_accuracy),
            "per_class_iou": {n: _num(v) for n, v in zip(s.scored_names, s.scored_iou, strict=True)},
            "drivable_iou": _num(s.drivable.iou),
            "drivable_precision": _num(s.drivable.precision),
            "drivable_recall": _num(s.drivable.recall),
            "fps": _num(self.fps, 3),
            "scored_classes": list(s.scored_names),
            "ignored_classes": list(s.ignored_names),
            "class_names": list(s.class_names),
            "confusion_matrix": s.confusion.tolist(),
            "worst_frames": [{"stem": v.stem, "miou": _num(v.score), "caption": v.caption} for v in self.worst],
            "unmatched_images": self.unmatched,
            "settings": self.settings,
            "notes": self.notes,
        }


@dataclass
class CompareResult:
    """`compare`: variant B's labels scored against variant A's."""

    spec: ModelSpec
    a: str
    b: str
    a_detail: str
    b_detail: str
    scores: metrics.Scores  # truth = A's labels, prediction = B's
    frames: int
    fps_a: float
    fps_b: float
    worst: list[FrameView]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.scores.pixel_accuracy

    def to_json(self) -> dict[str, Any]:
        s = self.scores
        return {
            "command": "compare",
            "model": self.spec.name,
            "a": self.a,
            "b": self.b,
            "a_detail": self.a_detail,
            "b_detail": self.b_detail,
            "frames": self.frames,
            "pixels": s.pixels,
            "label_agreement": _num(self.agreement),
            "label_agreement_percent": _num(self.agreement * 100, 4),
            "miou_b_vs_a": _num(s.miou),
            "per_class_iou": {n: _num(v) for n, v in zip(s.class_names, s.per_class_iou, strict=True)},
            "drivable_iou": _num(s.drivable.iou),
            "fps": {"a": _num(self.fps_a, 3), "b": _num(self.fps_b, 3)},
            "class_names": list(s.class_names),
            "confusion_matrix": s.confusion.tolist(),
            "worst_frames": [{"stem": v.stem, "agreement": _num(v.score), "caption": v.caption} for v in self.worst],
            "settings": self.settings,
            "notes": self.notes,
        }

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
    """The N lowest-scoring frames; pixel arrays are kept only when `keep_pixels` (for the report).

    Frames are ranked by score, then by `order` (the frame's index in the data set, or the order of
    offers): so the frames kept do not depend on how a data set was split, and `merge` of the worst
    frames of disjoint parts keeps exactly what one pass over the whole would have kept.
    """

    def __init__(self, count: int, keep_pixels: bool) -> None:
        self.count = count
        self.keep_pixels = keep_pixels
        self._heap: list[tuple[float, int, FrameView]] = []  # max-heap on score via negation
        self._seen = 0

    def offer(self, view: FrameView, order: int | None = None) -> None:
        if np.isnan(view.score):
            return
        if not self.keep_pixels:
            empty = np.zeros((0, 0), np.uint8)
            view = FrameView(view.stem, view.score, view.caption, empty, empty, empty)
        self._seen += 1
        self._push((-view.score, self._seen if order is None else order, view))

    def merge(self, other: WorstFrames) -> None:
        """Add the frames another WorstFrames kept (ranked by the `order` they were offered with)."""
        for item in other._heap:
            self._push(item)

    def _push(self, item: tuple[float, int, FrameView]) -> None:
        heapq.heappush(self._heap, item)
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
    cluster: dict[str, Any] | None = None  # `eval --ray`: where and how it ran, and its wall-clock throughput
    health: dict[str, Any] | None = None  # core.health.frame_spans over the frames in order; None on Ray

    def to_json(self) -> dict[str, Any]:
        s = self.scores
        data = {
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
        if self.cluster is not None:
            data["ray"] = self.cluster
        data["health"] = self.health
        return data


@dataclass
class EvalTally:
    """What scoring some of `eval`'s frames adds up to. Tallies of disjoint sets of frames `merge` into
    exactly the tally of their union (integer confusion counts, worst frames ranked by frame index), which
    is what lets a cluster score parts of a data set and the driver report the figures of one pass."""

    confusion: np.ndarray  # [K, K] int64, rows ground truth
    worst: WorstFrames
    frames: int = 0
    first_index: int | None = None  # the lowest frame index scored or attempted here
    inference_s: float = 0.0  # fused-graph calls only, as VariantRunner times them
    calls: int = 0
    backend_detail: str = ""
    graph_notes: list[str] = field(default_factory=list)
    failure: tuple[int, str] | None = None  # (frame index, message) of the first frame that could not be scored
    health: dict[int, frozenset[str]] | None = None  # frame index -> health reasons flagged (in-process runs)

    @classmethod
    def empty(cls, num_classes: int, worst_count: int, keep_pixels: bool) -> EvalTally:
        return cls(np.zeros((num_classes, num_classes), np.int64), WorstFrames(worst_count, keep_pixels))

    def add_frame(self, index: int, view: FrameView, confusion: np.ndarray, inference_s: float) -> None:
        """One scored frame: its confusion matrix, its view (score and caption) and its fused-graph time."""
        self.confusion += confusion
        self.worst.offer(view, order=index)
        self.frames += 1
        self.calls += 1
        self.inference_s += inference_s
        self.first_index = index if self.first_index is None else min(self.first_index, index)

    def fail(self, index: int, message: str) -> None:
        """Frame `index` could not be scored; of several such frames, the lowest index is the one reported."""
        if self.failure is None or index < self.failure[0]:
            self.failure = (index, message)
        self.first_index = index if self.first_index is None else min(self.first_index, index)

    def merge(self, other: EvalTally) -> None:
        """Add another tally of other frames (merge in frame order so details and notes come from the first)."""
        self.confusion += other.confusion
        self.worst.merge(other.worst)
        self.frames += other.frames
        self.calls += other.calls
        self.inference_s += other.inference_s
        self.backend_detail = self.backend_detail or other.backend_detail
        self.graph_notes += [n for n in other.graph_notes if n not in self.graph_notes]
        if other.failure is not None:
            self.fail(*other.failure)
        if other.first_index is not None:
            self.first_index = (
                other.first_index if self.first_index is None else min(self.first_index, other.first_index)
            )

    @property
    def fps(self) -> float:
        """Fused-graph calls per second of fused-graph time (summed over workers: per-worker throughput)."""
        return self.calls / self.inference_s if self.inference_s > 0 else float("nan")


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

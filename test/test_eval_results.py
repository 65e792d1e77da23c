"""What `eval` and `compare` write, exactly: the worst frames kept and their order, the tally arithmetic, and
every key and rounding of the JSON results, on a confusion matrix worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from seg_perception.core import metrics
from seg_perception.core.model_spec import ModelSpec
from seg_perception.evaluation.results import CompareResult, EvalResult, EvalTally, FrameView, WorstFrames

SPEC = cast(ModelSpec, SimpleNamespace(name="tiny"))
NAMES = ["road", "car", "sky"]
# rows truth, columns prediction: road 6 (4 right), car 3 (2 right), sky 1 (never predicted), void none.
CONFUSION = np.array([[4, 2, 0], [1, 2, 0], [1, 0, 0]], np.int64)


def _view(stem: str, score: float, fill: int = 9) -> FrameView:
    pixels = np.full((2, 3), fill, np.uint8)
    return FrameView(stem, score, f"caption {stem}", pixels, pixels + 1, pixels + 2)


def test_worst_frames_keeps_the_lowest_scores_worst_first_without_nan() -> None:
    worst = WorstFrames(3, keep_pixels=True)
    for stem, score in (("a", 0.9), ("b", 0.2), ("c", float("nan")), ("d", 0.5), ("e", 0.7), ("f", 0.1)):
        worst.offer(_view(stem, score))
    kept = worst.frames()
    assert [(v.stem, v.score) for v in kept] == [("f", 0.1), ("b", 0.2), ("d", 0.5)]
    assert kept[0].caption == "caption f"
    assert kept[0].image.tolist() == [[9] * 3] * 2 and kept[0].reference.tolist() == [[11] * 3] * 2


def test_of_equal_scores_the_later_offers_stay_and_are_listed_in_order() -> None:
    worst = WorstFrames(2, keep_pixels=False)
    for stem in "abcd":
        worst.offer(_view(stem, 0.5))
    assert [v.stem for v in worst.frames()] == ["c", "d"]
    ordered = WorstFrames(2, keep_pixels=False)
    for stem, order in (("x", 7), ("y", 3), ("z", 5)):
        ordered.offer(_view(stem, 0.5), order=order)
    assert [v.stem for v in ordered.frames()] == ["z", "x"]  # orders 5 and 7 stay, listed by order


def test_without_pixels_only_stem_score_and_caption_are_kept() -> None:
    worst = WorstFrames(1, keep_pixels=False)
    worst.offer(_view("a", 0.3))
    (view,) = worst.frames()
    assert (view.stem, view.score, view.caption) == ("a", 0.3, "caption a")
    for array in (view.image, view.prediction, view.reference):
        assert array.shape == (0, 0) and array.dtype == np.uint8


def test_merging_worst_frames_keeps_the_count() -> None:
    a, b = WorstFrames(2, True), WorstFrames(2, True)
    a.offer(_view("a1", 0.4), order=0)
    a.offer(_view("a2", 0.8), order=1)
    b.offer(_view("b1", 0.3), order=2)
    b.offer(_view("b2", 0.6), order=3)
    a.merge(b)
    assert [v.stem for v in a.frames()] == ["b1", "a1"]


def test_tally_adds_frames_failures_and_other_tallies() -> None:
    tally = EvalTally.empty(3, 2, keep_pixels=False)
    assert tally.confusion.dtype == np.int64 and tally.confusion.shape == (3, 3) and not tally.confusion.any()
    assert (tally.frames, tally.calls, tally.first_index, tally.failure, tally.health) == (0, 0, None, None, None)
    assert math.isnan(tally.fps)
    tally.add_frame(5, _view("5", 0.6), CONFUSION, inference_s=0.25)
    tally.add_frame(3, _view("3", 0.4), CONFUSION, inference_s=0.5)
    assert tally.confusion.tolist() == (2 * CONFUSION).tolist()
    assert (tally.frames, tally.calls, tally.first_index, tally.inference_s) == (2, 2, 3, 0.75)
    assert tally.fps == pytest.approx(2 / 0.75)
    tally.fail(9, "frame 9 is not a readable image")
    tally.fail(7, "frame 7 is not a readable image")
    tally.fail(8, "frame 8 is not a readable image")
    assert tally.failure == (7, "frame 7 is not a readable image") and tally.first_index == 3

    other = EvalTally.empty(3, 2, keep_pixels=False)
    other.backend_detail, other.graph_notes = "ORT CPU", ["note b", "note a"]
    other.add_frame(1, _view("1", 0.1), CONFUSION, inference_s=0.25)
    other.fail(6, "frame 6 failed")
    tally.graph_notes = ["note a"]
    tally.merge(other)
    assert tally.confusion.tolist() == (3 * CONFUSION).tolist()
    assert (tally.frames, tally.calls, tally.inference_s, tally.first_index) == (3, 3, 1.0, 1)
    assert tally.backend_detail == "ORT CPU" and tally.graph_notes == ["note a", "note b"]
    assert tally.failure == (6, "frame 6 failed")
    assert [v.stem for v in tally.worst.frames()] == ["1", "3"]
    again = EvalTally.empty(3, 2, keep_pixels=False)
    again.backend_detail = "TensorRT"
    again.merge(tally)
    assert again.backend_detail == "TensorRT" and again.first_index == 1 and again.failure == (6, "frame 6 failed")


def test_a_tally_of_failures_only_knows_its_first_index() -> None:
    tally = EvalTally.empty(3, 2, keep_pixels=False)
    tally.fail(4, "bad")
    assert tally.first_index == 4
    merged = EvalTally.empty(3, 2, keep_pixels=False)
    merged.merge(EvalTally.empty(3, 2, keep_pixels=False))
    assert merged.first_index is None
    merged.merge(tally)
    assert (merged.first_index, merged.failure) == (4, (4, "bad"))


def _eval_result(**overrides: Any) -> EvalResult:
    fields: dict[str, Any] = {
        "spec": SPEC,
        "variant": "fp32",
        "backend_detail": "onnxruntime CPU",
        "space": None,
        "scores": metrics.scores(CONFUSION, NAMES, [0], scored_ids=[0, 1]),
        "frames": 4,
        "fps": 123.456789,
        "worst": [_view("w1", 1 / 3), _view("w2", float("nan"))],
        "settings": {"resize": "bilinear"},
        "unmatched": ["extra.png"],
        "notes": ["a note"],
    }
    fields.update(overrides)
    return EvalResult(**fields)


def test_eval_json_every_key() -> None:
    road, car = 4 / (6 + 6 - 4), 2 / (3 + 4 - 2)  # in both / (in truth + predicted - in both)
    data = _eval_result().to_json()
    assert data == {
        "command": "eval",
        "model": "tiny",
        "backend": "fp32",
        "backend_detail": "onnxruntime CPU",
        "frames": 4,
        "pixels": 10,
        "miou": round((road + car) / 2, 6),
        "pixel_accuracy": 0.6,
        "per_class_iou": {"road": round(road, 6), "car": round(car, 6)},
        "drivable_iou": round(road, 6),
        "drivable_precision": round(4 / 6, 6),
        "drivable_recall": round(4 / 6, 6),
        "fps": 123.457,
        "scored_classes": ["road", "car"],
        "ignored_classes": ["sky"],
        "class_names": NAMES,
        "confusion_matrix": CONFUSION.tolist(),
        "worst_frames": [
            {"stem": "w1", "miou": 0.333333, "caption": "caption w1"},
            {"stem": "w2", "miou": None, "caption": "caption w2"},
        ],
        "unmatched_images": ["extra.png"],
        "settings": {"resize": "bilinear"},
        "notes": ["a note"],
        "health": None,
    }
    assert "ray" not in data
    on_ray = _eval_result(cluster={"workers": 2}, health={"spans": []}, fps=float("inf")).to_json()
    assert on_ray["ray"] == {"workers": 2} and on_ray["health"] == {"spans": []} and on_ray["fps"] is None


def test_undefined_scores_are_null_in_json() -> None:
    empty = np.zeros((3, 3), np.int64)
    data = _eval_result(scores=metrics.scores(empty, NAMES, []), fps=float("nan")).to_json()
    assert data["pixels"] == 0
    assert [data[k] for k in ("miou", "pixel_accuracy", "drivable_iou", "drivable_precision", "fps")] == [None] * 5
    assert data["per_class_iou"] == {"road": None, "car": None, "sky": None}


def test_compare_json_every_key() -> None:
    result = CompareResult(
        spec=SPEC,
        a="fp32",
        b="int8",
        a_detail="ORT fp32",
        b_detail="ORT int8",
        scores=metrics.scores(CONFUSION, NAMES, [0, 1]),
        frames=2,
        fps_a=50.12345,
        fps_b=float("nan"),
        worst=[_view("x", 0.87654321)],
        settings={"k": 1},
        notes=["n"],
    )
    assert result.agreement == 0.6
    road, car = 4 / 8, 2 / 5
    assert result.to_json() == {
        "command": "compare",
        "model": "tiny",
        "a": "fp32",
        "b": "int8",
        "a_detail": "ORT fp32",
        "b_detail": "ORT int8",
        "frames": 2,
        "pixels": 10,
        "label_agreement": 0.6,
        "label_agreement_percent": 60.0,
        "miou_b_vs_a": round((road + car + 0.0) / 3, 6),
        "per_class_iou": {"road": round(road, 6), "car": 0.4, "sky": 0.0},
        "drivable_iou": 0.9,  # road + car: 9 in both, 9 in truth, 10 predicted
        "fps": {"a": 50.123, "b": None},
        "class_names": NAMES,
        "confusion_matrix": CONFUSION.tolist(),
        "worst_frames": [{"stem": "x", "agreement": 0.876543, "caption": "caption x"}],
        "settings": {"k": 1},
        "notes": ["n"],
    }


def test_agreement_percent_keeps_four_decimals() -> None:
    confusion = np.array([[2, 1], [0, 0]], np.int64)  # agreement 2/3
    result = CompareResult(SPEC, "a", "b", "", "", metrics.scores(confusion, ["p", "q"], [0]), 1, 1.0, 1.0, [], {})
    data = result.to_json()
    assert (data["label_agreement"], data["label_agreement_percent"]) == (0.666667, 66.6667)


def test_tally_ranks_equal_scores_by_frame_index_not_by_arrival() -> None:
    tally = EvalTally.empty(3, 2, keep_pixels=True)
    for index in (9, 2, 5):  # frames arrive out of order (a worker's batch)
        tally.add_frame(index, _view(str(index), 0.5, fill=index), CONFUSION, inference_s=0.1)
    kept = tally.worst.frames()
    assert [v.stem for v in kept] == ["5", "9"]  # of equal scores the later frames stay, in frame order
    assert kept[0].image.tolist() == [[5] * 3] * 2  # keep_pixels: the report's pixels are kept
    assert tally.first_index == 2


def test_first_index_is_the_lowest_whatever_the_order() -> None:
    tally = EvalTally.empty(3, 2, keep_pixels=False)
    tally.add_frame(3, _view("3", 0.5), CONFUSION, 0.1)
    tally.add_frame(8, _view("8", 0.5), CONFUSION, 0.1)
    assert tally.first_index == 3
    later = EvalTally.empty(3, 2, keep_pixels=False)
    later.add_frame(6, _view("6", 0.5), CONFUSION, 0.1)
    tally.merge(later)
    assert tally.first_index == 3
    fresh = EvalTally.empty(3, 2, keep_pixels=False)
    fresh.merge(later)  # an empty tally takes the other's first index (no failure involved)
    assert fresh.first_index == 6


def test_of_two_failures_of_one_frame_the_first_message_stays() -> None:
    tally = EvalTally.empty(3, 2, keep_pixels=False)
    tally.fail(7, "first reason")
    tally.fail(7, "second reason")
    assert tally.failure == (7, "first reason")


def test_compare_json_rounds_both_rates() -> None:
    result = CompareResult(SPEC, "a", "b", "", "", metrics.scores(CONFUSION, NAMES, [0]), 1, 10.12345, 12.34567, [], {})
    assert result.to_json()["fps"] == {"a": 10.123, "b": 12.346}

"""Accuracy metrics on hand-made arrays: exact confusion matrices and IoUs, the ignore index, Cityscapes and
BDD label formats, and ground truth of the wrong size refused rather than resized."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError

# 3 classes; rows of the expected matrix are truth, columns prediction.
TRUTH = np.array([[0, 0, 1, 1], [2, 2, 1, 255]], np.uint8)
PRED = np.array([[0, 1, 1, 1], [2, 0, 0, 2]], np.uint8)
EXPECTED = np.array(
    [
        [1, 1, 0],  # truth 0: once right, once called 1
        [1, 2, 0],  # truth 1: twice right, once called 0
        [1, 0, 1],  # truth 2: once right, once called 0
    ]
)  # the 255 pixel (predicted 2) is not counted


def test_confusion_matrix_is_exact_and_skips_the_ignore_id() -> None:
    confusion = metrics.confusion_matrix(TRUTH, PRED, 3)
    np.testing.assert_array_equal(confusion, EXPECTED)
    assert confusion.dtype == np.int64 and confusion.sum() == 7


def test_ious_accuracy_and_mean_over_present_classes() -> None:
    confusion = metrics.confusion_matrix(TRUTH, PRED, 3)
    # IoU = tp / (row + column - tp): class 0: 1/(2+3-1), class 1: 2/(3+3-2), class 2: 1/(2+1-1)
    np.testing.assert_allclose(metrics.per_class_iou(confusion), [1 / 4, 2 / 4, 1 / 2])
    assert metrics.mean_iou(confusion) == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert metrics.pixel_accuracy(confusion) == pytest.approx(4 / 7)

    # A class in neither truth nor prediction is NaN and left out of the mean (not counted as 0).
    four = metrics.confusion_matrix(TRUTH, PRED, 4)
    iou = metrics.per_class_iou(four)
    assert np.isnan(iou[3])
    assert metrics.mean_iou(four) == pytest.approx(metrics.mean_iou(confusion))
    # A class only predicted (never in truth) counts, with IoU 0.
    only_predicted = metrics.confusion_matrix(np.array([[0, 0]], np.uint8), np.array([[0, 1]], np.uint8), 2)
    np.testing.assert_allclose(metrics.per_class_iou(only_predicted), [0.5, 0.0])
    assert metrics.mean_iou(only_predicted) == pytest.approx(0.25)


def test_empty_confusion_is_undefined_not_zero() -> None:
    everything_ignored = np.full((2, 2), 255, np.uint8)
    confusion = metrics.confusion_matrix(everything_ignored, np.zeros((2, 2), np.uint8), 3)
    assert confusion.sum() == 0
    assert np.isnan(metrics.mean_iou(confusion)) and np.isnan(metrics.pixel_accuracy(confusion))


def test_per_frame_matrices_add_up_to_the_whole_set() -> None:
    rng = np.random.default_rng(0)
    truths = [rng.integers(0, 5, (30, 40), dtype=np.uint8) for _ in range(3)]
    preds = [rng.integers(0, 5, (30, 40), dtype=np.uint8) for _ in range(3)]
    summed = sum(metrics.confusion_matrix(t, p, 5) for t, p in zip(truths, preds, strict=True))
    whole = metrics.confusion_matrix(np.concatenate(truths), np.concatenate(preds), 5)
    np.testing.assert_array_equal(summed, whole)
    # Against a plain per-class count.
    t, p = np.concatenate(truths), np.concatenate(preds)
    reference = np.array([[np.sum((t == i) & (p == j)) for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(whole, reference)


def test_drivable_iou_precision_recall_over_a_set_of_classes() -> None:
    confusion = metrics.confusion_matrix(TRUTH, PRED, 3)
    # Drivable = {0, 1}: truth positives 5, predicted positives 6 (the 2 called 0), both 5.
    both = EXPECTED[:2, :2].sum()
    truth_pos, pred_pos = EXPECTED[:2, :].sum(), EXPECTED[:, :2].sum()
    assert (both, truth_pos, pred_pos) == (5, 5, 6)
    scores = metrics.binary_scores(confusion, [0, 1])
    assert scores.iou == pytest.approx(5 / 6)
    assert scores.precision == pytest.approx(5 / 6)
    assert scores.recall == pytest.approx(1.0)
    full = metrics.scores(confusion, ["road", "lane", "car"], [0, 1])
    assert full.drivable == scores and full.pixels == 7 and full.miou == pytest.approx(metrics.mean_iou(confusion))


def test_out_of_range_ids_are_reported_not_counted() -> None:
    with pytest.raises(SegPerceptionError, match=r"ground truth holds ids \[7\]"):
        metrics.confusion_matrix(np.array([[0, 7]], np.uint8), np.array([[0, 0]], np.uint8), 3)
    with pytest.raises(SegPerceptionError, match=r"predictions hold ids \[9\]"):
        metrics.confusion_matrix(np.array([[0, 1]], np.uint8), np.array([[0, 9]], np.uint8), 3)


def test_ground_truth_of_another_size_is_an_error() -> None:
    with pytest.raises(SegPerceptionError, match=r"ground truth is 4x2 but the prediction is 2x4"):
        metrics.confusion_matrix(TRUTH, TRUTH.T.copy(), 3)
    with pytest.raises(SegPerceptionError, match="must have the image's resolution"):
        metrics.check_same_size(np.zeros((720, 1280), np.uint8), np.zeros((360, 640, 3), np.uint8))


def test_index_format_with_a_custom_ignore_index() -> None:
    space = metrics.label_space("index", ["a", "b", "c"], [0], ignore_index=0)
    truth = space.truth(np.array([[0, 1, 2, 255]], np.uint8))
    np.testing.assert_array_equal(truth, [[255, 1, 2, 255]])
    assert space.ignored_ids == (0,) and space.scored_ids == (1, 2)
    # An ignore index beyond the classes ignores a value, no class.
    assert metrics.label_space("index", ["a", "b", "c"], [0], ignore_index=7).ignored_ids == ()
    # The spec's ignore_in_eval classes: the same, named by class id.
    flagged = metrics.label_space("index", ["a", "b", "void"], [0], ignored_classes=[2])
    np.testing.assert_array_equal(flagged.truth(np.array([[0, 1, 2, 255]], np.uint8)), [[0, 1, 255, 255]])
    assert flagged.ignored_ids == (2,)
    with pytest.raises(SegPerceptionError, match="no class is left to score"):
        metrics.label_space("index", ["a"], [0], ignore_index=0)
    with pytest.raises(SegPerceptionError, match=r"ignored classes \[3\] are not ids of the 3 classes"):
        metrics.label_space("index", ["a", "b", "c"], [0], ignored_classes=[3])


def test_an_ignored_class_is_in_no_mean_and_predicting_it_is_a_miss() -> None:
    """Class 2 (void) ignored: its ground truth is not counted, its predictions on scored pixels are misses."""
    space = metrics.label_space("index", ["a", "b", "void"], [0], ignored_classes=[2])
    truth = space.truth(np.array([[0, 0, 1, 1, 2, 2]], np.uint8))
    pred = np.array([[0, 2, 1, 0, 2, 1]], np.uint8)  # a->void is a miss; b on void ground truth is nothing
    confusion = metrics.confusion_matrix(truth, pred, 3)
    np.testing.assert_array_equal(confusion, [[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    s = metrics.scores(confusion, space.class_names, space.drivable_ids, space.scored_ids)
    # a: tp 1, fn 1 (called void), fp 1 (the b pixel called a) -> 1/3; b: tp 1, fn 1 -> 1/2
    np.testing.assert_allclose(s.scored_iou, [1 / 3, 1 / 2])
    assert s.scored_names == ("a", "b") and s.ignored_names == ("void",)
    assert s.miou == pytest.approx((1 / 3 + 1 / 2) / 2)  # void (IoU 0) is not in the mean
    assert s.pixel_accuracy == pytest.approx(2 / 4) and s.pixels == 4
    with pytest.raises(SegPerceptionError, match=r"values \[3\] that are not index labels for 3 classes"):
        space.truth(np.array([[1, 3]], np.uint8))


def test_cityscapes_label_ids_to_train_ids() -> None:
    ids = np.array([[7, 8, 11, 26, 33, 24, 23], [0, 1, 6, 9, 10, 29, 30]], np.uint8)
    np.testing.assert_array_equal(
        metrics.cityscapes_train_ids(ids),
        [[0, 1, 2, 13, 18, 11, 10], [255, 255, 255, 255, 255, 255, 255]],  # parking, rail, caravan... are void
    )
    table = metrics.CITYSCAPES_ID_TO_TRAIN_ID
    assert sorted(table.values()) == list(range(19)) and len(metrics.CITYSCAPES_TRAIN_NAMES) == 19
    assert metrics.CITYSCAPES_TRAIN_NAMES[table[26]] == "car"
    assert metrics.CITYSCAPES_TRAIN_NAMES[table[19]] == "traffic light"


def test_cityscapes_maps_to_spec_classes_by_name_or_train_order() -> None:
    raw = np.array([[7, 26, 23, 24, 0]], np.uint8)  # road, car, sky, person, unlabeled
    # Names in another order and spelling; the 15 train classes the spec lacks are appended in train-id
    # order (sidewalk 4, building 5, wall 6, fence 7, pole 8, traffic sign 9, vegetation 10, terrain 11,
    # person 12, ...) and scored: exactly the 19 train classes, as cityscapesScripts scores them.
    space = metrics.label_space("cityscapes-ids", ["Sky", "car", "ROAD", "traffic_light"], [2])
    np.testing.assert_array_equal(space.truth(raw), [[2, 1, 0, 12, 255]])
    assert space.num_classes == 19 and space.class_names[12] == "person" and space.ignored_ids == ()
    assert "person" in space.note
    # A spec class that is no train class (a void head) is in the space but never scored.
    with_void = metrics.label_space("cityscapes-ids", [*metrics.CITYSCAPES_TRAIN_NAMES, "void"], [0])
    assert with_void.class_names[-1] == "void" and with_void.ignored_ids == (19,)
    assert with_void.scored_ids == tuple(range(19))
    assert "not scored: void" in with_void.note
    # --ignore-index is a raw value: under cityscapes-ids, 19 is traffic light's labelId, and the note says so.
    no_lights = metrics.label_space("cityscapes-ids", metrics.CITYSCAPES_TRAIN_NAMES, [0], ignore_index=19)
    assert no_lights.ignored_ids == (6,) and "labelId of traffic light, which is not scored" in no_lights.note
    # 19 classes with other names: train-id order.
    generic = metrics.label_space("cityscapes-ids", [f"c{i}" for i in range(19)], [0])
    np.testing.assert_array_equal(generic.truth(raw), [[0, 13, 10, 11, 255]])
    with pytest.raises(SegPerceptionError, match="the 18 train classes the spec lacks exceed 254 classes"):
        metrics.label_space("cityscapes-ids", ["road", *(f"c{i}" for i in range(240))], [0])
    with pytest.raises(SegPerceptionError, match="cityscapes-ids needs a spec with the 19 Cityscapes"):
        metrics.label_space("cityscapes-ids", ["a", "b"], [0])
    with pytest.raises(SegPerceptionError, match=r"values \[40\]"):
        space.truth(np.array([[7, 40]], np.uint8))


def test_bdd_drivable_maps_to_background_and_drivable() -> None:
    classes = ["road", "lane_marking", "sidewalk", "car"]
    space = metrics.label_space("bdd-drivable", classes, [0, 1])
    assert space.class_names == ("background", "drivable") and space.drivable_ids == (1,)
    # 0 direct and 1 alternative -> drivable; 2 background -> background; 255 void.
    np.testing.assert_array_equal(space.truth(np.array([[0, 1, 2, 255]], np.uint8)), [[1, 1, 0, 255]])
    # Predictions collapse through the spec's drivable flags.
    np.testing.assert_array_equal(space.prediction(np.array([[0, 1, 2, 3]], np.uint8)), [[1, 1, 0, 0]])
    with pytest.raises(SegPerceptionError, match=r"values \[3\]"):
        space.truth(np.array([[0, 3]], np.uint8))
    with pytest.raises(SegPerceptionError, match="at least one class marked drivable"):
        metrics.label_space("bdd-drivable", classes, [])


def test_label_images_from_readers() -> None:
    grey = np.array([[1, 2]], np.uint8)
    three = np.repeat(grey[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(metrics.as_label_image(three), grey)
    np.testing.assert_array_equal(metrics.as_label_image(grey.astype(np.uint16)), grey)
    colour = three.copy()
    colour[0, 0, 2] = 9
    with pytest.raises(SegPerceptionError, match="colour image"):
        metrics.as_label_image(colour)
    with pytest.raises(SegPerceptionError, match=r"do not fit 0\.\.255"):
        metrics.as_label_image(np.array([[1, 300]], np.uint16))
    with pytest.raises(SegPerceptionError, match="not one of index, cityscapes-ids, bdd-drivable"):
        metrics.label_space("voc", ["a"], [0])

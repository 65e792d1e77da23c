"""Accuracy metrics at their edges: the exact limits (255 classes, ignore index 0..255, ids equal to the class
count), the exact notes and error lines a user reads, uint8 label images out of every format, and scores that
are undefined (NaN) without numpy warnings."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError

TRAIN = metrics.CITYSCAPES_TRAIN_NAMES


def _refused(message: str) -> pytest.RaisesExc[SegPerceptionError]:
    """The whole error line, exactly."""
    return pytest.raises(SegPerceptionError, match=f"^{re.escape(message)}$")


def test_a_label_space_holds_1_to_254_classes() -> None:
    assert metrics.label_space("index", [f"c{i}" for i in range(254)], [0]).num_classes == 254
    with _refused("a label space needs 1..254 classes, got 255"):
        metrics.label_space("index", [f"c{i}" for i in range(255)], [0])
    with _refused("a label space needs 1..254 classes, got 0"):
        metrics.label_space("index", [], [])


def test_the_ignore_index_is_any_raw_value_0_to_255() -> None:
    # 255 is void already: naming it changes nothing; 0 is the first class.
    assert metrics.label_space("index", ["a", "b"], [0], ignore_index=255).ignored_ids == ()
    assert metrics.label_space("index", ["a", "b"], [0], ignore_index=0).scored_ids == (1,)
    with _refused("ignore index 256 is outside 0..255"):
        metrics.label_space("index", ["a", "b"], [0], ignore_index=256)
    with _refused("ignore index -1 is outside 0..255"):
        metrics.label_space("index", ["a", "b"], [0], ignore_index=-1)


def test_the_first_class_can_be_ignored_in_eval() -> None:
    space = metrics.label_space("index", ["void", "a", "b"], [1], ignored_classes=[0])
    assert space.ignored_ids == (0,) and space.scored_ids == (1, 2)
    np.testing.assert_array_equal(space.truth(np.array([[0, 1, 2]], np.uint8)), [[255, 1, 2]])
    with _refused("ignored classes [-1] are not ids of the 3 classes"):
        metrics.label_space("index", ["void", "a", "b"], [1], ignored_classes=[-1])


def test_no_class_left_to_score_names_the_format_and_ignore_index() -> None:
    with _refused(
        "no class is left to score: index ground truth with ignore index 0 "
        "and the spec's ignore_in_eval classes reaches none of them"
    ):
        metrics.label_space("index", ["a"], [0], ignore_index=0)


def test_every_format_gives_uint8_label_images() -> None:
    raw = np.array([[0, 1, 2, 255]], np.uint8)
    index = metrics.label_space("index", ["a", "b", "c"], [0])
    assert index.note == ""
    for got in (index.truth(raw), index.prediction(raw)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, raw)
    bdd = metrics.label_space("bdd-drivable", ["road", "car"], [0])
    assert bdd.truth(raw).dtype == np.uint8 and bdd.prediction(raw).dtype == np.uint8
    city = metrics.label_space("cityscapes-ids", TRAIN, [0])
    assert city.truth(np.array([[7, 26]], np.uint8)).dtype == np.uint8
    assert metrics.cityscapes_train_ids(np.array([[7, 26, 0]], np.uint8)).dtype == np.uint8
    np.testing.assert_array_equal(metrics.cityscapes_train_ids(np.array([[7, 26, 0]], np.uint8)), [[0, 13, 255]])


def test_bdd_predictions_beyond_the_spec_stay_void_and_are_reported() -> None:
    space = metrics.label_space("bdd-drivable", ["road", "lane_marking", "sidewalk", "car"], [0, 1])
    assert space.note == (
        "BDD drivable maps: direct and alternative -> drivable, background -> background; "
        "predictions collapsed by the spec's drivable classes (road, lane_marking)"
    )
    collapsed = space.prediction(np.array([[0, 3, 4, 200, 254, 255]], np.uint8))
    np.testing.assert_array_equal(collapsed, [[1, 0, 255, 255, 255, 255]])
    with _refused("predictions hold ids [255] outside the 2 classes of the model spec"):
        metrics.confusion_matrix(np.array([[0, 1]], np.uint8), collapsed[:, 2:4], 2)
    with _refused("bdd-drivable needs a model spec with at least one class marked drivable: true"):
        metrics.label_space("bdd-drivable", ["road"], [])


def test_cityscapes_notes_say_what_was_matched_appended_and_left_out() -> None:
    space = metrics.label_space("cityscapes-ids", ["Sky", "car", "ROAD", "void"], [2], ignore_index=26)
    lacking = [n for n in TRAIN if n not in ("sky", "car", "road")]
    assert space.note == (
        "Cityscapes train classes matched to the spec by name"
        f"; not in the spec, scored all the same (never predicted): {', '.join(lacking)}"
        "; spec classes that are no Cityscapes train class, not scored: void"
        "; ignore index 26 is the Cityscapes labelId of car, which is not scored"
    )
    assert space.class_names == ("Sky", "car", "ROAD", "void", *lacking)
    assert space.ignored_ids == (1, 3)  # car (its labelId ignored) and void (no train class)
    two_heads = metrics.label_space("cityscapes-ids", [*TRAIN, "void", "ego"], [0])
    assert two_heads.note.endswith("; spec classes that are no Cityscapes train class, not scored: void, ego")
    all_named = metrics.label_space("cityscapes-ids", TRAIN, [0])
    assert all_named.note == "Cityscapes train classes matched to the spec by name"
    generic = metrics.label_space("cityscapes-ids", [f"c{i}" for i in range(19)], [0])
    assert generic.note == "no Cityscapes class names in the spec: its 19 classes are taken to be in train-id order"
    with _refused(
        "cityscapes-ids needs a spec with the 19 Cityscapes train classes (by name, or 19 classes in "
        "train-id order); this spec has 2 classes: a, b; "
        "use --label-format index for ground truth already in the spec's class ids"
    ):
        metrics.label_space("cityscapes-ids", ["a", "b"], [0])


def test_cityscapes_names_match_without_spaces_or_case() -> None:
    space = metrics.label_space("cityscapes-ids", [*TRAIN[:6], "TrafficLight", "traffic-sign", *TRAIN[8:]], [0])
    assert space.num_classes == 19 and space.ignored_ids == ()
    np.testing.assert_array_equal(space.truth(np.array([[19, 20]], np.uint8)), [[6, 7]])


def test_cityscapes_space_of_exactly_255_classes_is_refused() -> None:
    # "road" plus 236 others, and the 18 train classes the spec lacks appended: 255 classes, one too many.
    ok = metrics.label_space("cityscapes-ids", ["road", *(f"c{i}" for i in range(235))], [0])
    assert ok.num_classes == 254
    with _refused("cityscapes-ids: 237 spec classes and the 18 train classes the spec lacks exceed 254 classes"):
        metrics.label_space("cityscapes-ids", ["road", *(f"c{i}" for i in range(236))], [0])


def test_cityscapes_ignore_in_eval_classes_are_not_scored() -> None:
    space = metrics.label_space("cityscapes-ids", TRAIN, [0], ignored_classes=[13])  # car
    assert space.ignored_ids == (13,)
    np.testing.assert_array_equal(space.truth(np.array([[7, 26, 24]], np.uint8)), [[0, 255, 11]])


def test_cityscapes_accepts_label_ids_0_to_33_only() -> None:
    space = metrics.label_space("cityscapes-ids", TRAIN, [0])
    np.testing.assert_array_equal(space.truth(np.array([[33, 0]], np.uint8)), [[18, 255]])
    with _refused(
        "ground truth holds values [34] that are not cityscapes-ids labels for 19 classes; "
        "check --label-format and --ignore-index"
    ):
        space.truth(np.array([[33, 34]], np.uint8))


def test_unexpected_values_and_ids_are_listed_up_to_eight() -> None:
    space = metrics.label_space("index", ["a", "b"], [0])
    with _refused(
        "ground truth holds values [2, 3, 4, 5, 6, 7, 8, 9] that are not index labels for 2 classes; "
        "check --label-format and --ignore-index"
    ):
        space.truth(np.arange(12, dtype=np.uint8).reshape(1, 12))
    ids = np.arange(12, dtype=np.uint8).reshape(1, 12)
    zeros = np.zeros_like(ids)
    with _refused(
        "ground truth holds ids [2, 3, 4, 5, 6, 7, 8, 9] outside the 2 evaluated classes; "
        "check --label-format and --ignore-index"
    ):
        metrics.confusion_matrix(ids, zeros, 2)
    with _refused("predictions hold ids [2, 3, 4, 5, 6, 7, 8, 9] outside the 2 classes of the model spec"):
        metrics.confusion_matrix(zeros, ids, 2)


def test_an_id_equal_to_the_class_count_is_out_of_range() -> None:
    ok = np.array([[0, 1, 2]], np.uint8)
    three = np.array([[0, 1, 3]], np.uint8)
    with _refused(
        "ground truth holds ids [3] outside the 3 evaluated classes; check --label-format and --ignore-index"
    ):
        metrics.confusion_matrix(three, ok, 3)
    with _refused("predictions hold ids [3] outside the 3 classes of the model spec"):
        metrics.confusion_matrix(ok, three, 3)
    np.testing.assert_array_equal(metrics.confusion_matrix(ok, ok, 3), np.eye(3, dtype=np.int64))


def test_label_images_of_more_than_two_dimensions_are_refused() -> None:
    flat = np.zeros((2, 3), np.uint8)
    deep = np.zeros((2, 3, 3), np.uint8)
    with _refused("label images must be 2-D, got (2, 3, 3) and (2, 3)"):
        metrics.confusion_matrix(deep, flat, 3)
    with _refused("label images must be 2-D, got (2, 3) and (2, 3, 3)"):
        metrics.confusion_matrix(flat, deep, 3)


def test_label_images_from_readers_exactly() -> None:
    grey = np.array([[0, 7, 255]], np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    got = metrics.as_label_image(rgba)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, grey)
    wide = metrics.as_label_image(np.array([[0, 7, 255]], np.uint16))
    assert wide.dtype == np.uint8
    np.testing.assert_array_equal(wide, grey)
    np.testing.assert_array_equal(metrics.as_label_image(np.array([[0, 7, 255]], np.int16)), grey)
    colour_message = (
        "ground truth is a colour image; labels must be single-channel class ids "
        "(convert colour or palette PNGs to id images first)"
    )
    for odd_channel in (0, 1, 2):  # any one channel unlike the others is colour
        colour = np.dstack([grey, grey, grey]).copy()
        colour[0, 1, odd_channel] = 9
        with _refused(colour_message):
            metrics.as_label_image(colour)
    with _refused("ground-truth values 0..256 do not fit 0..255"):
        metrics.as_label_image(np.array([[0, 256]], np.uint16))
    with _refused("ground-truth values -1..3 do not fit 0..255"):
        metrics.as_label_image(np.array([[-1, 3]], np.int16))
    with _refused("ground truth must be a 2-D integer image, got float32 (1, 2)"):
        metrics.as_label_image(np.array([[0.0, 1.0]], np.float32))
    with _refused("ground truth must be a 2-D integer image, got uint8 (1, 2, 2)"):
        metrics.as_label_image(np.zeros((1, 2, 2), np.uint8))


def test_drivable_scores_when_drivable_pixels_are_missed() -> None:
    # truth road(0) x4, car(1) x2; two road pixels predicted car, one car pixel predicted road.
    confusion = metrics.confusion_matrix(
        np.array([[0, 0, 0, 0, 1, 1]], np.uint8), np.array([[0, 0, 1, 1, 0, 1]], np.uint8), 2
    )
    one = metrics.binary_scores(confusion, [0])  # a single drivable class
    assert (one.iou, one.precision, one.recall) == pytest.approx((2 / 5, 2 / 3, 2 / 4))
    none = metrics.binary_scores(confusion, [])
    assert all(math.isnan(v) for v in (none.iou, none.precision, none.recall))


def test_undefined_scores_are_nan_without_numpy_warnings() -> None:
    empty = np.zeros((3, 3), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(metrics.per_class_iou(empty)).all()
        assert math.isnan(metrics.mean_iou(empty)) and math.isnan(metrics.pixel_accuracy(empty))
        drivable = metrics.binary_scores(empty, [0])
        assert all(math.isnan(v) for v in (drivable.iou, drivable.precision, drivable.recall))
        # No scored class: the mean is undefined too.
        assert math.isnan(metrics.mean_iou(np.eye(2, dtype=np.int64), []))
        assert metrics.mean_iou(np.eye(2, dtype=np.int64), [1]) == 1.0


def test_scores_refuse_a_confusion_matrix_of_another_size() -> None:
    with _refused("confusion matrix (2, 2) does not match 3 class names"):
        metrics.scores(np.eye(2, dtype=np.int64), ["a", "b", "c"], [0])

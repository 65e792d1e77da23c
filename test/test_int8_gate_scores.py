"""The INT8 accuracy gate's arithmetic on a graph whose labels are known exactly: it outputs the red channel
of the camera image, so every agreement, IoU, share, worst frame and message below is worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.graph_postprocess import LABELS_NAME
from seg_perception.core.graph_preprocess import INPUT_NAME
from seg_perception.core.int8_gate import AccuracyCheck, GateThresholds, check_accuracy, fp32_labels

H, W = 20, 50  # 1,000 pixels a frame
CLASSES = ["road", "car", "sky", "pole"]


def red_channel_graph(confidence_first: bool = False, unused_weight: bool = False) -> onnx.ModelProto:
    """[1, H, W, 3] uint8 image -> [1, H, W] float labels = the red channel (and, if asked, a green-channel
    output listed before the labels, or an initializer no node uses: ONNX Runtime warns about that one)."""
    index = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    nodes = [
        helper.make_node("Gather", [INPUT_NAME, "zero"], ["red"], axis=3),
        helper.make_node("Cast", ["red"], [LABELS_NAME], to=TensorProto.FLOAT),
    ]
    outputs = [helper.make_tensor_value_info(LABELS_NAME, TensorProto.FLOAT, [1, H, W])]
    initializers = [index]
    if confidence_first:
        nodes.append(helper.make_node("Gather", [INPUT_NAME, "one"], ["green"], axis=3))
        outputs.insert(0, helper.make_tensor_value_info("green", TensorProto.UINT8, [1, H, W]))
        initializers.append(one)
    if unused_weight:
        initializers.append(helper.make_tensor("unused", TensorProto.FLOAT, [2], [1.0, 2.0]))
    graph = helper.make_graph(
        nodes,
        "red",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [1, H, W, 3])],
        outputs,
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def batch_of(labels: np.ndarray) -> np.ndarray:
    image = np.zeros((1, H, W, 3), np.uint8)
    image[0, ..., 0] = labels
    image[0, ..., 1] = 7  # only red counts
    return image


def _frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Four frames: fp32 reference labels and the labels the INT8 graph gives (its red channel)."""
    refs, preds = [], []
    for wrong in (10, 40, 0, 25):  # pixels where INT8 says car on fp32's road
        ref = np.zeros((H, W), np.uint8)
        ref[10:] = 1  # 500 car, 500 road
        pred = ref.copy()
        pred.ravel()[:wrong] = 1
        ref[0, 49] = pred[0, 49] = 2  # sky: one pixel a frame in both graphs
        refs.append(ref)
        preds.append(pred)
    # sky's share is (4 + 4) / (2 * 4000) = 0.1 %, exactly the gate's floor: it is gated.
    preds[1][0, 41:49] = 3  # pole: 8 road pixels in INT8 only (share 8 / 8000: gated too, IoU 0)
    preds[2][10, 0] = 0  # one car pixel INT8 calls road: drivable disagrees there
    return refs, preds


def test_check_accuracy_scores_the_int8_labels_against_fp32() -> None:
    refs, preds = _frames()
    check = check_accuracy(
        red_channel_graph(), [batch_of(p) for p in preds], refs, CLASSES, [0], ["a.png", "b.png", "c.png", "d.png"]
    )
    # Over all 4,000 pixels: fp32 has road 2,000 - 4 (sky), car 2,000, sky 4; INT8 moves 75 road pixels to
    # car, 8 to pole and 1 car pixel to road: 84 disagree.
    assert (check.frames, check.pixels) == (4, 4000)
    assert check.label_agreement == pytest.approx(1 - 84 / 4000)
    road_iou = 1913 / (1996 + 1914 - 1913)  # in both / (fp32 + INT8 - both)
    car_iou = 1999 / (2000 + 2074 - 1999)
    assert check.per_class_iou == pytest.approx({"road": road_iou, "car": car_iou, "sky": 1.0, "pole": 0.0})
    assert check.miou_vs_fp32 == pytest.approx((road_iou + car_iou + 1.0 + 0.0) / 4)
    assert check.gated_classes == ("road", "car", "sky", "pole")  # pole is in INT8's labels only
    # Drivable (road) vs not: the 83 road pixels INT8 moved and the car pixel it made road disagree.
    assert check.drivable_agreement == pytest.approx(1 - 84 / 4000)
    assert [name for name, _ in check.worst_frames] == ["b.png", "d.png", "a.png"]  # three, worst first
    assert [a for _, a in check.worst_frames] == pytest.approx([0.952, 0.975, 0.99])


def test_unnamed_frames_are_numbered_and_a_missing_class_is_none() -> None:
    ref = np.zeros((H, W), np.uint8)
    ref[:, 25:] = 2
    check = check_accuracy(red_channel_graph(), [batch_of(ref)], [ref], CLASSES, [0, 2])
    assert check.worst_frames == (("frame 0", 1.0),)
    assert check.per_class_iou == {"road": 1.0, "car": None, "sky": 1.0, "pole": None}
    assert check.gated_classes == ("road", "sky")
    assert (check.label_agreement, check.miou_vs_fp32, check.drivable_agreement) == (1.0, 1.0, 1.0)
    assert isinstance(check.label_agreement, float) and isinstance(check.pixels, int)


@pytest.mark.parametrize(("batches", "refs"), [(0, 0), (2, 1), (1, 2)])
def test_the_check_needs_held_out_frames_one_reference_each(batches: int, refs: int) -> None:
    ref = np.zeros((H, W), np.uint8)
    with pytest.raises(SegPerceptionError) as err:
        check_accuracy(red_channel_graph(), [batch_of(ref)] * batches, [ref] * refs, CLASSES, [0])
    assert str(err.value) == f"the accuracy check needs held-out frames ({batches} given)"


def _check(**overrides: object) -> AccuracyCheck:
    fields: dict[str, object] = {
        "frames": 6,
        "pixels": 6000,
        "label_agreement": 0.97654321,
        "miou_vs_fp32": 0.9123456789,
        "per_class_iou": {"road": 0.95, "car": 0.8912345, "sky": 0.5, "pole": None},
        "gated_classes": ("road", "car", "pole"),
        "drivable_agreement": 0.99512345,
        "worst_frames": (("x.png", 0.9012345678), ("y.png", 0.95)),
    }
    fields.update(overrides)
    return AccuracyCheck(**fields)  # type: ignore[arg-type]


def test_failures_and_description_in_words() -> None:
    check = _check()
    assert check.failures(GateThresholds()) == [
        "label agreement 97.65% < 98.0%",
        "class IoU vs fp32 under 90.0%: car 89.1%",
    ]
    # sky is under every floor but too small to be gated; pole (None) is never a failure.
    assert check.failures(GateThresholds(min_agreement=0.97654321, min_class_iou=0.96)) == [
        "class IoU vs fp32 under 96.0%: road 95.0%, car 89.1%"
    ]
    assert check.failures(GateThresholds(min_agreement=0.9, min_class_iou=0.8912345)) == []
    assert check.describe() == (
        "label agreement 97.65% over 6 held-out frames, mIoU vs fp32 91.23%, lowest class IoU car 89.1%, "
        "drivable agreement 99.51%"
    )
    # The lowest IoU, not the first name: road is below car here.
    road_lowest = _check(per_class_iou={"car": 0.99, "road": 0.5, "sky": 0.1}, gated_classes=("car", "road"))
    assert "lowest class IoU road 50.0%" in road_lowest.describe()
    none_gated = _check(gated_classes=("pole",))
    assert none_gated.describe() == (
        "label agreement 97.65% over 6 held-out frames, mIoU vs fp32 91.23%, drivable agreement 99.51%"
    )


def test_the_sidecar_record() -> None:
    thresholds = GateThresholds(min_agreement=0.975, min_class_iou=0.85)
    passing = _check().to_json(thresholds, accepted_loss=True)
    assert passing == {
        "passed": True,
        "accepted_accuracy_loss": False,  # nothing was lost, so nothing was accepted
        "failures": [],
        "min_agreement": 0.975,
        "min_class_iou": 0.85,
        "held_out_frames": 6,
        "label_agreement": 0.976543,
        "miou_vs_fp32": 0.912346,
        "drivable_agreement": 0.995123,
        "per_class_iou_vs_fp32": {"road": 0.95, "car": 0.891235, "sky": 0.5, "pole": None},
        "worst_frames": [{"frame": "x.png", "agreement": 0.901235}, {"frame": "y.png", "agreement": 0.95}],
    }
    failing = _check().to_json(GateThresholds())
    assert (failing["passed"], failing["accepted_accuracy_loss"]) == (False, False)
    assert failing["failures"] == ["label agreement 97.65% < 98.0%", "class IoU vs fp32 under 90.0%: car 89.1%"]
    accepted = _check().to_json(GateThresholds(), accepted_loss=True)
    assert (accepted["passed"], accepted["accepted_accuracy_loss"]) == (False, True)


@pytest.mark.parametrize("name", ["min_agreement", "min_class_iou"])
def test_thresholds_are_fractions(name: str) -> None:
    for value in (0.0, 1.0):
        assert getattr(GateThresholds(**{name: value}), name) == value
    for value in (-0.001, 1.001, math.nan):
        with pytest.raises(SegPerceptionError) as err:
            GateThresholds(**{name: value})
        assert str(err.value) == f"{name} {value} is outside 0..1"
    assert GateThresholds() == GateThresholds(min_agreement=0.98, min_class_iou=0.90)


def test_fp32_labels_are_the_graphs_labels_per_batch() -> None:
    from seg_perception.core.int8_gate import fp32_labels

    first, second = np.zeros((H, W), np.uint8), np.full((H, W), 2, np.uint8)
    first[3, 4] = 1
    out = fp32_labels(red_channel_graph(), [batch_of(first), batch_of(second)])
    assert len(out) == 2 and out[0].shape == (H, W)
    assert np.array_equal(out[0], first) and np.array_equal(out[1], second)
    (labels,) = fp32_labels(red_channel_graph(confidence_first=True), [batch_of(first)])  # read by name
    assert np.array_equal(labels, first)


def test_the_labels_output_is_read_by_name_whatever_the_output_order() -> None:
    ref = np.zeros((H, W), np.uint8)
    ref[:, :10] = 1
    check = check_accuracy(red_channel_graph(confidence_first=True), [batch_of(ref)], [ref], CLASSES, [0])
    assert check.label_agreement == 1.0  # the green channel (all 7) would agree nowhere


def test_frame_names_must_name_every_frame() -> None:
    ref = np.zeros((H, W), np.uint8)
    with pytest.raises(ValueError, match="zip"):
        check_accuracy(red_channel_graph(), [batch_of(ref)] * 3, [ref] * 3, CLASSES, [0], ["a", "b"])


def test_no_counted_pixel_gives_nan_drivable_agreement() -> None:
    void = np.full((H, W), 255, np.uint8)  # every fp32 pixel is the ignore id: nothing is counted
    check = check_accuracy(red_channel_graph(), [batch_of(np.zeros((H, W), np.uint8))], [void], CLASSES, [0])
    assert check.pixels == 0 and math.isnan(check.drivable_agreement) and check.gated_classes == ()


def test_the_gate_runs_onnx_runtime_quietly_on_the_cpu(capfd: pytest.CaptureFixture[str]) -> None:
    import warnings

    ref = np.zeros((H, W), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown execution provider name is a Python warning
        check_accuracy(red_channel_graph(unused_weight=True), [batch_of(ref)], [ref], CLASSES, [0])
    assert capfd.readouterr().err == ""  # the unused-initializer warning is below the log level


def test_the_gate_leaves_onnx_runtime_errors_visible(capfd: pytest.CaptureFixture[str]) -> None:
    # Quiet means no warnings, not no errors: a graph that fails while running (an Add that cannot broadcast
    # the image's 3 channels with 5 values, which only the run finds: every input dimension is symbolic) has
    # ONNX Runtime's own error line on stderr as well as the exception.
    five = helper.make_tensor("five", TensorProto.FLOAT, [5], [0.0] * 5)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", [INPUT_NAME], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["pixels", "five"], [LABELS_NAME]),
        ],
        "bad",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["n", "h", "w", "c"])],
        [helper.make_tensor_value_info(LABELS_NAME, TensorProto.FLOAT, None)],
        initializer=[five],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(Exception, match="Non-zero status code returned while running Add node"):
        fp32_labels(model, [np.zeros((1, H, W, 3), np.uint8)])
    err = capfd.readouterr().err
    assert "[E:onnxruntime:" in err and "Non-zero status code returned while running Add node" in err


# --- the QDQ recipes' helpers (core/qdq_recipes.py) -----------------------------------------------------------


def test_recipe_for_a_target_and_the_refusal_of_another() -> None:
    from seg_perception.core import qdq_recipes

    assert qdq_recipes.recipe_for("tensorrt") is qdq_recipes.TENSORRT_RECIPE
    assert qdq_recipes.recipe_for("onnxruntime") is qdq_recipes.CPU_RECIPE
    with pytest.raises(ValueError) as err:
        qdq_recipes.recipe_for("cuda")
    assert str(err.value) == "INT8 target 'cuda' is not one of tensorrt, onnxruntime"


def test_a_graph_without_a_target_entry_was_made_for_tensorrt() -> None:
    from seg_perception.core.qdq_recipes import TARGET_METADATA, graph_target

    model = red_channel_graph()
    assert graph_target(model) == "tensorrt"
    onnx.helper.set_model_props(model, {"other": "x", TARGET_METADATA: "onnxruntime"})
    assert graph_target(model) == "onnxruntime"


def _conv(name: str, weight: str, *extra: str, **attrs: Any) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", weight, *extra], [name + "_out"], name=name, **attrs)


def test_narrow_input_convs_are_those_reading_fewer_channels_than_the_minimum() -> None:
    from seg_perception.core.qdq_recipes import narrow_input_convs

    def weight(name: str, *dims: int) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.0] * math.prod(dims))

    nodes = [
        helper.make_node("Relu", ["x", "w5"], ["r"], name="relu"),  # not a Conv, though it reads a weight
        _conv("five", "w5", "bias"),  # 5 input channels
        _conv("eight", "w8"),  # exactly the minimum: not narrow
        _conv("depthwise", "w1", dilations=[1, 1], group=8),  # 1 x group 8 = 8 channels
        _conv("grouped", "w2", group=2),  # 2 x 2 = 4
        _conv("computed", "made"),  # weight from another node, not an initializer
        helper.make_node("Conv", ["x"], ["alone"], name="alone"),  # no weight input at all
    ]
    initializers = [weight("w5", 4, 5, 1, 1), weight("w8", 4, 8, 1, 1), weight("w1", 8, 1, 3, 3)]
    initializers += [weight("w2", 4, 2, 1, 1), weight("bias", 4)]
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
        [helper.make_tensor_value_info("five_out", TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph)
    assert narrow_input_convs(model, 8) == ["five", "grouped"]
    assert narrow_input_convs(model, 6) == ["five", "grouped"]
    assert narrow_input_convs(model, 5) == ["grouped"]
    assert narrow_input_convs(model, 9) == ["five", "eight", "depthwise", "grouped"]
    assert narrow_input_convs(model, 0) == [] and narrow_input_convs(model, -1) == []


def test_a_class_on_fewer_than_a_thousandth_of_the_pixels_is_reported_not_gated() -> None:
    # Two frames, 2,000 pixels (the second all road in fp32): car on 1 fp32 pixel and 2 INT8 pixels is
    # 3 / 4,000 = 0.00075 of both label sets (< 0.001: reported, not gated); sky on 2 + 4 is 0.0015 (gated).
    ref = np.zeros((H, W), np.uint8)
    ref[0, 0] = 1
    ref[1, :2] = 2
    check = check_accuracy(red_channel_graph(), [batch_of(ref)] * 2, [ref, np.zeros_like(ref)], CLASSES, [0])
    assert check.gated_classes == ("road", "sky")
    assert check.per_class_iou["car"] == 0.5  # 1 in both / (1 + 2 - 1)

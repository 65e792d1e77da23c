"""`seg-perception eval` scores equal the official Cityscapes evaluator's, computed by the official code itself.

cityscapesScripts (a test-only dependency, pinned in requirements.txt) runs `evaluateImgLists` from
`evalPixelLevelSemanticLabeling` on the same prediction/ground-truth PNGs `run_eval` reads. Ground truth is
in labelIds and uses every labelId 0..33 over the set; single frames leave classes out of ground truth, out
of the prediction, and predict one only on void pixels. The model is a 20-class net (the 19 train classes
and a `void` class it predicts on real pixels) that outputs the red channel of its input as labels, so the
prediction is exactly what the test wrote. Three ways of telling `eval` that `void` is not a class must all
give the official numbers: `--label-format cityscapes-ids`; train-id ground truth with `ignore_in_eval: true`
on `void`; the same with `--ignore-index 19`.
"""

from __future__ import annotations

import copy
import html
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tiny_models import red_channel_labels_model, red_channel_spec, write_spec

from seg_perception.core import metrics
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.evaluation.runners import EvalResult, parse_variant, run_eval

HEIGHT, WIDTH = 48, 80
VOID_CLASS = 19  # the spec's 20th class
CLASSES = [*metrics.CITYSCAPES_TRAIN_NAMES, "void"]
TRAIN_ID = {name: i for i, name in enumerate(metrics.CITYSCAPES_TRAIN_NAMES)}
STEMS = [f"aachen_000000_0000{i}9" for i in range(3)]
# Frame 1's special cases (ground truth lacks train, motorcycle and rider):
PREDICTED_NOT_IN_TRUTH = "train"  # predicted on scored pixels: IoU 0, in the mean
PREDICTED_ONLY_ON_VOID = "motorcycle"  # no ground truth, predicted only where ground truth is void: NaN
IN_NEITHER = "rider"  # NaN, out of the mean
IN_TRUTH_NEVER_PREDICTED = "bus"  # IoU 0
# Frame 2: ground truth has no wall, nothing is predicted wall, and void is never predicted.


def _label_id(train_id: int) -> int:
    return next(lid for lid, tid in metrics.CITYSCAPES_ID_TO_TRAIN_ID.items() if tid == train_id)


def _frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground truth labelIds, prediction in spec class ids) for each stem."""
    rng = np.random.default_rng(17)
    every = list(range(34))
    truth_sets = [
        every,
        [i for i in every if i not in {_label_id(TRAIN_ID[n]) for n in ("train", "motorcycle", "rider")}],
        [i for i in every if i != _label_id(TRAIN_ID["wall"])],
    ]
    out = []
    for frame, allowed in enumerate(truth_sets):
        # 4x4 blocks of random labelIds, every allowed id at least once.
        blocks = rng.choice(allowed, (HEIGHT // 4, WIDTH // 4))
        blocks.flat[: len(allowed)] = rng.permutation(allowed)
        truth = np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint8)
        train = metrics.cityscapes_train_ids(truth)
        void = train == metrics.VOID
        prediction = np.where(void, VOID_CLASS, train).astype(np.uint8)
        wrong = rng.random(truth.shape) < 0.3
        prediction[wrong] = rng.integers(0, len(CLASSES), int(wrong.sum()))
        if frame == 1:
            for name in (PREDICTED_NOT_IN_TRUTH, PREDICTED_ONLY_ON_VOID, IN_NEITHER, IN_TRUTH_NEVER_PREDICTED):
                prediction[prediction == TRAIN_ID[name]] = TRAIN_ID["road"]
            prediction[~void & (rng.random(truth.shape) < 0.05)] = TRAIN_ID[PREDICTED_NOT_IN_TRUTH]
            prediction[void & (rng.random(truth.shape) < 0.3)] = TRAIN_ID[PREDICTED_ONLY_ON_VOID]
        if frame == 2:
            prediction[(prediction == TRAIN_ID["wall"]) | (prediction == VOID_CLASS)] = TRAIN_ID["sky"]
        out.append((truth, prediction))
    every_seen = np.unique(np.concatenate([t.ravel() for t, _ in out]))
    assert every_seen.tolist() == every  # the set uses every labelId
    return out


def _spec(void_flagged: bool) -> dict[str, Any]:
    spec = red_channel_spec("red.onnx", CLASSES, HEIGHT, WIDTH)
    for i, entry in enumerate(spec["classes"]):
        entry["drivable"] = entry["name"] == "road"
        entry["obstacle"] = False
        entry["color"] = [i * 12, 255 - i * 12, 100]
    if void_flagged:
        spec["classes"][VOID_CLASS]["ignore_in_eval"] = True
    return spec


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """images/ (prediction in the red channel), gt/ (labelIds), train_ids/ (void as class 19), pred/ (labelIds)."""
    root = tmp_path_factory.mktemp("cityscapes")
    red_channel_labels_model(root / "red.onnx", HEIGHT, WIDTH)
    write_spec(root / "flagged.yaml", _spec(void_flagged=True))
    write_spec(root / "plain.yaml", _spec(void_flagged=False))
    to_label_id = np.zeros(256, np.uint8)  # spec class -> labelId; void -> 0 (unlabeled)
    for train_id in range(19):
        to_label_id[train_id] = _label_id(train_id)
    for stem, (truth, prediction) in zip(STEMS, _frames(), strict=True):
        frame_dir = root / stem
        for sub in ("images", "gt", "train_ids", "pred"):
            (frame_dir / sub).mkdir(parents=True)
        cv2.imwrite(str(frame_dir / "images" / f"{stem}_leftImg8bit.png"), np.dstack([prediction] * 3))
        cv2.imwrite(str(frame_dir / "gt" / f"{stem}_gtFine_labelIds.png"), truth)
        train = metrics.cityscapes_train_ids(truth)
        train_ids = np.where(train == metrics.VOID, VOID_CLASS, train)
        cv2.imwrite(str(frame_dir / "train_ids" / f"{stem}_leftImg8bit_labels.png"), train_ids)
        cv2.imwrite(str(frame_dir / "pred" / f"{stem}_pred.png"), to_label_id[prediction])
    return root


def _official(dataset: Path, stems: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """cityscapesScripts' evaluateImgLists on the labelIds PNGs: its result dict (no GUI, no files)."""
    monkeypatch.setenv("CITYSCAPES_DATASET", str(dataset))  # read at import; nothing is written there
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as cs_eval  # noqa: N813

    args = copy.copy(cs_eval.args)
    args.evalInstLevelScore = False  # no *_instanceIds.png: nIoU is not what we report
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    args.colorized = False
    predictions = [str(dataset / s / "pred" / f"{s}_pred.png") for s in stems]
    truths = [str(dataset / s / "gt" / f"{s}_gtFine_labelIds.png") for s in stems]
    result: dict[str, Any] = cs_eval.evaluateImgLists(predictions, truths, args)
    return result


def _ours(dataset: Path, stems: list[str], how: str, run: str, keep_pixels: bool = False) -> EvalResult:
    """`run_eval` (what `seg-perception eval` runs) on `stems`, linked into their own directories."""
    images, labels = dataset / "run" / run / "images", dataset / "run" / run / "labels"
    for stem in stems:
        for sub, target in (("images", images), ("gt" if how == "cityscapes-ids" else "train_ids", labels)):
            target.mkdir(parents=True, exist_ok=True)
            for f in (dataset / stem / sub).iterdir():
                (target / f.name).symlink_to(f)
    spec = load_model_spec(dataset / ("flagged.yaml" if how == "index+ignore_in_eval" else "plain.yaml"))
    label_format = "cityscapes-ids" if how == "cityscapes-ids" else "index"
    ignore_index = VOID_CLASS if how == "index+ignore-index" else None
    return run_eval(spec, images, labels, label_format, ignore_index, parse_variant("onnxruntime"), 0, keep_pixels)


def _official_pixel_accuracy(confusion: np.ndarray) -> float:
    """Correct over non-ignored ground-truth pixels, from the official confusion matrix and ignoreInEval.

    (The script's own per-image `evalPixelAccuracy` fields are not used: they count the *ignored* pixels,
    `np.in1d(..., invert=True)`, and the wrong ones.)
    """
    from cityscapesscripts.helpers.labels import labels

    scored = [label.id for label in labels if label.id >= 0 and not label.ignoreInEval]
    return float(confusion[scored, scored].sum() / confusion[scored, :].sum())  # [scored, scored]: the diagonal


SUBSETS = {"all-frames": STEMS, "frame-1": STEMS[1:2], "frame-2": STEMS[2:3]}


@pytest.mark.parametrize("how", ["cityscapes-ids", "index+ignore_in_eval", "index+ignore-index"])
@pytest.mark.parametrize("subset", list(SUBSETS))
def test_eval_equals_cityscapes_scripts(dataset: Path, subset: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stems = SUBSETS[subset]
    official = _official(dataset, stems, monkeypatch)
    result = _ours(dataset, stems, how, f"{how}/{subset}")
    scores = result.scores

    # The confusion matrices agree cell by cell (void predictions: the official labelId 0 column).
    official_confusion = np.asarray(official["confMatrix"], np.int64)
    label_ids = [_label_id(t) for t in range(19)] + [0]
    train_rows = official_confusion[[_label_id(t) for t in range(19)]]
    np.testing.assert_array_equal(scores.confusion[:19], train_rows[:, label_ids])
    np.testing.assert_array_equal(scores.confusion[19:], 0)  # void ground truth is in no count

    # Per-class IoU of the 19 train classes (NaN where official is NaN), the "classes" mean, accuracy.
    assert scores.scored_names == metrics.CITYSCAPES_TRAIN_NAMES and scores.ignored_names == ("void",)
    for name, ours in zip(scores.scored_names, scores.scored_iou, strict=True):
        theirs = official["classScores"][name]
        assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, rel=1e-12), name
    assert scores.miou == pytest.approx(official["averageScoreClasses"], rel=1e-12)
    assert scores.pixel_accuracy == pytest.approx(_official_pixel_accuracy(official_confusion), rel=1e-12)

    data = result.to_json()
    assert data["scored_classes"] == list(metrics.CITYSCAPES_TRAIN_NAMES) and data["ignored_classes"] == ["void"]
    assert list(data["per_class_iou"]) == list(metrics.CITYSCAPES_TRAIN_NAMES)
    assert data["miou"] == pytest.approx(official["averageScoreClasses"], abs=1e-6)

    if subset == "frame-1":  # the special cases are what they claim to be
        iou = official["classScores"]
        assert iou[PREDICTED_NOT_IN_TRUTH] == 0.0 and iou[IN_TRUTH_NEVER_PREDICTED] == 0.0
        assert math.isnan(iou[PREDICTED_ONLY_ON_VOID]) and math.isnan(iou[IN_NEITHER])
        assert data["per_class_iou"][PREDICTED_ONLY_ON_VOID] is None and data["per_class_iou"][IN_NEITHER] is None
        assert scores.confusion[:, TRAIN_ID[PREDICTED_ONLY_ON_VOID]].sum() == 0
        assert scores.confusion[:19, VOID_CLASS].sum() > 0  # void predicted on scored pixels: misses


def test_the_void_class_in_the_mean_would_differ_from_official(dataset: Path) -> None:
    """The figure the issue measured: void kept in the mean (the old behaviour) is official x N/(N+1)."""
    result = _ours(dataset, STEMS, "cityscapes-ids", "old_mean")
    s = result.scores
    with_void = metrics.mean_iou(s.confusion, [*s.scored_ids, VOID_CLASS])
    assert s.per_class_iou[VOID_CLASS] == 0.0  # void is predicted on real pixels, never right
    assert with_void == pytest.approx(s.miou * 19 / 20, rel=1e-12) and with_void < s.miou


def test_the_report_leaves_ignored_classes_out_of_the_iou_bars(dataset: Path) -> None:
    from seg_perception.evaluation.report import page_for_eval, render

    result = _ours(dataset, STEMS, "cityscapes-ids", "report", keep_pixels=True)
    page = render(page_for_eval(result))
    bars = page[page.index('id="per-class-iou"') : page.index('id="confusion-matrix"')]
    assert all(f">{html.escape(name)}</text>" in bars for name in metrics.CITYSCAPES_TRAIN_NAMES)
    assert ">void</text>" not in bars
    # The confusion matrix keeps void's column: where the model predicted it on scored pixels.
    road_as_void = int(result.scores.confusion[TRAIN_ID["road"], VOID_CLASS])
    assert road_as_void > 0 and f"road \u2192 void: {road_as_void} px" in page

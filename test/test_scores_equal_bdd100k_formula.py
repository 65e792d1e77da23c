"""`seg-perception eval` on BDD100K drivable maps against the BDD100K toolkit's documented formula.

The toolkit itself (`bdd100k` 1.0.1 on PyPI, with `scalabel` 0.3.1) does not install beside this project's
pins: scalabel needs boto3, whose botocore requires python-dateutil < 3, and matplotlib here pins
python-dateutil 4.0.0 (pip backtracks through every boto3 release and gives up). So this test checks our
numbers against the definition in its `bdd100k/eval/seg.py` (`evaluate_drivable`), recomputed here with
boolean masks: direct (0) and alternative (1) are the classes; background (2) and 255 ground truth are not
counted; a prediction of background on a counted pixel is a miss; IoU = tp / (gt + predicted - tp) per
class; mIoU averages the classes present in ground truth; pixel accuracy = correct / counted pixels. A
3-class spec (direct, alternative, background) with `--label-format index --ignore-index 2` is that
evaluation. `--label-format bdd-drivable` reports drivable IoU/precision/recall of direct+alternative
merged against background (background counted), which is checked against masks the same way.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_models import red_channel_labels_model, red_channel_spec, write_spec

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.evaluation.runners import EvalResult, parse_variant, run_eval

HEIGHT, WIDTH = 48, 80
DIRECT, ALTERNATIVE, BACKGROUND, VOID = 0, 1, 2, 255
CLASSES = ["direct", "alternative", "background"]
STEMS = ["b1c66a42-6f7d68ca", "b1c81faa-3df17267", "b1d0091f-75824d0d"]
# Frame 1: no alternative ground truth, but alternative predicted (where the toolkit's mean and ours part).


def _frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground truth drivable map, prediction in spec class ids) per stem."""
    rng = np.random.default_rng(18)
    out = []
    for frame in range(len(STEMS)):
        values = [DIRECT, BACKGROUND] if frame == 1 else [DIRECT, ALTERNATIVE, BACKGROUND]
        truth = np.kron(rng.choice(values, (HEIGHT // 4, WIDTH // 4)), np.ones((4, 4), np.int64)).astype(np.uint8)
        truth[rng.random(truth.shape) < 0.05] = VOID
        prediction = np.where(truth == VOID, BACKGROUND, truth).astype(np.uint8)
        wrong = rng.random(truth.shape) < 0.25
        prediction[wrong] = rng.integers(0, 3, int(wrong.sum()))
        out.append((truth, prediction))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bdd")
    red_channel_labels_model(root / "red.onnx", HEIGHT, WIDTH)
    spec = red_channel_spec("red.onnx", CLASSES, HEIGHT, WIDTH)
    for entry in spec["classes"]:
        entry["drivable"] = entry["name"] != "background"
        entry["obstacle"] = False
    write_spec(root / "bdd.yaml", spec)
    for stem, (truth, prediction) in zip(STEMS, _frames(), strict=True):
        for sub in ("images", "labels"):
            (root / stem / sub).mkdir(parents=True)
        cv2.imwrite(str(root / stem / "images" / f"{stem}.png"), np.dstack([prediction] * 3))
        cv2.imwrite(str(root / stem / "labels" / f"{stem}_drivable_id.png"), truth)
    return root


def _ours(dataset: Path, stems: list[str], label_format: str, ignore_index: int | None) -> EvalResult:
    run = dataset / "run" / f"{label_format}-{'-'.join(stems)}"
    for stem in stems:
        for sub in ("images", "labels"):
            (run / sub).mkdir(parents=True, exist_ok=True)
            for f in (dataset / stem / sub).iterdir():
                (run / sub / f.name).symlink_to(f)
    spec = load_model_spec(dataset / "bdd.yaml")
    return run_eval(spec, run / "images", run / "labels", label_format, ignore_index, parse_variant("onnxruntime"))


def _toolkit_formula(frames: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float | list[float]]:
    """bdd100k.eval.seg.evaluate_drivable's figures (as fractions, not percent), from masks."""
    truth = np.concatenate([t.ravel() for t, _ in frames])
    pred = np.concatenate([p.ravel() for _, p in frames])
    counted = (truth == DIRECT) | (truth == ALTERNATIVE)
    ious = []
    for c in (DIRECT, ALTERNATIVE):
        tp = np.sum((truth == c) & (pred == c))
        union = np.sum(truth == c) + np.sum(counted & (pred == c)) - tp
        ious.append(float(tp / union) if union else 0.0)  # the toolkit reports 0 for an undefined IoU
    present = [i for i, c in enumerate((DIRECT, ALTERNATIVE)) if np.any(truth == c)]
    return {
        "iou": ious,
        "miou": float(np.mean([ious[i] for i in present])),
        "pixel_accuracy": float(np.sum(counted & (truth == pred)) / np.sum(counted)),
    }


SUBSETS = {"all-frames": STEMS, "frame-0": STEMS[:1], "frame-1": STEMS[1:2]}


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_eval_equals_the_bdd100k_drivable_formula(dataset: Path, subset: str) -> None:
    stems = SUBSETS[subset]
    frames = [f for stem, f in zip(STEMS, _frames(), strict=True) if stem in stems]
    theirs = _toolkit_formula(frames)
    s = _ours(dataset, stems, "index", BACKGROUND).scores
    assert s.scored_names == ("direct", "alternative") and s.ignored_names == ("background",)
    assert s.confusion[BACKGROUND].sum() == 0  # background ground truth is in no count
    assert s.pixel_accuracy == pytest.approx(theirs["pixel_accuracy"], rel=1e-12)
    assert s.scored_iou[0] == pytest.approx(theirs["iou"][0], rel=1e-12)
    assert s.scored_iou[1] == pytest.approx(theirs["iou"][1], rel=1e-12)
    if subset == "frame-1":
        # No alternative ground truth, alternative predicted: IoU 0 on both sides; the toolkit leaves it out
        # of its mean (classes present in ground truth), we keep it (classes in ground truth or prediction,
        # as cityscapesScripts does).
        assert s.scored_iou[1] == 0.0 and s.confusion[:, ALTERNATIVE].sum() > 0
        assert theirs["miou"] == pytest.approx(s.scored_iou[0], rel=1e-12)
        assert s.miou == pytest.approx(s.scored_iou[0] / 2, rel=1e-12)
    else:
        assert s.miou == pytest.approx(theirs["miou"], rel=1e-12)


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_bdd_drivable_format_scores_merged_drivable_against_background(dataset: Path, subset: str) -> None:
    stems = SUBSETS[subset]
    frames = [f for stem, f in zip(STEMS, _frames(), strict=True) if stem in stems]
    truth = np.concatenate([t.ravel() for t, _ in frames])
    pred = np.concatenate([p.ravel() for _, p in frames])
    counted = truth != VOID
    truth_drivable = counted & (truth != BACKGROUND)
    pred_drivable = counted & (pred != BACKGROUND)
    both = np.sum(truth_drivable & pred_drivable)
    s = _ours(dataset, stems, "bdd-drivable", None).scores
    assert s.class_names == ("background", "drivable") and s.pixels == np.sum(counted)
    assert s.drivable.iou == pytest.approx(both / np.sum(truth_drivable | pred_drivable), rel=1e-12)
    assert s.drivable.precision == pytest.approx(both / np.sum(pred_drivable), rel=1e-12)
    assert s.drivable.recall == pytest.approx(both / np.sum(truth_drivable), rel=1e-12)
    assert s.pixel_accuracy == pytest.approx(np.mean((truth_drivable == pred_drivable)[counted]), rel=1e-12)

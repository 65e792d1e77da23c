"""Segmentation accuracy: confusion matrices, IoU, pixel accuracy, drivable-area scores, label formats.

Everything is whole-array numpy: one ``np.bincount`` over ``truth * K + prediction`` per frame, never a
per-pixel Python loop. Rows of a confusion matrix are ground truth, columns are predictions.

Ground truth arrives in one of three formats and is converted into the evaluated label space first:

* ``index``: plain class-id images in the model spec's class order.
* ``cityscapes-ids``: Cityscapes ``*_gtFine_labelIds.png`` (ids 0..33) through the standard table to the
  19 train ids, then to the spec's classes by name (so a spec may list them in any order); a spec whose
  names are not the Cityscapes ones but which has exactly 19 classes is taken to be in train-id order.
  Exactly the 19 train classes are scored: train classes the spec lacks are appended to the evaluated
  space (the model never predicts them, so they score 0 wherever ground truth has them, as officially),
  and the spec's other classes (a ``void`` class, say) are ignored.
* ``bdd-drivable``: BDD100K drivable maps (0 direct, 1 alternative, 2 background). These say nothing about
  the spec's other classes, so the evaluation runs in a two-class space, ``background`` (0) and
  ``drivable`` (1): direct and alternative become ``drivable``, background becomes ``background``, and the
  model's predictions are collapsed the same way through the spec's ``drivable`` flags.

The value 255 is void in every format (it can never be a class: specs have at most 255 classes), and the
caller's ignore index is void too. A class is *ignored* when no ground-truth value reaches it: the one the
ignore index names, a class the spec marks ``ignore_in_eval``, or (``cityscapes-ids``) a spec class that is
none of the 19 train classes. As in cityscapesScripts' evalPixelLevelSemanticLabeling, an ignored class is
in no mean and no per-class table, its ground-truth pixels are in no count, and predicting it on a scored
pixel is a miss (a false negative of the pixel's true class). Ground truth of another size than the
prediction is an error: a silent resize would blur class boundaries and hide a camera/label mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.core.errors import SegPerceptionError

VOID = 255  # void / ignored ground truth in the evaluated label space
LABEL_FORMATS = ("index", "cityscapes-ids", "bdd-drivable")

CITYSCAPES_TRAIN_NAMES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# Cityscapes label id -> train id (cityscapesScripts helpers/labels.py); ids not listed are void (255):
# unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground, parking, rail track,
# guard rail, bridge, tunnel, polegroup, caravan, trailer (and license plate, id -1, never in labelIds PNGs).
CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
BDD_DIRECT, BDD_ALTERNATIVE, BDD_BACKGROUND = 0, 1, 2
BDD_CLASS_NAMES = ("background", "drivable")


def _lookup(pairs: dict[int, int]) -> np.ndarray:
    table = np.full(256, VOID, np.uint8)
    for src, dst in pairs.items():
        table[src] = dst
    return table


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes label ids (0..33) to train ids (0..18); everything else becomes 255."""
    return _lookup(CITYSCAPES_ID_TO_TRAIN_ID)[as_label_image(label_ids)]


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# ------------------------------------------------------------------------------------------------
# The evaluated label space


@dataclass(frozen=True)
class LabelSpace:
    """The classes scores are computed over, and how raw ground truth and predictions reach them.

    ``truth_table`` maps a raw ground-truth value (0..255) to an evaluated class id or VOID, and
    ``accepted`` says which raw values the format allows (anything else is a wrong format, reported);
    ``prediction_table`` maps a model label id to an evaluated class id. ``ignored_ids`` are the classes
    no accepted ground-truth value reaches: they are not scored (see the module docstring).
    """

    label_format: str
    class_names: tuple[str, ...]
    drivable_ids: tuple[int, ...]
    truth_table: np.ndarray
    accepted: np.ndarray
    prediction_table: np.ndarray
    note: str = ""
    ignored_ids: tuple[int, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def scored_ids(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_classes) if i not in self.ignored_ids)

    def truth(self, raw: np.ndarray) -> np.ndarray:
        """Raw ground-truth values to evaluated class ids (VOID where ignored)."""
        raw = as_label_image(raw)
        histogram = np.bincount(raw.ravel(), minlength=256)
        unexpected = np.flatnonzero(histogram[~self.accepted])
        if unexpected.size:
            values = np.flatnonzero(~self.accepted)[unexpected][:8].tolist()
            raise SegPerceptionError(
                f"ground truth holds values {values} that are not {self.label_format} labels for "
                f"{self.num_classes} classes; check --label-format and --ignore-index"
            )
        return self.truth_table[raw]

    def prediction(self, labels: np.ndarray) -> np.ndarray:
        """Model label ids to evaluated class ids."""
        return self.prediction_table[labels]


def label_space(
    label_format: str,
    class_names: Sequence[str],
    drivable_ids: Sequence[int],
    ignore_index: int | None = None,
    ignored_classes: Sequence[int] = (),
) -> LabelSpace:
    """The label space for a ground-truth format and a model's classes.

    `ignore_index` is a raw ground-truth value; `ignored_classes` are spec class ids never scored (the
    spec's ``ignore_in_eval`` classes).
    """
    names = tuple(class_names)
    if not names or len(names) >= VOID:
        raise SegPerceptionError(f"a label space needs 1..{VOID - 1} classes, got {len(names)}")
    if ignore_index is not None and not 0 <= ignore_index <= 255:
        raise SegPerceptionError(f"ignore index {ignore_index} is outside 0..255")
    unscored = sorted(set(ignored_classes))
    if unscored and not 0 <= unscored[0] <= unscored[-1] < len(names):
        raise SegPerceptionError(f"ignored classes {unscored} are not ids of the {len(names)} classes")
    # Identity, so an out-of-range prediction reaches confusion_matrix and is reported there.
    identity = np.arange(256, dtype=np.uint8)
    accepted = np.zeros(256, bool)
    accepted[VOID] = True
    note = ""
    if label_format == "index":
        truth, prediction, space_names, drivable = identity.copy(), identity, names, tuple(drivable_ids)
        accepted[: len(names)] = True
        truth[unscored] = VOID
    elif label_format == "cityscapes-ids":
        truth, space_names, note = _cityscapes_table(names)
        truth[np.isin(truth, unscored)] = VOID
        prediction, drivable = identity, tuple(drivable_ids)
        accepted[:34] = True
    elif label_format == "bdd-drivable":
        truth = _lookup({BDD_DIRECT: 1, BDD_ALTERNATIVE: 1, BDD_BACKGROUND: 0})
        accepted[[BDD_DIRECT, BDD_ALTERNATIVE, BDD_BACKGROUND]] = True
        if not drivable_ids:
            raise SegPerceptionError("bdd-drivable needs a model spec with at least one class marked drivable: true")
        prediction = np.full(256, VOID, np.uint8)  # ids beyond the spec stay out of range (reported)
        prediction[: len(names)] = 0
        prediction[list(drivable_ids)] = 1
        space_names, drivable = BDD_CLASS_NAMES, (1,)
        note = (
            "BDD drivable maps: direct and alternative -> drivable, background -> background; "
            f"predictions collapsed by the spec's drivable classes ({', '.join(names[i] for i in drivable_ids)})"
        )
    else:
        raise SegPerceptionError(f"label format {label_format!r} is not one of {', '.join(LABEL_FORMATS)}")
    if ignore_index is not None:
        truth[ignore_index] = VOID
        accepted[ignore_index] = True
    truth[VOID] = VOID
    reached = np.zeros(len(space_names), bool)
    reached[truth[accepted & (truth != VOID)]] = True
    if not reached.any():
        raise SegPerceptionError(
            f"no class is left to score: {label_format} ground truth with ignore index {ignore_index} "
            "and the spec's ignore_in_eval classes reaches none of them"
        )
    ignored = tuple(int(i) for i in np.flatnonzero(~reached))
    if label_format == "cityscapes-ids" and ignore_index in CITYSCAPES_ID_TO_TRAIN_ID:
        train_name = CITYSCAPES_TRAIN_NAMES[CITYSCAPES_ID_TO_TRAIN_ID[ignore_index]]
        note += f"; ignore index {ignore_index} is the Cityscapes labelId of {train_name}, which is not scored"
    return LabelSpace(label_format, space_names, drivable, truth, accepted, prediction, note, ignored)


def _cityscapes_table(names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Cityscapes label id -> evaluated class id, and the evaluated class names.

    Train classes match spec classes by name, else by train-id order for a 19-class spec; train classes
    the spec lacks are appended after the spec's classes, so all 19 are scored.
    """
    index = {_normalise(n): i for i, n in enumerate(names)}
    by_name = {tid: index.get(_normalise(n)) for tid, n in enumerate(CITYSCAPES_TRAIN_NAMES)}
    matched = {tid: cid for tid, cid in by_name.items() if cid is not None}
    space_names = names
    if matched:
        missing = [t for t in by_name if t not in matched]
        note = "Cityscapes train classes matched to the spec by name"
        if missing:
            space_names += tuple(CITYSCAPES_TRAIN_NAMES[t] for t in missing)
            matched.update({t: len(names) + i for i, t in enumerate(missing)})
            note += (
                f"; not in the spec, scored all the same (never predicted): "
                f"{', '.join(CITYSCAPES_TRAIN_NAMES[t] for t in missing)}"
            )
        if len(space_names) >= VOID:
            raise SegPerceptionError(
                f"cityscapes-ids: {len(names)} spec classes and the {len(missing)} train classes the spec lacks "
                f"exceed {VOID - 1} classes"
            )
        others = [n for i, n in enumerate(names) if i not in matched.values()]
        if others:
            note += f"; spec classes that are no Cityscapes train class, not scored: {', '.join(others)}"
    elif len(names) == len(CITYSCAPES_TRAIN_NAMES):
        matched = {tid: tid for tid in range(len(names))}
        note = "no Cityscapes class names in the spec: its 19 classes are taken to be in train-id order"
    else:
        raise SegPerceptionError(
            f"cityscapes-ids needs a spec with the 19 Cityscapes train classes (by name, or 19 classes in "
            f"train-id order); this spec has {len(names)} classes: {', '.join(names)}; "
            "use --label-format index for ground truth already in the spec's class ids"
        )
    table = np.full(256, VOID, np.uint8)
    for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
        table[label_id] = matched[train_id]
    return table, space_names, note


def as_label_image(raw: np.ndarray) -> np.ndarray:
    """A 2-D uint8 label image from what an image reader returned (grey, 16-bit, or 3 equal channels)."""
    if raw.ndim == 3 and raw.shape[2] in (3, 4):
        rgb = raw[:, :, :3]
        if not (np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])):
            raise SegPerceptionError(
                "ground truth is a colour image; labels must be single-channel class ids "
                "(convert colour or palette PNGs to id images first)"
            )
        raw = rgb[:, :, 0]
    if raw.ndim != 2 or raw.dtype.kind not in "ui":
        raise SegPerceptionError(f"ground truth must be a 2-D integer image, got {raw.dtype} {raw.shape}")
    if raw.dtype != np.uint8:
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) > 255):
            raise SegPerceptionError(f"ground-truth values {int(raw.min())}..{int(raw.max())} do not fit 0..255")
        raw = raw.astype(np.uint8)
    return raw


# ------------------------------------------------------------------------------------------------
# Confusion matrices and scores


def check_same_size(truth: np.ndarray, prediction: np.ndarray, what: str = "ground truth") -> None:
    """Refuse ground truth whose size differs from the prediction's (never resize it silently)."""
    if truth.shape[:2] != prediction.shape[:2]:
        raise SegPerceptionError(
            f"{what} is {truth.shape[1]}x{truth.shape[0]} but the prediction is "
            f"{prediction.shape[1]}x{prediction.shape[0]}; ground truth must have the image's resolution"
        )


def confusion_matrix(truth: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_id: int = VOID) -> np.ndarray:
    """[K, K] int64 pixel counts (rows: truth, columns: prediction); truth == ignore_id is skipped.

    Truth ids other than the ignore id must be < K, and so must every prediction: an out-of-range id
    means the label format or the model spec is wrong, which is reported rather than counted.
    """
    check_same_size(truth, prediction)
    if truth.ndim != 2 or prediction.ndim != 2:
        raise SegPerceptionError(f"label images must be 2-D, got {truth.shape} and {prediction.shape}")
    k = int(num_classes)
    t = truth.ravel()
    p = prediction.ravel()
    keep = t != ignore_id
    if not keep.all():
        t, p = t[keep], p[keep]
    t = t.astype(np.intp)
    p = p.astype(np.intp)
    if t.size and int(t.max()) >= k:
        bad = np.unique(t[t >= k])[:8].tolist()
        raise SegPerceptionError(
            f"ground truth holds ids {bad} outside the {k} evaluated classes; check --label-format and --ignore-index"
        )
    if p.size and (int(p.max()) >= k or int(p.min()) < 0):
        bad = np.unique(p[(p >= k) | (p < 0)])[:8].tolist()
        raise SegPerceptionError(f"predictions hold ids {bad} outside the {k} classes of the model spec")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64, copy=False)


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den with NaN where den is 0 (a score that is undefined, not zero)."""
    num_a = np.asarray(num, np.float64)
    den_a = np.asarray(den, np.float64)
    out = np.full(np.broadcast(num_a, den_a).shape, np.nan)
    np.divide(num_a, den_a, out=out, where=den_a > 0)
    return out


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for classes in neither ground truth nor prediction."""
    tp = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    return _ratio(tp, union)


def mean_iou(confusion: np.ndarray, scored_ids: Sequence[int] | None = None) -> float:
    """Mean IoU over the scored classes present in ground truth or prediction (NaN when none is).

    This is cityscapesScripts' "classes" average: a class in neither ground truth nor prediction has no
    IoU (NaN) and is left out, not counted as 0. `scored_ids` None scores every class.
    """
    iou = per_class_iou(confusion)
    if scored_ids is not None:
        iou = iou[np.asarray(scored_ids, np.intp)]
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Correct pixels over counted pixels (ignored ground truth is not in the matrix: see LabelSpace)."""
    return float(_ratio(np.trace(confusion), confusion.sum()))


@dataclass(frozen=True)
class BinaryScores:
    """A two-class (positive vs rest) view of a confusion matrix; NaN when undefined."""

    iou: float
    precision: float
    recall: float


def binary_scores(confusion: np.ndarray, positive_ids: Sequence[int]) -> BinaryScores:
    """IoU, precision and recall of the union of `positive_ids` against everything else."""
    ids = np.asarray(sorted(set(positive_ids)), np.intp)
    if ids.size == 0:
        nan = float("nan")
        return BinaryScores(nan, nan, nan)
    tp = confusion[np.ix_(ids, ids)].sum()
    truth_pos = confusion[ids, :].sum()
    pred_pos = confusion[:, ids].sum()
    return BinaryScores(
        iou=float(_ratio(tp, truth_pos + pred_pos - tp)),
        precision=float(_ratio(tp, pred_pos)),
        recall=float(_ratio(tp, truth_pos)),
    )


@dataclass(frozen=True)
class Scores:
    """Everything derived from one confusion matrix; `per_class_iou` covers every class, scored or not."""

    class_names: tuple[str, ...]
    confusion: np.ndarray
    per_class_iou: np.ndarray
    miou: float
    pixel_accuracy: float
    drivable: BinaryScores
    scored_ids: tuple[int, ...] = ()

    @property
    def pixels(self) -> int:
        return int(self.confusion.sum())

    @property
    def scored_names(self) -> tuple[str, ...]:
        return tuple(self.class_names[i] for i in self.scored_ids)

    @property
    def ignored_names(self) -> tuple[str, ...]:
        return tuple(n for i, n in enumerate(self.class_names) if i not in self.scored_ids)

    @property
    def scored_iou(self) -> np.ndarray:
        """Per-class IoU of the scored classes, in `scored_names` order."""
        return self.per_class_iou[np.asarray(self.scored_ids, np.intp)]


def scores(
    confusion: np.ndarray,
    class_names: Sequence[str],
    drivable_ids: Sequence[int],
    scored_ids: Sequence[int] | None = None,
) -> Scores:
    """Per-class IoU, mIoU, pixel accuracy and drivable IoU/precision/recall of a confusion matrix.

    `scored_ids` (default: every class) are the classes in the mean and the tables.
    """
    names = tuple(class_names)
    if confusion.shape != (len(names), len(names)):
        raise SegPerceptionError(f"confusion matrix {confusion.shape} does not match {len(names)} class names")
    scored = tuple(range(len(names))) if scored_ids is None else tuple(scored_ids)
    return Scores(
        class_names=names,
        confusion=confusion,
        per_class_iou=per_class_iou(confusion),
        miou=mean_iou(confusion, scored),
        pixel_accuracy=pixel_accuracy(confusion),
        drivable=binary_scores(confusion, drivable_ids),
        scored_ids=scored,
    )

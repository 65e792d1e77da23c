"""Labelled frames for `eval`: images found in a directory and their ground truth matched by file stem.

Ground truth is matched to images by file stem: ``<stem>.png``, ``<stem>_labels.png``, Cityscapes'
``<city_seq_frame>_gtFine_labelIds.png`` for ``<city_seq_frame>_leftImg8bit.png``, or BDD100K's
``<stem>_drivable_id.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.image_files import IMAGE_SUFFIXES, input_images

LOG = logging.getLogger(__name__)
# Files written next to frames by `infer`, `synth` and data sets: never frames themselves.
GROUND_TRUTH_STEMS = ("_labelIds", "_drivable_id")  # besides what infer writes (core.image_files)


@dataclass(frozen=True)
class LabelledFrame:
    """An image and its ground-truth label image."""

    stem: str
    image: Path
    labels: Path


def list_images(directory: Path) -> list[Path]:
    """Frames in a directory, sorted by name; label and overlay images written beside them are skipped."""
    if not directory.is_dir():
        raise SegPerceptionError(f"--images {directory} is not a directory")
    images = input_images(directory, also_skip=GROUND_TRUTH_STEMS)
    if not images:
        raise SegPerceptionError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    return images


def label_candidates(image: Path, labels_dir: Path) -> list[Path]:
    """Where an image's ground truth may be, in order of preference."""
    stem = image.stem
    names = [f"{stem}.png", f"{stem}_labels.png", f"{stem}_drivable_id.png"]
    if stem.endswith("_leftImg8bit"):
        names.append(f"{stem.removesuffix('_leftImg8bit')}_gtFine_labelIds.png")
    return [labels_dir / n for n in names]


def match_ground_truth(images_dir: Path, labels_dir: Path) -> tuple[list[LabelledFrame], list[str]]:
    """Images with their ground truth, and the stems of images that have none."""
    if not labels_dir.is_dir():
        raise SegPerceptionError(f"--labels {labels_dir} is not a directory")
    matched: list[LabelledFrame] = []
    missing: list[str] = []
    for image in list_images(images_dir):
        found = next(
            (c for c in label_candidates(image, labels_dir) if c.is_file() and c.resolve() != image.resolve()), None
        )
        if found is None:
            missing.append(image.stem)
        else:
            matched.append(LabelledFrame(image.stem, image, found))
    if not matched:
        raise SegPerceptionError(
            f"no image in {images_dir} has ground truth in {labels_dir} (looked for <stem>.png and <stem>_labels.png)"
        )
    if missing:
        LOG.warning("%d image(s) have no ground truth and are skipped: %s", len(missing), ", ".join(missing[:5]))
    return matched, missing


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SegPerceptionError(f"{path} is not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label_image(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise SegPerceptionError(f"{path} is not a readable label image")
    try:
        return metrics.as_label_image(raw)
    except SegPerceptionError as exc:
        raise SegPerceptionError(f"{path}: {exc}") from exc

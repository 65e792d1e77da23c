"""Image files: the camera frames of a directory, and images written whole or not at all (a temporary name
in the same directory, then an atomic rename)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.atomic_files import write_bytes_atomic
from seg_perception.core.errors import SegPerceptionError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
# What `infer` and `process` write beside a frame (<stem>_labels.png, <stem>_lane_mask.png, ...): never a frame.
DERIVED_IMAGE_STEMS = ("_labels", "_drivable", "_overlay", "_mask", "_confidence")


def input_images(directory: Path, also_skip: tuple[str, ...] = ()) -> list[Path]:
    """The camera frames in `directory`, sorted by name: image files, less the outputs written beside them
    (and stems ending in `also_skip`, e.g. ground-truth suffixes)."""
    skip = DERIVED_IMAGE_STEMS + also_skip
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(skip)
    )


class ImageWriteError(SegPerceptionError):
    """An output image or its directory could not be written; the message names the path and the cause."""


def make_output_dir(path: Path, option: str = "--out") -> Path:
    """Create `path` (and parents), or raise ImageWriteError naming the option and the cause."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(f"cannot create {option} {path}: {exc.strerror or exc}") from None
    return path


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode `image` by `path`'s suffix (cv2 channel order: BGR) in memory, then write it whole (a temporary
    name beside it, renamed into place): a failure to write names the file system's cause, not the encoder."""
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix, image)
    except cv2.error as exc:
        raise ImageWriteError(f"cannot write {path}: {str(exc).strip().splitlines()[-1]}") from None
    if not ok:
        raise ImageWriteError(f"cannot write {path}: the encoder refused it")
    try:
        write_bytes_atomic(path, encoded.data)
    except OSError as exc:
        raise ImageWriteError(f"cannot write {path}: {exc.strerror or exc}") from None

"""Image files written whole or not at all: a temporary name in the same directory, then an atomic rename."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.errors import SegPerceptionError


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
    """Encode `image` by `path`'s suffix (cv2 channel order: BGR) and rename it into place when complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")  # the suffix picks cv2's encoder
    try:
        written = cv2.imwrite(str(tmp), image)
        if not written:
            raise ImageWriteError(f"cannot write {path}: the encoder refused it")
        os.replace(tmp, path)
    except OSError as exc:
        raise ImageWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    except cv2.error as exc:
        raise ImageWriteError(f"cannot write {path}: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        if tmp.exists():
            tmp.unlink()

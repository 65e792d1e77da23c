"""Every command that reads a directory of frames (infer, quantize --calib, eval/compare --images) skips the
same outputs written beside them, per-head masks included, so an `infer` output directory is never read as
frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.quantization import image_files
from seg_perception.evaluation.ground_truth import list_images


def test_outputs_written_beside_frames_are_not_frames(tmp_path: Path) -> None:
    pixel = np.zeros((4, 4, 3), np.uint8)
    names = ["a.png", "b.jpg", "a_labels.png", "a_drivable.png", "a_overlay.png", "a_lane_mask.png"]
    names += ["a_color_mask.png", "a_confidence.png", "c_gtFine_labelIds.png", "notes.txt"]
    for name in names:
        cv2.imwrite(str(tmp_path / name), pixel) if name.endswith((".png", ".jpg")) else (tmp_path / name).touch()
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.jpg", "c_gtFine_labelIds.png"]
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.jpg"]  # ground truth is not a frame either

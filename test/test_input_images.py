"""Every command that reads a directory of frames (infer, quantize --calib, eval/compare --images) skips the
same outputs written beside them, per-head masks included, so an `infer` output directory is never read as
frames."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.image_files import ImageWriteError, make_output_dir, write_image
from seg_perception.core.quantization import image_files
from seg_perception.evaluation.ground_truth import (
    LabelledFrame,
    label_candidates,
    list_images,
    match_ground_truth,
    read_label_image,
    read_rgb,
)


def test_outputs_written_beside_frames_are_not_frames(tmp_path: Path) -> None:
    pixel = np.zeros((4, 4, 3), np.uint8)
    names = ["a.png", "b.jpg", "a_labels.png", "a_drivable.png", "a_overlay.png", "a_lane_mask.png"]
    names += ["a_color_mask.png", "a_confidence.png", "c_gtFine_labelIds.png", "notes.txt"]
    for name in names:
        cv2.imwrite(str(tmp_path / name), pixel) if name.endswith((".png", ".jpg")) else (tmp_path / name).touch()
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.jpg", "c_gtFine_labelIds.png"]
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.jpg"]  # ground truth is not a frame either


# --- eval's ground truth: matched by stem, read as class ids ---------------------------------------------------


def test_label_candidates_in_order_of_preference(tmp_path: Path) -> None:
    assert [p.name for p in label_candidates(Path("x/a.jpg"), tmp_path)] == [
        "a.png",
        "a_labels.png",
        "a_drivable_id.png",
    ]
    assert label_candidates(Path("x/aachen_000000_000019_leftImg8bit.png"), tmp_path) == [
        tmp_path / n
        for n in (
            "aachen_000000_000019_leftImg8bit.png",
            "aachen_000000_000019_leftImg8bit_labels.png",
            "aachen_000000_000019_leftImg8bit_drivable_id.png",
            "aachen_000000_000019_gtFine_labelIds.png",
        )
    ]
    # Only the exact Cityscapes suffix, at the end of the stem.
    assert len(label_candidates(Path("a_leftimg8bit.png"), tmp_path)) == 3
    assert [p.name for p in label_candidates(Path("_leftImg8bit_b.png"), tmp_path)][
        -1
    ] == "_leftImg8bit_b_drivable_id.png"


def test_match_ground_truth_pairs_by_stem_and_names_the_rest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    pixel = np.zeros((2, 2, 3), np.uint8)
    for name in ("a.png", "b.png", "c.png", "d_leftImg8bit.png", "e.png"):
        cv2.imwrite(str(images / name), pixel)
    for name in ("a_labels.png", "c.png", "d_gtFine_labelIds.png"):
        cv2.imwrite(str(labels / name), pixel[:, :, 0])
    with caplog.at_level(logging.WARNING):
        matched, missing = match_ground_truth(images, labels)
    assert matched == [
        LabelledFrame("a", images / "a.png", labels / "a_labels.png"),
        LabelledFrame("c", images / "c.png", labels / "c.png"),
        LabelledFrame("d_leftImg8bit", images / "d_leftImg8bit.png", labels / "d_gtFine_labelIds.png"),
    ]
    assert missing == ["b", "e"]
    assert caplog.messages == ["2 image(s) have no ground truth and are skipped: b, e"]


def test_an_image_is_never_its_own_ground_truth(tmp_path: Path) -> None:
    pixel = np.zeros((2, 2, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), pixel)
    with pytest.raises(SegPerceptionError) as err:
        match_ground_truth(tmp_path, tmp_path)
    assert str(err.value) == (
        f"no image in {tmp_path} has ground truth in {tmp_path} (looked for <stem>.png and <stem>_labels.png)"
    )
    cv2.imwrite(str(tmp_path / "a_labels.png"), pixel[:, :, 0])
    assert match_ground_truth(tmp_path, tmp_path) == (
        [LabelledFrame("a", tmp_path / "a.png", tmp_path / "a_labels.png")],
        [],
    )
    with pytest.raises(SegPerceptionError) as err:
        match_ground_truth(tmp_path, tmp_path / "none")
    assert str(err.value) == f"--labels {tmp_path / 'none'} is not a directory"


def test_label_images_are_read_unchanged_as_class_ids(tmp_path: Path) -> None:
    ids = np.array([[0, 7], [200, 255]], np.uint16)  # 16-bit ids: a colour read would keep only the high byte
    cv2.imwrite(str(tmp_path / "wide.png"), ids)
    assert np.array_equal(read_label_image(tmp_path / "wide.png"), ids.astype(np.uint8))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(SegPerceptionError) as err:
        read_label_image(tmp_path / "junk.png")
    assert str(err.value) == f"{tmp_path / 'junk.png'} is not a readable label image"
    cv2.imwrite(str(tmp_path / "big.png"), np.array([[0, 300]], np.uint16))
    with pytest.raises(SegPerceptionError) as err:
        read_label_image(tmp_path / "big.png")
    assert str(err.value) == f"{tmp_path / 'big.png'}: ground-truth values 0..300 do not fit 0..255"


def test_list_images_refuses_a_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SegPerceptionError) as err:
        list_images(tmp_path / "none")
    assert str(err.value) == f"--images {tmp_path / 'none'} is not a directory"
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SegPerceptionError) as err:
        list_images(tmp_path)
    assert str(err.value) == f"no images (.png, .jpg, .jpeg, .bmp, .ppm, .tif, .tiff) in {tmp_path}"


def test_frames_are_read_as_rgb(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "red.png"), np.array([[[0, 0, 255]]], np.uint8))  # cv2 writes BGR
    assert read_rgb(tmp_path / "red.png").tolist() == [[[255, 0, 0]]]
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(SegPerceptionError) as err:
        read_rgb(tmp_path / "junk.png")
    assert str(err.value) == f"{tmp_path / 'junk.png'} is not a readable image"


def test_the_warning_names_the_first_five_images_without_ground_truth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pixel = np.zeros((2, 2, 3), np.uint8)
    for name in ("a", "b", "c", "d", "e", "f", "g"):
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), pixel)
    cv2.imwrite(str(tmp_path / "a_labels.png"), pixel[:, :, 0])
    with caplog.at_level(logging.WARNING):
        assert match_ground_truth(tmp_path, tmp_path)[1] == ["b", "c", "d", "e", "f", "g"]
    assert caplog.messages == ["6 image(s) have no ground truth and are skipped: b, c, d, e, f"]


# --- the output side: directories made on demand, images written whole, refusals as one line ------------------


def test_an_output_directory_is_made_with_its_parents_and_may_exist_already(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "today" / "frames"
    assert make_output_dir(out) == out and out.is_dir()
    (out / "kept.png").write_bytes(b"x")
    assert make_output_dir(out, "--images-out") == out  # again: no error, nothing removed
    assert [p.name for p in out.iterdir()] == ["kept.png"]


def test_an_output_directory_that_cannot_be_made_names_the_option_path_and_cause(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError) as err:
        make_output_dir(tmp_path / "file")
    assert str(err.value) == f"cannot create --out {tmp_path / 'file'}: File exists"
    with pytest.raises(ImageWriteError) as err:
        make_output_dir(tmp_path / "file" / "sub", "--scenes")
    assert str(err.value) == f"cannot create --scenes {tmp_path / 'file' / 'sub'}: Not a directory"
    assert isinstance(err.value, SegPerceptionError)


def test_an_image_is_written_by_its_suffix_and_reads_back(tmp_path: Path) -> None:
    bgr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 9
    write_image(tmp_path / "a.png", bgr)
    write_image(str(tmp_path / "b.bmp"), bgr)  # type: ignore[arg-type]
    assert np.array_equal(cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED), bgr)
    assert np.array_equal(cv2.imread(str(tmp_path / "b.bmp"), cv2.IMREAD_UNCHANGED), bgr)
    assert (tmp_path / "b.bmp").read_bytes()[:2] == b"BM"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.bmp"]  # no temporary left


def test_an_image_that_cannot_be_written_is_one_line_naming_the_path_and_cause(tmp_path: Path) -> None:
    pixel = np.zeros((2, 2, 3), np.uint8)
    missing = tmp_path / "missing" / "a.png"
    with pytest.raises(ImageWriteError) as err:
        write_image(missing, pixel)  # encoded in memory, then the file system's own cause
    assert str(err.value) == f"cannot write {missing}: No such file or directory"
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError) as err:
        write_image(tmp_path / "dir.png", pixel)  # encoded, then the rename over a directory fails
    assert str(err.value) == f"cannot write {tmp_path / 'dir.png'}: Is a directory"
    with pytest.raises(ImageWriteError) as err:
        write_image(tmp_path / "a.txt", pixel)  # cv2 raises: no encoder for the suffix, nothing written
    message = str(err.value)
    assert message.startswith(f"cannot write {tmp_path / 'a.txt'}: OpenCV(") and "\n" not in message
    assert message.endswith("could not find encoder for the specified extension in function 'imencodeWithMetadata'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png"]  # no temporary left


def test_an_encoder_that_declines_is_named_as_the_cause_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cv2.imencode's contract: (False, ...) when the encoder declines the image (no case of it is known to
    this OpenCV build for 8-bit images, so the encoder is stood in for)."""
    monkeypatch.setattr(cv2, "imencode", lambda suffix, image: (False, np.zeros(0, np.uint8)))
    with pytest.raises(ImageWriteError) as err:
        write_image(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    assert str(err.value) == f"cannot write {tmp_path / 'a.png'}: the encoder refused it"
    assert list(tmp_path.iterdir()) == []

"""Multi-task nets: each mask comes from its own head's argmax, whatever paints over it in the labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import model_input, multi_task_spec, smooth_image

from seg_perception.core.model_spec import ModelSpec
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter, drivable_table

CAMERA_H, CAMERA_W = 180, 320


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return load_model_spec(multi_task_spec(tmp_path_factory.mktemp("multi_task")))


def head_argmax(spec: ModelSpec, frame: np.ndarray) -> dict[str, np.ndarray]:
    """Each head's own argmax at camera resolution: the model run bare, labels resized with nearest."""
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    x = model_input(frame, spec.input.width, spec.input.height, spec.input.mean, spec.input.std)
    outputs = session.run(None, {spec.input.name: x})
    names = [o.name for o in session.get_outputs()]
    return {
        name: cv2.resize(out[0].argmax(0).astype(np.uint8), (CAMERA_W, CAMERA_H), interpolation=cv2.INTER_NEAREST)
        for name, out in zip(names, outputs, strict=True)
    }


def test_drivable_mask_is_the_drivable_heads_argmax_not_the_merged_labels(spec: ModelSpec) -> None:
    with Segmenter(spec, backend="onnxruntime") as seg:
        for seed in range(3):
            frame = smooth_image(CAMERA_H, CAMERA_W, seed=seed)
            heads = head_argmax(spec, frame)
            r = seg.segment(frame, "RGB", OutputSelection(drivable=True))
            assert r.drivable is not None and r.masks == {}
            expected = np.where(heads["drivable"] == 1, 255, 0).astype(np.uint8)
            agreement = float(np.mean(r.drivable == expected))
            assert agreement >= 0.999, f"seed {seed}: drivable mask agrees with the head on {agreement:.4%}"
            # The fixture discriminates: the mask derived from the merged labels (lane painted over
            # drivable) differs from the head on lane pixels, on and off the road.
            from_labels = cv2.LUT(r.labels, drivable_table(spec))
            assert np.mean(from_labels != expected) > 0.01
            assert np.any((heads["lane"] == 1) & (heads["drivable"] == 1))
            assert np.any((heads["lane"] == 1) & (heads["drivable"] == 0))


def test_every_head_publishes_its_own_mask_and_labels_still_merge(spec: ModelSpec) -> None:
    frame = smooth_image(CAMERA_H, CAMERA_W, seed=7)
    heads = head_argmax(spec, frame)
    with Segmenter(spec, backend="onnxruntime") as seg:
        r = seg.segment(frame, "RGB", OutputSelection(drivable=False, masks=frozenset({"lane"})))
        assert set(r.masks) == {"lane"} and r.drivable is None
        assert r.masks["lane"].dtype == np.uint8 and set(np.unique(r.masks["lane"])) <= {0, 255}
        assert np.mean(r.masks["lane"] == np.where(heads["lane"] == 1, 255, 0)) >= 0.999
        lane_id, drivable_id = spec.class_names.index("lane"), spec.class_names.index("drivable")
        assert np.all(r.labels[r.masks["lane"] == 255] == lane_id)  # lane paints over drivable
        everything = seg.segment(frame, "RGB", OutputSelection(masks=True))
        assert set(everything.masks) == {"drivable", "lane"}
        assert np.array_equal(everything.masks["drivable"], everything.drivable)
        assert np.any(everything.labels[everything.masks["drivable"] == 255] == lane_id)
        assert np.any(everything.labels == drivable_id)


def test_labels_only_graph_has_no_mask_outputs(spec: ModelSpec) -> None:
    with Segmenter(spec, backend="onnxruntime") as seg:
        assert seg.backend_for(CAMERA_W, CAMERA_H, "RGB").output_names == ("labels",)
        with_masks = seg.backend_for(CAMERA_W, CAMERA_H, "RGB", masks=True).output_names
        assert with_masks == ("labels", "mask_drivable", "mask_lane")


def test_infer_writes_a_png_per_head_mask(spec: ModelSpec, tmp_path: Path) -> None:
    from seg_perception.cli import main

    frame = smooth_image(CAMERA_H, CAMERA_W, seed=9)
    cv2.imwrite(str(tmp_path / "frame.png"), frame[..., ::-1])
    assert spec.spec_path is not None
    assert main(["infer", "--model", str(spec.spec_path), "--input", str(tmp_path / "frame.png"),
                 "--out", str(tmp_path / "out"), "--backend", "onnxruntime"]) == 0  # fmt: skip
    with Segmenter(spec, backend="onnxruntime") as seg:
        r = seg.segment(frame, "RGB", OutputSelection(drivable=True, masks=True))
        assert np.array_equal(cv2.imread(str(tmp_path / "out" / "frame_lane_mask.png"), 0), r.masks["lane"])
        assert np.array_equal(cv2.imread(str(tmp_path / "out" / "frame_drivable.png"), 0), r.drivable)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frame_drivable.png",
        "frame_labels.png",
        "frame_lane_mask.png",
        "frame_overlay.png",
    ]


def test_process_writes_every_head_mask_by_default(spec: ModelSpec, tmp_path: Path) -> None:
    from rosbags.rosbag2 import Reader

    from seg_perception.bag.bag_io import typestore
    from seg_perception.cli import main
    from seg_perception.synthetic.drive_bag import SyntheticCamera, write_synthetic_drive

    write_synthetic_drive(tmp_path / "in", 2, [SyntheticCamera("/cam/image")], width=160, height=96)
    assert spec.spec_path is not None
    args = ["process", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(spec.spec_path), "--copy-inputs"]
    assert main([*args, "--backend", "onnxruntime"]) == 0
    store, frames, masks = typestore(), [], []
    with Reader(tmp_path / "out") as reader:
        for conn, _, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == "/cam/image":
                frames.append((msg.header, np.asarray(msg.data, np.uint8).reshape(96, 160, 3)))
            elif conn.topic == "/cam/segmentation/lane_mask":
                masks.append((msg.header, np.asarray(msg.data, np.uint8).reshape(96, 160)))
        assert {c.topic for c in reader.connections} >= {"/cam/segmentation/drivable_mask", "/cam/segmentation/labels"}
    assert len(masks) == len(frames) == 2
    with Segmenter(spec, backend="onnxruntime") as seg:
        for (header, frame), (mask_header, mask) in zip(frames, masks, strict=True):
            assert mask_header == header
            assert np.array_equal(mask, seg.segment(frame, "RGB", OutputSelection(masks=True)).masks["lane"])
    bad = ["process", str(tmp_path / "in"), str(tmp_path / "bad"), "--model", str(spec.spec_path)]
    assert main([*bad, "--outputs", "labels,road_mask"]) == 2  # not a mask the spec declares

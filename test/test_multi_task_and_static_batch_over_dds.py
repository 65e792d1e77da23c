"""Real model shapes in the node over DDS: a multi-task net's per-head masks, and a static-batch export
serving several cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import (
    THREE_CAMERAS,
    NodeProcess,
    Probe,
    image_msg,
    msg_array,
    stamp_ns,
    three_camera_node,
    unique_domain_id,
)
from sensor_msgs.msg import Image
from tiny_models import TINY_CLASSES, multi_task_spec, segformer_like_spec, smooth_image, static_batch_spec

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter

W, H = 160, 96


def _answer(probe: Probe, topic: str, stamp: int) -> Image | None:
    return next((m for m in probe.messages(topic) if stamp_ns(m) == stamp), None)


def test_lane_mask_is_published_with_the_input_header(tmp_path: Path) -> None:
    spec_path = multi_task_spec(tmp_path)
    domain = unique_domain_id()
    probe = Probe(domain)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
    probe.node.create_subscription(Image, "segmentation/lane_mask", probe._recorder("lane_mask"), qos)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime"})
    try:
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        probe.wait_until(lambda: probe.node.count_publishers("/camera/segmentation/lane_mask") > 0, 20, "lane_mask")
        frame = smooth_image(H, W, seed=4)
        stamp = 1_234_567_890_123
        probe.image_pub.publish(image_msg(frame, "rgb8", stamp, frame_id="front_optical"))
        probe.wait_until(
            lambda: (
                _answer(probe, "lane_mask", stamp) is not None and _answer(probe, "drivable_mask", stamp) is not None
            ),
            20,
            "lane_mask and drivable_mask",
        )
        lane, drivable = _answer(probe, "lane_mask", stamp), _answer(probe, "drivable_mask", stamp)
        assert lane is not None and drivable is not None
        assert lane.header.frame_id == "front_optical" and lane.encoding == "mono8"
        assert (lane.height, lane.width) == (H, W)
        with Segmenter(load_model_spec(spec_path), backend="onnxruntime") as seg:
            expected = seg.segment(frame, "RGB", OutputSelection(drivable=True, masks=True))
            assert np.array_equal(msg_array(lane), expected.masks["lane"])
            assert np.array_equal(msg_array(drivable), expected.drivable)  # from the drivable head
            assert np.any(expected.masks["lane"] == 255)
    finally:
        node.stop()
        probe.close()


@pytest.mark.parametrize(
    ("export", "diagnosed_batch"),
    [
        ("static", "fixed 1"),
        # HF SegFormer exported with dynamic_axes: a symbolic input batch that its traced reshapes fix at 1
        ("traced", "fixed 1 (the input batch is symbolic but the graph's reshapes fix 1)"),
    ],
)
def test_multi_camera_node_with_a_static_batch_model_answers_every_camera(
    tmp_path: Path, export: str, diagnosed_batch: str
) -> None:
    if export == "static":
        spec_path = static_batch_spec(tmp_path, TINY_CLASSES, batch=1)
    else:
        spec_path = segformer_like_spec(tmp_path, TINY_CLASSES, traced=True)
    domain = unique_domain_id()
    cams = THREE_CAMERAS
    with three_camera_node(domain, spec_path) as (node, probe):
        frames = {c: smooth_image(H, W, seed=i) for i, c in enumerate(cams)}
        for k in range(4):
            for i, cam in enumerate(cams):
                probe.image_pubs[cam].publish(image_msg(frames[cam], "rgb8", 1_000 + 10 * k + i))
            probe.wait_until(
                lambda k=k: all(_answer(probe, f"{c}labels", 1_000 + 10 * k + i) for i, c in enumerate(cams)),
                20,
                f"every camera answered in round {k}",
            )
        with Segmenter(load_model_spec(spec_path), backend="onnxruntime") as seg:
            for i, cam in enumerate(cams):
                got = _answer(probe, f"{cam}labels", 1_030 + i)
                assert got is not None
                assert np.array_equal(msg_array(got), seg.segment(frames[cam]).labels), cam

        def diagnosed() -> bool:
            return any(
                {kv.key: kv.value for kv in d.status[0].values}.get("batch") == diagnosed_batch
                for d in probe.messages("diagnostics")
            )

        probe.wait_until(diagnosed, 10, f"diagnostics saying 'batch: {diagnosed_batch}'")
        assert "segmentation failed" not in node.output

"""The real node in a subprocess, talked to over real Fast DDS on an isolated localhost domain."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from ros_harness import NodeProcess, Probe, image_msg, msg_array, node_with_probe, stamp_ns, unique_domain_id
from sensor_msgs.msg import CameraInfo, CompressedImage
from tiny_models import TINY_CLASSES, smooth_image

from seg_perception.core.image_codec import encode_compressed
from seg_perception.pipeline import ALL_OUTPUTS, Segmenter

W, H = 320, 180


@pytest.fixture(scope="module")
def raw_node(spec_path: Path) -> Iterator[tuple[NodeProcess, Probe]]:
    params = {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.5}
    with node_with_probe(unique_domain_id(1), params) as pair:
        yield pair


def _send_and_collect(probe: Probe, msg: object, stamp: int, timeout: float = 15.0) -> dict[str, object]:
    probe.clear()
    probe.image_pub.publish(msg)

    def all_arrived() -> bool:
        return all(
            any(stamp_ns(m) == stamp for m in probe.messages(t))
            for t in ("labels", "drivable_mask", "overlay", "color_mask", "confidence")
        )

    probe.wait_until(all_arrived, timeout, f"outputs for stamp {stamp}")
    return {
        t: next(m for m in probe.messages(t) if stamp_ns(m) == stamp)
        for t in ("labels", "drivable_mask", "overlay", "color_mask", "confidence")
    }


def _expected(segmenter: Segmenter, rgb: np.ndarray) -> dict[str, np.ndarray]:
    r = segmenter.segment(np.ascontiguousarray(rgb), "RGB", ALL_OUTPUTS)
    assert r.drivable is not None and r.color_mask is not None and r.overlay is not None and r.confidence is not None
    return {
        "labels": r.labels.copy(),
        "drivable_mask": r.drivable.copy(),
        "color_mask": r.color_mask.copy(),
        "overlay": r.overlay.copy(),
        "confidence": r.confidence.copy(),
    }


def _check(outputs: dict[str, object], expected: dict[str, np.ndarray], stamp: int, frame_id: str) -> None:
    encodings = {
        "labels": "mono8",
        "drivable_mask": "mono8",
        "confidence": "mono8",
        "overlay": "rgb8",
        "color_mask": "rgb8",
    }
    for topic, msg in outputs.items():
        assert stamp_ns(msg) == stamp, topic
        assert msg.header.frame_id == frame_id, topic  # type: ignore[attr-defined]
        assert msg.encoding == encodings[topic], topic  # type: ignore[attr-defined]
        assert (msg.height, msg.width) == (H, W), topic  # type: ignore[attr-defined]
        got = msg_array(msg)  # type: ignore[arg-type]
        assert np.array_equal(got, expected[topic]), f"{topic}: {np.mean(got != expected[topic]):.4f} differ"
    assert set(np.unique(msg_array(outputs["drivable_mask"]))) <= {0, 255}  # type: ignore[arg-type]


def test_rgb8_outputs_equal_segmenter_and_carry_header(
    raw_node: tuple[NodeProcess, Probe], segmenter: Segmenter
) -> None:
    _, probe = raw_node
    rgb = smooth_image(H, W, seed=11)
    stamp = 1_700_000_000_123_456_789
    out = _send_and_collect(probe, image_msg(rgb, "rgb8", stamp, "cam_front_optical"), stamp)
    _check(out, _expected(segmenter, rgb), stamp, "cam_front_optical")


def test_bgr8_with_padded_step(raw_node: tuple[NodeProcess, Probe], segmenter: Segmenter) -> None:
    _, probe = raw_node
    rgb = smooth_image(H, W, seed=12)
    stamp = 1_700_000_001_000_000_000
    msg = image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", stamp, "cam_left", step=W * 3 + 64)
    _check(_send_and_collect(probe, msg, stamp), _expected(segmenter, rgb), stamp, "cam_left")


def test_mono8(raw_node: tuple[NodeProcess, Probe], segmenter: Segmenter) -> None:
    _, probe = raw_node
    gray = cv2.cvtColor(smooth_image(H, W, seed=13), cv2.COLOR_RGB2GRAY)
    stamp = 1_700_000_002_000_000_000
    out = _send_and_collect(probe, image_msg(gray, "mono8", stamp), stamp)
    _check(out, _expected(segmenter, np.repeat(gray[..., None], 3, axis=2)), stamp, "camera_front")


def test_yuv422_uyvy(raw_node: tuple[NodeProcess, Probe], segmenter: Segmenter) -> None:
    _, probe = raw_node
    rgb = smooth_image(H, W, seed=14)
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    uyvy = np.empty((H, W, 2), np.uint8)  # U0 Y0 V0 Y1 macropixels
    uyvy[:, :, 1] = yuv[:, :, 0]
    uyvy[:, 0::2, 0] = yuv[:, 0::2, 1]
    uyvy[:, 1::2, 0] = yuv[:, 0::2, 2]
    stamp = 1_700_000_003_000_000_000
    out = _send_and_collect(probe, image_msg(uyvy, "yuv422", stamp), stamp)
    decoded = cv2.cvtColor(uyvy, cv2.COLOR_YUV2RGB_UYVY)
    _check(out, _expected(segmenter, decoded), stamp, "camera_front")


def test_camera_info_is_scaled_and_restamped(raw_node: tuple[NodeProcess, Probe]) -> None:
    _, probe = raw_node
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", 1)
    probe.wait_for_subscribers(info_pub)
    info = CameraInfo()
    info.width, info.height = W, H
    info.k = [200.0, 0.0, 160.0, 0.0, 200.0, 90.0, 0.0, 0.0, 1.0]
    info.p = [200.0, 0.0, 160.0, 0.0, 0.0, 200.0, 90.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info_pub.publish(info)
    time.sleep(0.3)
    stamp = 1_700_000_004_000_000_000
    _send_and_collect(probe, image_msg(smooth_image(H, W, seed=15), "rgb8", stamp), stamp)
    probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("camera_info")), 10, "camera_info")
    out = next(m for m in probe.messages("camera_info") if stamp_ns(m) == stamp)
    assert (out.width, out.height) == (W, H)  # output_resolution=input: intrinsics unchanged
    assert list(out.k) == list(info.k)
    assert out.header.frame_id == "camera_front"


def test_legend_is_latched(raw_node: tuple[NodeProcess, Probe]) -> None:
    _, probe = raw_node
    probe.wait_until(lambda: bool(probe.messages("legend")), 10, "legend")
    legend = probe.messages("legend")[-1]
    assert legend.encoding == "rgb8" and legend.height == 28 * len(TINY_CLASSES)


def _diagnostic_values(probe: Probe) -> dict[str, str]:
    diags = probe.messages("diagnostics")
    return {kv.key: kv.value for kv in diags[-1].status[0].values} if diags else {}


def test_burst_leaves_no_backlog_and_drops_are_reported(raw_node: tuple[NodeProcess, Probe]) -> None:
    _, probe = raw_node
    frame = smooth_image(H, W, seed=16)
    # One answered frame first: the node then knows our publication sequence numbers and the counters settle.
    first = 1_700_000_099_000_000_000
    probe.image_pub.publish(image_msg(frame, "rgb8", first))
    probe.wait_until(lambda: any(stamp_ns(m) == first for m in probe.messages("labels")), 10, "the first frame")
    time.sleep(0.6)  # a diagnostics period
    before = _diagnostic_values(probe)
    probe.clear()
    stamps = [1_700_000_100_000_000_000 + i * 33_000_000 for i in range(50)]
    for s in stamps:
        probe.image_pub.publish(image_msg(frame, "rgb8", s))
    probe.wait_until(lambda: any(stamp_ns(m) == stamps[-1] for m in probe.messages("labels")), 20, "last frame")
    time.sleep(1.0)  # anything still queued would arrive now
    got = [stamp_ns(m) for m in probe.messages("labels")]
    assert len(got) < len(stamps)  # 50 frames at once: the node skips, it does not queue
    assert got[-1] == stamps[-1]
    assert got == sorted(got)

    def counted() -> bool:  # every frame that was not answered is reported as dropped
        now = _diagnostic_values(probe)
        dropped = int(now.get("frames_dropped", 0)) - int(before["frames_dropped"])
        return dropped == len(stamps) - len(got)

    probe.wait_until(counted, 5, "diagnostics counting exactly the skipped frames")
    values = _diagnostic_values(probe)
    assert values["backend"].startswith("onnxruntime") and values["model"] == "m"
    assert int(values["frames_processed"]) - int(before["frames_processed"]) == len(got)


def test_compressed_transport_and_sigterm(spec_path: Path, segmenter: Segmenter) -> None:
    domain = unique_domain_id(2)
    probe = Probe(domain)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime", "input_transport": "compressed"})
    try:
        node.wait_for_log("subscribed to /camera/image/compressed")
        probe.wait_for_subscribers(probe.compressed_pub)
        probe.wait_for_node_outputs()
        rgb = smooth_image(H, W, seed=17)
        fmt, data = encode_compressed(rgb, "RGB", "jpeg", quality=95)
        msg = CompressedImage(format=fmt, data=data)
        stamp = 1_700_000_200_000_000_000
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = "cam_jpeg"
        probe.compressed_pub.publish(msg)
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("labels")), 15, "labels")
        labels = next(m for m in probe.messages("labels") if stamp_ns(m) == stamp)
        decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert labels.header.frame_id == "cam_jpeg"
        assert np.array_equal(msg_array(labels), _expected(segmenter, decoded)["labels"])
    finally:
        took = node.stop(signal.SIGTERM)
        probe.close()
    assert node.proc.returncode == 0, node.output
    assert took < 2.0


# Bad parameters and models: test_bad_configuration_fails_fast.py.


def test_auto_qos_matches_a_best_effort_camera(spec_path: Path, segmenter: Segmenter) -> None:
    """A best-effort camera (most drivers) is matched by qos_reliability auto, and frames arrive whole
    thanks to the large shared-memory Fast DDS profile."""
    domain = unique_domain_id(4)
    probe = Probe(domain, input_reliable=False)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime"})
    try:
        node.wait_for_log("subscribed to /camera/image (Image, best_effort")
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        rgb = smooth_image(H, W, seed=31)
        for k in range(3):  # best effort may lose the first frame while matching completes
            probe.image_pub.publish(image_msg(rgb, "rgb8", 5_000 + k))
            time.sleep(0.2)
        probe.wait_until(lambda: bool(probe.messages("labels")), 10, "labels from a best-effort camera")
        assert np.array_equal(msg_array(probe.messages("labels")[-1]), _expected(segmenter, rgb)["labels"])
    finally:
        node.stop()
        probe.close()

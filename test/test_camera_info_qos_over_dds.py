"""camera_info is matched to its publisher as the image is: a camera driver that publishes CameraInfo best effort
(sensor-data QoS, as many do) still gets segmentation/camera_info; forcing reliable refuses it, loudly."""

from __future__ import annotations

from pathlib import Path

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, image_msg, stamp_ns, unique_domain_id
from sensor_msgs.msg import CameraInfo
from tiny_models import smooth_image

W, H = 160, 90
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def _camera_info() -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = "driver_frame"
    info.width, info.height = W, H
    info.k = [100.0, 0.0, 80.0, 0.0, 100.0, 45.0, 0.0, 0.0, 1.0]
    info.p = [100.0, 0.0, 80.0, 0.0, 0.0, 100.0, 45.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _drive(probe: Probe, info_pub: object, frames: int) -> list[int]:
    """As a driver does: camera_info and an image per frame, each frame once the previous is answered."""
    frame = smooth_image(H, W, seed=41)
    sent: list[int] = []
    for k in range(frames):
        stamp = 1_700_000_500_000_000_000 + k
        info_pub.publish(_camera_info())  # type: ignore[attr-defined]
        probe.image_pub.publish(image_msg(frame, "rgb8", stamp, "optical"))
        sent.append(stamp)
        probe.wait_until(lambda s=stamp: any(stamp_ns(m) == s for m in probe.messages("labels")), 10, "labels")
        if any(stamp_ns(m) in sent for m in probe.messages("camera_info")):
            break
    return sent


def test_best_effort_camera_info_is_matched_by_auto(spec_path: Path) -> None:
    domain = unique_domain_id()
    probe = Probe(domain, outputs=("labels",))
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", BEST_EFFORT)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime"})
    try:
        node.wait_for_log("subscribed to /camera/camera_info (CameraInfo, best_effort)")
        probe.wait_for_subscribers(info_pub)
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        sent = _drive(probe, info_pub, 40)
        probe.wait_until(lambda: any(stamp_ns(m) in sent for m in probe.messages("camera_info")), 5, "camera_info")
        out = next(m for m in probe.messages("camera_info") if stamp_ns(m) in sent)
        assert out.header.frame_id == "optical" and (out.width, out.height) == (W, H)
        assert list(out.k) == list(_camera_info().k)
        assert "incompatible QoS" not in node.output
    finally:
        node.stop()
        probe.close()
    assert node.proc.returncode == 0, node.output


def test_forced_reliable_camera_info_refuses_a_best_effort_driver_and_says_which_parameter(spec_path: Path) -> None:
    domain = unique_domain_id()
    probe = Probe(domain, outputs=("labels",))
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", BEST_EFFORT)
    params = {"model": str(spec_path), "backend": "onnxruntime", "camera_info_qos_reliability": "reliable"}
    node = NodeProcess(domain, params)
    try:
        node.wait_for_log("subscribed to /camera/camera_info (CameraInfo, reliable)")
        node.wait_for_log("set parameter camera_info_qos_reliability to best_effort or auto")
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        sent = _drive(probe, info_pub, 5)
        assert len(sent) == 5  # every frame answered, none with camera_info
        assert not probe.poll_until(lambda: bool(probe.messages("camera_info")), 1.0)
    finally:
        node.stop()
        probe.close()

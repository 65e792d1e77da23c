"""What the node says about itself, over real DDS: the backend `auto` chose and why (log and
/diagnostics), incompatible input QoS, frames of several publishers, and outputs and the grid left
uncomputed while nobody subscribes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nav_msgs.msg import OccupancyGrid
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, image_msg, stamp_ns, unique_domain_id
from sensor_msgs.msg import CameraInfo, Image
from tiny_models import smooth_image

from seg_perception.backends import resolve_backend_name
from seg_perception.ros.diagnostics_keys import LOSS_NOT_COUNTED, expected_keys
from seg_perception.ros.distro import distro_name, installed_rclpy_version

W, H = 160, 96
OPTIONAL_OUTPUTS = ("drivable_mask", "overlay", "color_mask", "confidence")


def test_auto_backend_choice_and_incompatible_qos_are_reported(spec_path: Path) -> None:
    domain = unique_domain_id(31)
    probe = Probe(domain, input_reliable=False)  # a best-effort camera ...
    node = NodeProcess(
        domain,
        # ... and a node that insists on reliable input: they cannot match.
        {"model": str(spec_path), "backend": "auto", "qos_reliability": "reliable", "diagnostics_period": 0.2},
    )
    try:
        name, reason = resolve_backend_name("auto")  # what auto picks in this environment, and why
        node.wait_for_log(f"backend {name}: {reason}")
        node.wait_for_log("incompatible QoS on image (policy rmw_qos_policy_kind_t.RMW_QOS_POLICY_RELIABILITY)")
        assert "set parameter qos_reliability to best_effort or auto" in node.output
        probe.wait_until(lambda: bool(probe.diagnostics()), 20, "diagnostics")
        values = probe.diagnostics()
        assert values["backend_requested"] == "auto"
        assert values["engine"] == name and values["backend"].startswith(name)
        assert values["backend_reason"] == reason
        if name == "onnxruntime":
            assert reason.startswith("TensorRT not chosen: ")
    finally:
        node.stop()
        probe.close()
    assert node.proc.returncode == 0, node.output


def test_outputs_and_grid_nobody_subscribes_to_are_not_computed(spec_path: Path) -> None:
    domain = unique_domain_id(32)
    probe = Probe(domain, outputs=("labels",))
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.2})
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", 1)
    frame = smooth_image(H, W, seed=41)
    sent = 0

    def send_and_wait() -> None:
        nonlocal sent
        stamp = 7_000 + sent
        sent += 1
        probe.image_pub.publish(image_msg(frame, "rgb8", stamp))
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("labels")), 10, f"labels {stamp}")

    def computed_after(frames: int) -> dict[str, int]:
        probe.wait_until(lambda: probe.counter("frames_processed") == frames, 10, f"diagnostics of {frames} frames")
        v = probe.diagnostics()
        return {k.removeprefix("computed."): int(x) for k, x in v.items() if k.startswith("computed.")} | {
            "grids": int(v["grids_published"])
        }

    try:
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_subscribers(info_pub)
        probe.wait_for_node_outputs()
        info = CameraInfo(width=W, height=H)
        info.k = [120.0, 0.0, W / 2, 0.0, 120.0, H / 2, 0.0, 0.0, 1.0]
        info_pub.publish(info)  # the grid could be computed: only the missing subscriber stops it
        for _ in range(3):
            send_and_wait()
        assert computed_after(3) == {"labels": 3, **dict.fromkeys(OPTIONAL_OUTPUTS, 0), "grids": 0}

        # Somebody subscribes to the overlay and the grid: from the next frame on, exactly those are computed.
        probe.record(Image, "segmentation/overlay", "overlay")
        probe.record(OccupancyGrid, "segmentation/drivable_grid", "grid", depth=5)
        for _ in range(50):
            send_and_wait()
            if probe.poll_until(lambda: bool(probe.messages("overlay") and probe.messages("grid")), 0.5):
                break
        probe.wait_until(lambda: bool(probe.messages("overlay") and probe.messages("grid")), 10, "overlay and grid")
        counts = computed_after(sent)
        assert counts["labels"] == sent
        assert 1 <= counts["overlay"] <= sent - 3 and 1 <= counts["grids"] <= sent - 3
        assert {k: counts[k] for k in ("drivable_mask", "color_mask", "confidence")} == dict.fromkeys(
            ("drivable_mask", "color_mask", "confidence"), 0
        )
    finally:
        node.stop()
        probe.close()


def test_frames_of_two_publishers_are_counted_or_said_not_counted(spec_path: Path) -> None:
    """Two cameras' drivers publishing on one input topic. Kilted's rclpy names each frame's publisher, so
    losses are counted (none here: each frame is answered before the next is sent); Jazzy's names none, so
    /diagnostics says losses are not counted for those frames instead of a 0 that would mean "nothing was
    lost", and counts again once the second driver is gone. The count stays an integer throughout."""
    domain = unique_domain_id(33)
    probe = Probe(domain, outputs=("labels",))
    second = probe.node.create_publisher(Image, "image", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.2})
    frame = smooth_image(H, W, seed=43)
    jazzy = distro_name({}, installed_rclpy_version()) == "jazzy"

    def send(stamp: int, publisher: Any) -> None:
        publisher.publish(image_msg(frame, "rgb8", stamp))
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("labels")), 10, f"{stamp}")

    try:
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_subscribers(second)
        probe.wait_for_node_outputs()
        for k in range(6):
            send(9_000 + k, probe.image_pub if k % 2 else second)
        probe.wait_until(lambda: probe.diagnostics().get("frames_received") == "6", 10, "diagnostics of 6 frames")
        values = probe.diagnostics()
        probe.node.destroy_publisher(second)  # one driver left: the node counts its losses again
        received, late = 6, 0  # late: frames sent before the node's graph shows one publisher (discovery)
        while True:
            send(9_100 + late, probe.image_pub)
            received += 1
            n = str(received)
            probe.wait_until(lambda n=n: probe.diagnostics().get("frames_received") == n, 10, f"diagnostics of {n}")
            if probe.diagnostics()["frames_lost_in_transport.counted"] == "true" or late == 20:
                break
            late += 1
        after = probe.diagnostics()
    finally:
        node.stop()
        probe.close()
    assert values["frames_lost_in_transport"] == "0", values  # an integer, whatever the distribution
    if jazzy:
        assert values["frames_lost_in_transport.counted"] == "false", values
        assert values["frames_lost_in_transport.not_counted_frames"] == "6", values
        assert list(values) == expected_keys(enabled=[LOSS_NOT_COUNTED])  # the generated reference's keys
    else:
        assert values["frames_lost_in_transport.counted"] == "true", values
        assert values["frames_lost_in_transport.not_counted_frames"] == "0", values
        assert list(values) == expected_keys()
    assert after["frames_lost_in_transport"] == "0", after
    assert after["frames_lost_in_transport.counted"] == "true", after
    assert after["frames_lost_in_transport.not_counted_frames"] == (str(6 + late) if jazzy else "0"), after
    assert late <= (5 if jazzy else 0), late
    assert list(after) == expected_keys()

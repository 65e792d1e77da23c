"""Managed lifecycle over the real lifecycle services, and several cameras batched in one node."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
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
from tiny_models import smooth_image

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import Segmenter

W, H = 160, 96


def _call(probe: Probe, client: object, request: object) -> object:
    future = client.call_async(request)  # type: ignore[attr-defined]
    probe.wait_until(future.done, 10, f"{type(request).__name__} response")
    return future.result()


def _state(probe: Probe, get_state: object) -> int:
    return int(_call(probe, get_state, GetState.Request()).current_state.id)  # type: ignore[attr-defined]


def _transition(probe: Probe, change_state: object, transition: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition
    return bool(_call(probe, change_state, request).success)  # type: ignore[attr-defined]


def _answered(probe: Probe, stamp: int, topic: str = "labels") -> bool:
    return any(stamp_ns(m) == stamp for m in probe.messages(topic))


def test_lifecycle_transitions_over_services(spec_path: Path) -> None:
    domain = unique_domain_id(11)
    probe = Probe(domain)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime", "autostart": False})
    get_state = probe.node.create_client(GetState, "/camera/seg_perception/get_state")
    change_state = probe.node.create_client(ChangeState, "/camera/seg_perception/change_state")
    try:
        probe.wait_until(lambda: get_state.service_is_ready() and change_state.service_is_ready(), 30, "services")
        assert _state(probe, get_state) == State.PRIMARY_STATE_UNCONFIGURED
        assert probe.node.count_subscribers("/camera/image") == 0

        assert _transition(probe, change_state, Transition.TRANSITION_CONFIGURE)
        assert _state(probe, get_state) == State.PRIMARY_STATE_INACTIVE
        assert "warm-up on onnxruntime" in node.output  # configure loaded the model and backend
        assert probe.node.count_subscribers("/camera/image") == 0  # but nothing is subscribed yet

        assert _transition(probe, change_state, Transition.TRANSITION_ACTIVATE)
        assert _state(probe, get_state) == State.PRIMARY_STATE_ACTIVE
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        probe.image_pub.publish(image_msg(smooth_image(H, W, 1), "rgb8", 111))
        probe.wait_until(lambda: _answered(probe, 111), 10, "an answer while active")

        assert _transition(probe, change_state, Transition.TRANSITION_DEACTIVATE)
        assert _state(probe, get_state) == State.PRIMARY_STATE_INACTIVE
        # Sent at once, while the node's reader may still be matched: an inactive node must not answer it.
        probe.image_pub.publish(image_msg(smooth_image(H, W, 2), "rgb8", 222))
        probe.wait_until(lambda: probe.node.count_subscribers("/camera/image") == 0, 10, "unsubscribe")

        assert _transition(probe, change_state, Transition.TRANSITION_CLEANUP)
        assert _state(probe, get_state) == State.PRIMARY_STATE_UNCONFIGURED
        assert _transition(probe, change_state, Transition.TRANSITION_CONFIGURE)  # and back again
        assert _transition(probe, change_state, Transition.TRANSITION_ACTIVATE)
        probe.wait_for_subscribers(probe.image_pub)
        probe.image_pub.publish(image_msg(smooth_image(H, W, 3), "rgb8", 333))
        probe.wait_until(lambda: _answered(probe, 333), 10, "an answer after reconfiguring")
        assert not _answered(probe, 222)  # sent while inactive: never processed, not even after re-activation
    finally:
        node.stop()
        probe.close()
    assert node.proc.returncode == 0, node.output


def test_cameras_are_batched_and_keep_their_own_headers(spec_path: Path) -> None:
    domain = unique_domain_id(12)
    cams = THREE_CAMERAS
    with three_camera_node(domain, spec_path) as (_, probe):
        frames = {c: smooth_image(H, W, seed=i) for i, c in enumerate(cams)}
        for k in range(5):
            for i, cam in enumerate(cams):
                stamp = 1_000 + 10 * k + i
                probe.image_pubs[cam].publish(image_msg(frames[cam], "rgb8", stamp, frame_id=f"{cam[:-1]}_optical"))
            probe.wait_until(
                lambda k=k: all(_answered(probe, 1_000 + 10 * k + i, f"{c}labels") for i, c in enumerate(cams)),
                10,
                f"round {k}",
            )
        with Segmenter(load_model_spec(spec_path), backend="onnxruntime") as seg:
            for i, cam in enumerate(cams):
                msgs = probe.messages(f"{cam}labels")
                assert {m.header.frame_id for m in msgs} == {f"{cam[:-1]}_optical"}
                assert {stamp_ns(m) % 10 for m in msgs} == {i}  # each camera's outputs carry its own stamps
                assert np.array_equal(msg_array(msgs[-1]), seg.segment(frames[cam]).labels)

        def batched() -> bool:
            for diag in probe.messages("diagnostics"):
                values = {kv.key: kv.value for kv in diag.status[0].values}
                if float(values.get("mean_batch_size", 0)) > 1.0:
                    return True
            return False

        probe.wait_until(batched, 5, "diagnostics showing batches of more than one frame")
        names = {s.name for d in probe.messages("diagnostics") for s in d.status}
        assert names == {"seg_perception: front", "seg_perception: left", "seg_perception: right"}

        # Left and right fall silent: front is still answered, without waiting out the batch window each time
        # (a silent camera is not live, so no gather waits for it: the window never expires).
        def status(name: str) -> dict[str, str]:
            newest = probe.messages("diagnostics")[-1]
            found = next(s for s in newest.status if s.name == f"seg_perception: {name}")
            return {"message": found.message, **{kv.key: kv.value for kv in found.values}}

        probe.wait_until(
            lambda: all(status(c)["message"] == "no input frames" for c in ("left", "right")),
            20,
            "left and right reported silent (stale after 3 s, far past the 1 s liveness)",
        )
        processed, expired = int(status("front")["frames_processed"]), int(status("front")["batch_window_expired"])
        for k in range(10):
            stamp = 5_000 + k
            probe.image_pubs["front/"].publish(image_msg(frames["front/"], "rgb8", stamp))
            probe.wait_until(lambda s=stamp: _answered(probe, s, "front/labels"), 10, f"front frame {k}")
        probe.wait_until(lambda: int(status("front")["frames_processed"]) == processed + 10, 10, "diagnostics")
        assert int(status("front")["batch_window_expired"]) == expired  # no frame waited for a silent camera


def test_drivable_grid_over_dds(spec_path: Path) -> None:
    """The published grid equals an OpenCV projection of the node's labels (test/ground_reference.py).
    The grid is the only output subscribed (a planner wants nothing else): the node must still compute it."""
    from ground_reference import reference_grid
    from nav_msgs.msg import OccupancyGrid
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    from seg_perception.core.ground_grid import occupancy_table

    domain = unique_domain_id(13)
    probe = Probe(domain, outputs=(), record_camera_info=False)
    grids: list[OccupancyGrid] = []
    probe.node.create_subscription(
        OccupancyGrid,
        "segmentation/drivable_grid",
        grids.append,
        QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE),
    )
    # Every pose term non-zero: a sign or axis slip in any of them moves cells.
    pose = [0.5, 0.3, 1.4, 0.03, 0.08, 0.12]
    layout = (0.25, 80, 60, 0.0, -7.5, 18.0)
    node = NodeProcess(
        domain,
        {
            "model": str(spec_path),
            "backend": "onnxruntime",
            "grid_frame": "base_link",
            "grid_resolution": layout[0],
            "grid_width": layout[1],
            "grid_height": layout[2],
            "grid_origin_x": layout[3],
            "grid_origin_y": layout[4],
            "grid_max_range": layout[5],
            "mount_xyz_rpy": str(pose),
        },
    )
    info = CameraInfo(width=W, height=H)
    info.k = [120.0, 0.0, W / 2 + 0.5, 0.0, 120.0, H / 2 + 0.5, 0.0, 0.0, 1.0]
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", 1)
    frame = smooth_image(H, W, seed=21)
    try:
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_subscribers(info_pub)
        probe.wait_until(lambda: probe.node.count_publishers("/camera/segmentation/drivable_grid") > 0, 10, "grid")
        # A grid needs camera_info first; with no way to see when the node took it, resend both
        # (a fresh stamp each time) until a grid answers, instead of guessing a delay.
        sent: set[int] = set()
        deadline = time.monotonic() + 60
        while not any(stamp_ns(g) in sent for g in grids):
            assert time.monotonic() < deadline, f"no drivable grid for any of {len(sent)} frames in 60 s"
            sent.add(4242 + len(sent))
            info_pub.publish(info)
            probe.image_pub.publish(image_msg(frame, "rgb8", max(sent), frame_id="cam_optical"))
            answer_by = time.monotonic() + 3
            while time.monotonic() < answer_by and not any(stamp_ns(g) in sent for g in grids):
                time.sleep(0.02)
        grid = next(g for g in grids if stamp_ns(g) in sent)
        assert grid.header.frame_id == "base_link"
        assert (grid.info.width, grid.info.height, grid.info.resolution) == (80, 60, 0.25)
        assert (grid.info.origin.position.x, grid.info.origin.position.y) == (0.0, -7.5)
        spec = load_model_spec(spec_path)
        with Segmenter(spec, backend="onnxruntime") as seg:
            labels = seg.segment(frame).labels
        want, ambiguous = reference_grid(
            labels, occupancy_table(spec.drivable_ids, spec.num_classes), np.array(info.k), pose, layout
        )
        got = np.array(grid.data, np.int8).reshape(60, 80)
        assert ambiguous.sum() <= 5
        assert np.array_equal(got[~ambiguous], want[~ambiguous]), f"{(got != want).sum()} of 4800 cells differ"
        assert {-1, 0, 100} == set(np.unique(got).tolist())
    finally:
        node.stop()
        probe.close()

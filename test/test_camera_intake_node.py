"""The camera subscriptions live on a lean node of their own (ros/camera_intake.py): over DDS the intake
node subscribes to exactly the cameras' image and camera_info topics and offers no service, the lifecycle
node subscribes to none of them, a `__node:=` rename and a topic remapping given to the process still
resolve through the lifecycle node, and outputs keep the input header exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.context import Context
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, image_msg, stamp_ns, unique_domain_id
from sensor_msgs.msg import Image
from tiny_models import smooth_image

from seg_perception.core.frame_stats import FrameStats
from seg_perception.ros.camera_intake import INTAKE_SUFFIX, RUNNING, CameraIntake
from seg_perception.ros.messages import diagnostics_message

NAMESPACE = "/camera"
CAMERA_TOPICS = {f"{NAMESPACE}/{c}/{t}" for c in ("front", "left") for t in ("image_raw", "camera_info")}


def _topics(names_and_types: list[tuple[str, list[str]]]) -> set[str]:
    return {name for name, _ in names_and_types}


@contextmanager
def _intake_and_camera(offset: int) -> Iterator[tuple[CameraIntake, Node, list[str]]]:
    """A camera intake and a camera node in one fresh context (a domain of its own); the intake's on_error
    lines are the list. Closed (twice: close is idempotent), destroyed and shut down on the way out."""
    context = Context()
    rclpy.init(context=context, domain_id=unique_domain_id(offset))
    errors: list[str] = []
    intake = CameraIntake("unit", "/t", errors.append, context=context)
    camera = Node("camera", namespace="/t", context=context)
    try:
        yield intake, camera, errors
    finally:
        intake.close()
        intake.close()  # idempotent
        camera.destroy_node()
        rclpy.try_shutdown(context=context)


def test_intake_node_holds_only_the_camera_subscriptions_and_outputs_keep_the_header(spec_path: Path) -> None:
    domain_id = unique_domain_id(41)
    probe = Probe(domain_id, cameras=("front/", "left/"), outputs=("labels",), record_camera_info=False)
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "cameras": "[front,left]",
        "batch_window_ms": 0.0,
        "qos_reliability": "reliable",  # subscribe at once, without waiting for publishers to match
        "camera_info_qos_reliability": "reliable",
    }
    # Renamed and remapped as a launch file would: both must reach the subscriptions on the intake node.
    remaps = ["-r", "__node:=segmenter", "-r", "front/image:=front/image_raw", "-r", "left/image:=left/image_raw"]
    node = NodeProcess(domain_id, params, extra_ros_args=remaps)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    front = probe.node.create_publisher(Image, "front/image_raw", qos)
    try:
        probe.wait_for_subscribers(front, timeout=60)
        intake = "segmenter" + INTAKE_SUFFIX
        graph = probe.node

        def subscribed(name: str) -> set[str]:
            try:
                return _topics(graph.get_subscriber_names_and_types_by_node(name, NAMESPACE))
            except _rclpy.NodeNameNonExistentError:  # not discovered yet
                return set()

        probe.wait_until(lambda: subscribed(intake) == CAMERA_TOPICS, 30, f"{intake} subscribing to {CAMERA_TOPICS}")
        assert graph.get_service_names_and_types_by_node(intake, NAMESPACE) == []
        assert not subscribed("segmenter") & CAMERA_TOPICS  # the lifecycle node's executor waits on no frame
        services = _topics(graph.get_service_names_and_types_by_node("segmenter", NAMESPACE))
        assert f"{NAMESPACE}/segmenter/change_state" in services  # lifecycle stayed on the renamed node
        names = graph.get_node_names_and_namespaces()
        assert sorted(n for n, ns in names if ns == NAMESPACE and n != "probe") == ["segmenter", intake]

        probe.wait_for_node_outputs(timeout=30)
        stamp = 1_700_000_123_456_789_012
        front.publish(image_msg(smooth_image(180, 320, 0), "rgb8", stamp, frame_id="front_optical"))
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("front/labels")), 20, "labels")
        labels = next(m for m in probe.messages("front/labels") if stamp_ns(m) == stamp)
        assert labels.header.frame_id == "front_optical"
        assert (labels.header.stamp.sec, labels.header.stamp.nanosec) == divmod(stamp, 1_000_000_000)
        assert (labels.height, labels.width) == (180, 320)
    finally:
        node.stop()
        probe.close()


def test_intake_callbacks_run_on_its_own_thread_and_close_stops_it() -> None:
    """In one process with real rclpy: the intake node has no service, timer or client; a frame's callback
    runs on the intake thread while the calling thread spins nothing; close() ends the thread."""
    with _intake_and_camera(42) as (intake, camera, errors):
        seen: list[tuple[str, int]] = []
        arrived = threading.Event()

        def store(msg: bytes) -> None:
            seen.append((threading.current_thread().name, len(msg)))
            arrived.set()

        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        sub = intake.subscribe(Image, "/t/image", store, qos, raw=True)
        pub = camera.create_publisher(Image, "/t/image", qos)
        deadline = time.monotonic() + 20
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        msg = image_msg(np.zeros((4, 6, 3), np.uint8), "rgb8", 5)
        pub.publish(msg)
        assert arrived.wait(20), "the intake never called back"
        assert seen[0][0] == intake.thread_name == "seg_perception_intake"
        assert seen[0][1] > 4 * 6 * 3  # serialized bytes (raw=True), not a message
        assert [s.topic_name for s in intake.node.subscriptions] == ["/t/image"]
        assert not list(intake.node.services) and not list(intake.node.timers) and not list(intake.node.clients)
        intake.unsubscribe(sub)
        assert not list(intake.node.subscriptions)
    assert not any(t.name == "seg_perception_intake" and t.is_alive() for t in threading.enumerate())
    assert errors == []


def test_closing_the_intake_while_frames_flood_it_reports_no_error() -> None:
    """close() stops the spin thread before the executor and node are destroyed: opened and closed many times
    while a publisher floods the subscription, no 'camera intake stopped' line reaches on_error and no intake
    thread is left (rclpy's executor.shutdown(timeout_sec) does not wait for a spinning thread)."""
    domain_id = unique_domain_id(43)
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    errors: list[str] = []
    camera = Node("camera", namespace="/t", context=context)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
    pub = camera.create_publisher(Image, "/t/image", qos)
    msg = image_msg(np.zeros((720, 1280, 3), np.uint8), "rgb8", 5)  # taking it takes a while: close() meets it
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            pub.publish(msg)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        for _ in range(200):
            intake = CameraIntake("unit", "/t", errors.append, context=context)
            got = threading.Event()
            intake.subscribe(Image, "/t/image", lambda _m, got=got: got.set(), qos)
            got.wait(5)
            intake.close()
            assert not any(t.name == "seg_perception_intake" and t.is_alive() for t in threading.enumerate())
    finally:
        stop.set()
        flooder.join(5)
        camera.destroy_node()
        rclpy.try_shutdown(context=context)
    assert errors == []


def test_a_dead_intake_thread_is_reported_in_diagnostics_at_error() -> None:
    """A callback that raises ends the intake thread: on_error gets one line, `state` says why, and the status
    built from it is ERROR with `camera_intake: stopped: <why>` (the node would otherwise look healthy)."""
    with _intake_and_camera(44) as (intake, camera, errors):
        assert intake.state == RUNNING

        def broken(_msg: bytes) -> None:
            raise RuntimeError("boom")

        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        intake.subscribe(Image, "/t/image", broken, qos, raw=True)
        pub = camera.create_publisher(Image, "/t/image", qos)
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            pub.publish(image_msg(np.zeros((4, 6, 3), np.uint8), "rgb8", 5))
            time.sleep(0.05)
        assert errors == ["camera intake stopped: RuntimeError: boom"]
        assert intake.state == "stopped: RuntimeError: boom"
        msg = diagnostics_message(
            Time(sec=1), "n", "hw", FrameStats().snapshot(), {"camera_intake": intake.state}, False, None, intake.state
        )
        status = msg.status[0]
        assert status.level == DiagnosticStatus.ERROR
        assert status.message == "camera intake stopped: RuntimeError: boom"
        assert {kv.key: kv.value for kv in status.values}["camera_intake"] == "stopped: RuntimeError: boom"


def test_a_frame_stored_as_soon_as_activate_subscribes_is_segmented(spec_path: Path) -> None:
    """on_activate clears a stale pending frame before it subscribes: a frame the intake stores right after
    the subscription exists (here: before subscribe even returns) is segmented, not thrown away."""
    from seg_perception.ros.node_process import apply_to_this_process
    from seg_perception.ros.segmentation_node import SegmentationNode

    domain = unique_domain_id(45)
    apply_to_this_process(domain)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    overrides = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "cameras": ["front"],
        "batch_window_ms": 0.0,
        "qos_reliability": "reliable",
        "camera_info_qos_reliability": "reliable",
    }
    node = SegmentationNode(
        context=context, namespace=NAMESPACE, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    camera = Node("camera", namespace=NAMESPACE, context=context)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = camera.create_publisher(Image, f"{NAMESPACE}/front/image", qos)
    camera.create_subscription(
        Image, f"{NAMESPACE}/front/segmentation/labels", lambda _m: None, qos
    )  # else no work is done
    try:
        node.trigger_configure()
        assert node.intake is not None
        ch = node.channels[0]
        deadline = time.monotonic() + 20
        while not ch.anyone_listening() and time.monotonic() < deadline:
            time.sleep(0.05)
        real_subscribe = node.intake.subscribe

        def subscribe_and_receive_one(msg_type: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
            sub = real_subscribe(msg_type, topic, *args, **kwargs)
            if msg_type is Image:  # one frame, stored by the intake thread before on_activate goes on
                deadline = time.monotonic() + 20
                while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                    time.sleep(0.02)
                pub.publish(image_msg(smooth_image(180, 320, 0), "rgb8", 77))
                while ch.pending is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert ch.pending is not None, "the intake never stored the frame"
            return sub

        node.intake.subscribe = subscribe_and_receive_one  # type: ignore[method-assign]
        node.trigger_activate()
        deadline = time.monotonic() + 20
        while ch.stats.snapshot().processed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ch.stats.snapshot().processed == 1
    finally:
        node.trigger_deactivate()
        node.destroy_node()
        camera.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_two_argument_callback_gets_the_message_info_and_a_one_argument_one_the_message_only() -> None:
    """The intake's wait-set loop follows rclpy's rule: a callback that binds one argument gets the sample, one
    that binds two gets (sample, MessageInfo) with the reception stamp and the publisher's sequence numbers
    (the camera's loss counter and the bench's `take` stage read them); after unsubscribe no callback runs."""
    with _intake_and_camera(45) as (intake, camera, errors):
        with_info: list[tuple[Any, dict[str, Any]]] = []
        only: list[Any] = []

        def store(msg: bytes, info: dict[str, Any]) -> None:
            with_info.append((msg, info))

        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        first = intake.subscribe(Image, "/t/image", store, qos, raw=True)
        second = intake.subscribe(Image, "/t/image", only.append, qos)
        pub = camera.create_publisher(Image, "/t/image", qos)
        deadline = time.monotonic() + 20
        while pub.get_subscription_count() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        before_ns = time.time_ns()
        for stamp in (11, 12, 13):
            pub.publish(image_msg(np.zeros((2, 3, 3), np.uint8), "rgb8", stamp))
        deadline = time.monotonic() + 20
        while (len(with_info) < 3 or len(only) < 3) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [type(m) for m, _ in with_info] == [bytes] * 3
        assert [info["publication_sequence_number"] for _, info in with_info] == [1, 2, 3]
        assert all(info["received_timestamp"] >= before_ns for _, info in with_info)
        assert [stamp_ns(m) for m in only] == [11, 12, 13]  # typed messages, one argument
        intake.unsubscribe(first)
        intake.unsubscribe(second)
        pub.publish(image_msg(np.zeros((2, 3, 3), np.uint8), "rgb8", 14))
        time.sleep(0.5)
        assert (len(with_info), len(only)) == (3, 3)
    assert errors == []

"""The topic table (seg_perception/ros/topics.py) and the diagnostics key table (ros/diagnostics_keys.py), from
which docs/reference/topics.md and diagnostics.md are generated, are what the running node exposes: seen over
DDS by another participant, every topic's name, type, direction, reliability and durability, and every key
of its /diagnostics statuses. History depth is not carried by DDS discovery (the graph reports 0), so the
depths are read from the node's own publishers and subscriptions in this process."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.node import NodeNameNonExistentError
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, image_msg, unique_domain_id
from tiny_models import multi_task_spec, smooth_image

from seg_perception.core.errors import ImageCodecError
from seg_perception.ros.diagnostics_keys import BAD_FRAME_REASONS, expected_keys
from seg_perception.ros.messages import vision_msgs_import_error
from seg_perception.ros.node_process import apply_to_this_process
from seg_perception.ros.parameters import PARAMETERS
from seg_perception.ros.topics import INTAKE_SUFFIX, ExposedTopic, expected_topics

PACKAGE = Path(__file__).resolve().parent.parent / "seg_perception"
NAMESPACE, NODE = "/camera", "seg_perception"
# Not the defaults, so that a row reading the wrong parameter (or none) shows.
OVERRIDES: dict[str, Any] = {
    "cameras": ("front", "left"),
    "publish_overlay": False,
    "publish_stage_times": True,
    "qos_reliability": "best_effort",
    "camera_info_qos_reliability": "reliable",
    "labels_qos_reliability": "best_effort",
    "qos_depth": 3,
    "diagnostics_period": 0.2,
}
RELIABILITY = {ReliabilityPolicy.RELIABLE: "reliable", ReliabilityPolicy.BEST_EFFORT: "best_effort"}
DURABILITY = {DurabilityPolicy.VOLATILE: "volatile", DurabilityPolicy.TRANSIENT_LOCAL: "transient_local"}


def _exposed(probe: Probe) -> dict[tuple[str, str, str], ExposedTopic]:
    """What the graph says the node and its camera intake publish and subscribe to (depth 0: discovery does
    not carry it). A node the graph does not know yet exposes nothing: its name reaches the probe with the
    participant's node list (ros_discovery_info), which can come after its endpoints and its diagnostics."""
    node = probe.node
    out = {}
    for who in (NODE, NODE + INTAKE_SUFFIX):
        for direction, by_node, info in (
            ("publishes", node.get_publisher_names_and_types_by_node, node.get_publishers_info_by_topic),
            ("subscribes", node.get_subscriber_names_and_types_by_node, node.get_subscriptions_info_by_topic),
        ):
            try:
                names_and_types = by_node(who, NAMESPACE)
            except NodeNameNonExistentError:
                continue
            for name, types in names_and_types:
                for endpoint in info(name):
                    if (endpoint.node_name, endpoint.node_namespace) != (who, NAMESPACE):
                        continue
                    q = endpoint.qos_profile
                    rel, dur = RELIABILITY.get(q.reliability, str(q.reliability)), DURABILITY.get(q.durability, "?")
                    out[(direction, name, who)] = ExposedTopic(name, ",".join(types), direction, rel, dur, 0, who)
    return out


def _without_depth(topics: dict[tuple[str, str, str], ExposedTopic]) -> dict[tuple[str, str, str], ExposedTopic]:
    return {
        k: ExposedTopic(t.name, t.type, t.direction, t.reliability, t.durability, 0, t.node) for k, t in topics.items()
    }


def test_the_node_exposes_exactly_the_tables_topics_and_diagnostics_keys(tmp_path: Path) -> None:
    spec_path = multi_task_spec(tmp_path)  # heads drivable and lane: one <head>_mask topic (lane) per camera
    params = {p.name: p.default for p in PARAMETERS} | OVERRIDES | {"model": str(spec_path)}
    domain = unique_domain_id()
    probe = Probe(domain, cameras=("front/", "left/"), outputs=("drivable_mask",))
    node_params = {**OVERRIDES, "cameras": "[front,left]", "model": str(spec_path), "backend": "onnxruntime"}
    node = NodeProcess(domain, node_params, namespace=NAMESPACE)
    try:
        probe.wait_until(lambda: bool(probe.diagnostics()), 30, "the node's diagnostics")
        # label_info exists only where vision_msgs imports in the node's Python: the node says which.
        vision_msgs = probe.diagnostics()["label_info"] == "published"
        expected = _without_depth(expected_topics(params, NAMESPACE, NODE, heads=("lane",), vision_msgs=vision_msgs))
        probe.poll_until(lambda: _exposed(probe) == expected, 10)
        exposed = _exposed(probe)
        missing = sorted(set(expected) - set(exposed))
        extra = sorted(set(exposed) - set(expected))
        assert not missing and not extra, f"in the table only: {missing}; on the node only: {extra}"
        differ = {k: (expected[k], exposed[k]) for k in expected if expected[k] != exposed[k]}
        assert not differ, differ

        # A good frame on the front camera (sent again until one is answered: the node may not have matched the
        # probe yet), then one the decoder refuses, sent alone so that it cannot replace the good one unseen.
        frame = smooth_image(48, 64, seed=3)
        front_pub = probe.image_pubs["front/"]
        probe.wait_for_subscribers(front_pub)
        probe.wait_for_node_outputs()
        for stamp in range(1_000, 1_050):
            front_pub.publish(image_msg(frame, "rgb8", stamp))
            if probe.poll_until(lambda: probe.counter("frames_processed") >= 1, 1.0):
                break
        bad = image_msg(frame, "rgb8", 2_000)
        bad.encoding = "rgb9"
        front_pub.publish(bad)
        probe.wait_until(lambda: probe.counter("bad_frames") == 1, 20, "the bad frame counted")
        front = list(probe.diagnostics(0))
        assert front == expected_keys(met=["unknown_encoding"])
        assert list(probe.diagnostics(1)) == expected_keys()  # the left camera refused nothing
    finally:
        node.stop()
        probe.close()
    assert node.proc.returncode == 0, node.output


def test_the_nodes_own_publishers_and_subscriptions_have_the_tables_depths(tmp_path: Path) -> None:
    """The real node object in this process (rclpy's own endpoints, /rosout and ~/transition_event, are created
    by rcl out of its reach and have no depth to read here)."""
    spec_path = multi_task_spec(tmp_path)
    params = {p.name: p.default for p in PARAMETERS} | OVERRIDES | {"model": str(spec_path)}
    domain = unique_domain_id()
    apply_to_this_process(domain)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    from seg_perception.ros.segmentation_node import SegmentationNode

    overrides = {**OVERRIDES, "cameras": list(OVERRIDES["cameras"]), "model": str(spec_path), "backend": "onnxruntime"}
    node = SegmentationNode(
        context=context,
        namespace=NAMESPACE,
        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
    )
    try:
        node.trigger_configure()
        node.trigger_activate()
        actual = {("publishes", p.topic_name, NODE): p.qos_profile.depth for p in node.publishers}
        assert not list(node.subscriptions)  # the cameras' subscriptions are the intake's (ros/camera_intake.py)
        assert node.intake is not None
        intake = NODE + INTAKE_SUFFIX
        actual |= {("publishes", p.topic_name, intake): p.qos_profile.depth for p in node.intake.node.publishers}
        actual |= {("subscribes", s.topic_name, intake): s.qos_profile.depth for s in node.intake.node.subscriptions}
    finally:
        node.trigger_deactivate()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    table = expected_topics(params, NAMESPACE, NODE, heads=("lane",), vision_msgs=vision_msgs_import_error() is None)
    rcl_made = {("publishes", "/rosout", NODE), ("publishes", f"{NAMESPACE}/{NODE}/transition_event", NODE)}
    assert set(actual) == set(table) - rcl_made
    assert actual == {k: t.depth for k, t in table.items() if k not in rcl_made}
    assert (
        actual[("subscribes", "/camera/front/image", intake)] == 3
        and actual[("subscribes", "/camera/left/camera_info", intake)] == 1
    )


# The encoders (array -> message), which the node's input never meets: their ImageCodecError calls may
# leave the reason at its default. Anywhere else a call without a reason counts as that default.
ENCODERS = {"array_to_image_fields", "encode_compressed"}
DEFAULT_REASON = inspect.signature(ImageCodecError).parameters["reason"].default


def _raised_reasons(path: Path) -> set[str]:
    """The reasons `ImageCodecError(message, reason)` / `ImageCodecError(message, reason=...)` calls in `path`
    give (literals or module constants); a call without one gives the default, outside ENCODERS."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    in_encoder = {
        id(call)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name in ENCODERS
        for call in ast.walk(function)
    }
    found = set()
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "ImageCodecError"):
            continue
        given = [k.value for k in call.keywords if k.arg == "reason"] + call.args[1:2]
        if not given:
            if id(call) not in in_encoder:
                found.add(DEFAULT_REASON)
            continue
        arg = given[0]
        found.add(arg.value if isinstance(arg, ast.Constant) else constants[arg.id])  # type: ignore[attr-defined]
    return found


def test_bad_frame_reasons_are_those_the_nodes_decoders_raise() -> None:
    decoders = ("core/image_codec.py", "core/compressed_codec.py", "core/image_cdr.py")
    raised = set().union(*(_raised_reasons(PACKAGE / name) for name in decoders))
    assert sorted(BAD_FRAME_REASONS) == sorted(raised)
    assert len(set(BAD_FRAME_REASONS)) == len(BAD_FRAME_REASONS)


def test_video_bad_frame_reasons_are_those_the_video_input_counts() -> None:
    from seg_perception.core import video_stream
    from seg_perception.ros import video_input
    from seg_perception.ros.diagnostics_keys import VIDEO_BAD_REASONS

    counted = {video_stream.EMPTY, video_stream.UNDECODABLE, video_stream.CORRUPT, video_stream.NO_PICTURE}
    counted.add(video_input.UNDESERIALIZABLE)  # BEFORE_KEYFRAME is counted apart, not as a bad frame
    assert sorted(VIDEO_BAD_REASONS) == sorted(counted)
    assert not set(VIDEO_BAD_REASONS) & set(BAD_FRAME_REASONS)


def test_the_reason_scan_sees_keyword_and_default_reasons(tmp_path: Path) -> None:
    """The scan above is only as good as what it parses: a reason= keyword and a call without a reason
    (outside an encoder) both count."""
    source = tmp_path / "codec.py"
    source.write_text(
        "SLUG = 'from_constant'\n"
        "def decode(x):\n"
        "    raise ImageCodecError('a', reason='by_keyword')\n"
        "    raise ImageCodecError('b', SLUG)\n"
        "    raise ImageCodecError('c')\n"
        "def encode_compressed(x):\n"
        "    raise ImageCodecError('d')\n"
    )
    assert _raised_reasons(source) == {"by_keyword", "from_constant", "invalid"}

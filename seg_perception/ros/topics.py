"""Every topic the node publishes or subscribes to, with its type and QoS: the one table of them.

`docs/reference/topics.md` is generated from `TOPICS` (tools/gen_docs_reference.py), and
`test/test_topics_and_diagnostics_match_the_node.py` starts the real node and checks over DDS that the
topics, types and QoS it exposes are exactly `expected_topics(...)` of this table. Data only: no rclpy here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CAMERA = "<camera>/"  # per camera: '' with one unnamed camera, `front/` with `cameras: [front, ...]`
HEAD = "<head>"  # per mask of a multi-task spec besides the drivable one (spec key `masks`)
VISION_MSGS = "vision_msgs"  # a condition: the node's Python can import vision_msgs
# The camera subscriptions live on a lean node of their own (ros/camera_intake.py), named after the
# lifecycle node with this suffix.
INTAKE_SUFFIX = "_camera_intake"


@dataclass(frozen=True)
class Topic:
    """One topic of the node. `reliability` and `depth` name a parameter where one sets them."""

    name: str  # relative to the node's namespace (`~/` = the node's own name); CAMERA and HEAD are expanded
    type: str  # ROS interface, e.g. sensor_msgs/msg/Image
    direction: str  # "publishes" or "subscribes"
    reliability: str  # "reliable", "best_effort", or a parameter's name
    durability: str  # "volatile" or "transient_local"
    depth: int | str  # keep last this many, or a parameter's name
    when: str  # when it is published (or subscribed)
    requires: tuple[str, Any] | None = None  # (parameter, value) it needs, or (VISION_MSGS, True)
    intake: bool = False  # on the camera intake node (`<node>_camera_intake`), not the lifecycle node


_STREAM = "every frame, while somebody subscribes to it"
TOPICS: tuple[Topic, ...] = (
    Topic(
        f"{CAMERA}image",
        "sensor_msgs/msg/Image",
        "subscribes",
        "qos_reliability",
        "volatile",
        "qos_depth",
        "from activate; with `auto`, once a publisher appears",
        ("input_transport", "raw"),
        intake=True,
    ),
    Topic(
        f"{CAMERA}image/compressed",
        "sensor_msgs/msg/CompressedImage",
        "subscribes",
        "qos_reliability",
        "volatile",
        "qos_depth",
        "from activate; with `auto`, once a publisher appears",
        ("input_transport", "compressed"),
        intake=True,
    ),
    Topic(
        f"{CAMERA}image/video",
        "foxglove_msgs/msg/CompressedVideo or ffmpeg_image_transport_msgs/msg/FFMPEGPacket",
        "subscribes",
        "qos_reliability",
        "volatile",
        64,  # ros/video_input.py VIDEO_QOS_DEPTH, or `qos_depth` where larger: a decoder needs every unit
        "from activate, once a publisher appears (its type is read from the publisher); every unit is decoded, "
        "the newest picture segmented",
        ("video_input", True),
        intake=True,
    ),
    Topic(
        f"{CAMERA}camera_info",
        "sensor_msgs/msg/CameraInfo",
        "subscribes",
        "camera_info_qos_reliability",
        "volatile",
        1,
        "from activate; with `auto`, once a publisher appears",
        intake=True,
    ),
    Topic(
        f"{CAMERA}segmentation/labels",
        "sensor_msgs/msg/Image",
        "publishes",
        "labels_qos_reliability",
        "volatile",
        "qos_depth",
        _STREAM + ": class id per pixel (mono8)",
    ),
    Topic(
        f"{CAMERA}segmentation/drivable_mask",
        "sensor_msgs/msg/Image",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ": 255 drivable, 0 not (mono8)",
    ),
    Topic(
        f"{CAMERA}segmentation/overlay",
        "sensor_msgs/msg/Image",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ": class colours over the input (rgb8)",
        ("publish_overlay", True),
    ),
    Topic(
        f"{CAMERA}segmentation/color_mask",
        "sensor_msgs/msg/Image",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ": class colours (rgb8)",
        ("publish_color_mask", True),
    ),
    Topic(
        f"{CAMERA}segmentation/confidence",
        "sensor_msgs/msg/Image",
        "publishes",
        "confidence_qos_reliability",
        "volatile",
        "qos_depth",
        _STREAM + ": max class probability x 255 (mono8)",
        ("publish_confidence", True),
    ),
    Topic(
        f"{CAMERA}segmentation/{HEAD}_mask",
        "sensor_msgs/msg/Image",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ", for each mask of a multi-task spec: 255 in the mask (mono8)",
    ),
    Topic(
        f"{CAMERA}segmentation/labels/compressed",
        "sensor_msgs/msg/CompressedImage",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ": the labels as lossless PNG",
    ),
    Topic(
        f"{CAMERA}segmentation/drivable_mask/compressed",
        "sensor_msgs/msg/CompressedImage",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ": the drivable mask as lossless PNG",
    ),
    Topic(
        f"{CAMERA}segmentation/camera_info",
        "sensor_msgs/msg/CameraInfo",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        _STREAM + ", once camera_info arrived: intrinsics scaled to the output size",
    ),
    Topic(
        "segmentation/drivable_grid",
        "nav_msgs/msg/OccupancyGrid",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        "every cycle, while somebody subscribes to it and once camera_info arrived: all cameras' bird's-eye grid",
    ),
    Topic(
        "segmentation/legend",
        "sensor_msgs/msg/Image",
        "publishes",
        "reliable",
        "transient_local",
        1,
        "once, at configure: class colours and names (rgb8)",
    ),
    Topic(
        "segmentation/label_info",
        "vision_msgs/msg/LabelInfo",
        "publishes",
        "reliable",
        "transient_local",
        1,
        "once, at configure: class id -> name (for Nav2's semantic segmentation layer)",
        (VISION_MSGS, True),
    ),
    Topic(
        "segmentation/stage_times",
        "diagnostic_msgs/msg/DiagnosticArray",
        "publishes",
        "reliable",
        "volatile",
        "qos_depth",
        "every frame: the frame's time points, for the bench's latency budget (debug)",
        ("publish_stage_times", True),
    ),
    Topic(
        "/diagnostics",
        "diagnostic_msgs/msg/DiagnosticArray",
        "publishes",
        "reliable",
        "volatile",
        10,
        "every `diagnostics_period` s while active: one status per camera ([keys](diagnostics.md))",
    ),
    Topic(
        "~/transition_event",
        "lifecycle_msgs/msg/TransitionEvent",
        "publishes",
        "reliable",
        "volatile",
        10,
        "each lifecycle transition (rclpy's lifecycle node)",
    ),
    Topic(
        "/rosout",
        "rcl_interfaces/msg/Log",
        "publishes",
        "reliable",
        "transient_local",
        1000,
        "each log line (every rclpy node)",
    ),
    Topic(
        "/parameter_events",
        "rcl_interfaces/msg/ParameterEvent",
        "publishes",
        "reliable",
        "volatile",
        1000,
        "at start, as parameters are declared (every rclpy node)",
    ),
    Topic(
        "/parameter_events",
        "rcl_interfaces/msg/ParameterEvent",
        "publishes",
        "reliable",
        "volatile",
        1000,
        "never in practice: the camera intake declares no parameters, but every rclpy node has this publisher",
        intake=True,
    ),
)


@dataclass(frozen=True)
class ExposedTopic:
    """A topic as the running node exposes it: fully qualified, QoS resolved from the parameter values."""

    name: str
    type: str
    direction: str
    reliability: str
    durability: str
    depth: int
    node: str  # the node's name: the lifecycle node's, or its camera intake's


def _resolved(value: int | str, params: Mapping[str, Any]) -> Any:
    return params[value] if isinstance(value, str) and value in params else value


def expected_topics(
    params: Mapping[str, Any],
    namespace: str,
    node_name: str,
    heads: Iterable[str] = (),
    vision_msgs: bool = False,
) -> dict[tuple[str, str, str], ExposedTopic]:
    """What a node with these parameter values exposes, keyed by (direction, fully qualified name, the
    node's name: the lifecycle node's or its camera intake's).

    `params` holds every parameter a row names (a `qos_reliability` of `auto` stays `auto`: it follows the
    publishers found); `heads` are the spec's masks with a topic of their own."""
    ns = namespace.rstrip("/")
    cameras = [f"{c}/" for c in params.get("cameras", ())] or [""]
    out: dict[tuple[str, str, str], ExposedTopic] = {}
    for t in TOPICS:
        if t.requires is not None:
            key, wanted = t.requires
            have = vision_msgs if key == VISION_MSGS else params[key]
            if have != wanted:
                continue
        names = [t.name.replace(CAMERA, c) for c in cameras] if CAMERA in t.name else [t.name]
        if HEAD in t.name:
            names = [n.replace(HEAD, h) for n in names for h in heads]
        for name in names:
            if name.startswith("~/"):
                full = f"{ns}/{node_name}/{name[2:]}"
            else:
                full = name if name.startswith("/") else f"{ns}/{name}"
            reliability = str(_resolved(t.reliability, params))
            exposed = ExposedTopic(
                full,
                t.type,
                t.direction,
                reliability,
                t.durability,
                int(_resolved(t.depth, params)),
                node_name + INTAKE_SUFFIX if t.intake else node_name,
            )
            out[(t.direction, full, exposed.node)] = exposed
    return out

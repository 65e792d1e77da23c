"""The node's parameters: declared once here, read once into a frozen, validated config."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.health import HealthThresholds

_H = HealthThresholds()  # the health checks' defaults (core/health.py says what each one measures)

# 3840 x 2160 x 4: room for 4K cameras, refuses absurd sizes before any allocation.
DEFAULT_MAX_IMAGE_PIXELS = 33_177_600
# A writer's reliability: reliable matches reliable and best-effort readers, best effort only best-effort ones.
OUTPUT_RELIABILITIES = ("reliable", "best_effort")


@dataclass(frozen=True)
class ParameterDef:
    """One node parameter: name, default, description and the values it allows."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


PARAMETERS: tuple[ParameterDef, ...] = (
    ParameterDef("model", "", "Model spec YAML path; empty selects the bundled demo model."),
    ParameterDef(
        "backend",
        "auto",
        "Inference backend; auto picks TensorRT when it imports and a GPU exists.",
        choices=("auto", "onnxruntime", "tensorrt"),
    ),
    ParameterDef(
        "input_transport",
        "raw",
        "Subscribe to image (raw) or image/compressed (compressed).",
        choices=("raw", "compressed"),
    ),
    ParameterDef(
        "video_input",
        False,
        "Also subscribe to image/video: a foxglove_msgs/CompressedVideo or ffmpeg_image_transport_msgs/"
        "FFMPEGPacket topic (type read from its publisher), decoded with PyAV and segmented like images.",
    ),
    ParameterDef(
        "output_resolution",
        "input",
        "Publish at the camera resolution (input) or the model's (model).",
        choices=("input", "model"),
    ),
    ParameterDef("overlay_alpha", 0.5, "Weight of the colour mask in the overlay blend.", minimum=0.0, maximum=1.0),
    ParameterDef("publish_overlay", True, "Publish segmentation/overlay (rgb8 blend of the input)."),
    ParameterDef("publish_color_mask", True, "Publish segmentation/color_mask (rgb8 class colours)."),
    ParameterDef("publish_confidence", True, "Publish segmentation/confidence (mono8, max class probability x 255)."),
    ParameterDef(
        "qos_reliability",
        "auto",
        "Input QoS reliability; auto matches the publishers found on the input topic.",
        choices=("auto", "reliable", "best_effort"),
    ),
    ParameterDef(
        "camera_info_qos_reliability",
        "auto",
        "QoS reliability of the camera_info subscription; auto matches its publishers (many drivers publish "
        "it best effort).",
        choices=("auto", "reliable", "best_effort"),
    ),
    ParameterDef(
        "qos_depth", 1, "History depth (keep last) of the input subscription and every output.", minimum=1, maximum=100
    ),
    ParameterDef(
        "labels_qos_reliability",
        "reliable",
        "Reliability of segmentation/labels; reliable also serves best-effort readers such as Nav2's "
        "semantic segmentation layer.",
        choices=OUTPUT_RELIABILITIES,
    ),
    ParameterDef(
        "confidence_qos_reliability",
        "reliable",
        "Reliability of segmentation/confidence; reliable also serves best-effort readers such as Nav2's "
        "semantic segmentation layer.",
        choices=OUTPUT_RELIABILITIES,
    ),
    ParameterDef(
        "max_image_pixels",
        DEFAULT_MAX_IMAGE_PIXELS,
        "Frames with more pixels are rejected unread.",
        minimum=1,
        maximum=1 << 31,
    ),
    ParameterDef("threads", 0, "Inference threads (0: the backend's default).", minimum=0, maximum=256),
    ParameterDef(
        "precision",
        "fp16",
        "TensorRT engine precision (ONNX Runtime runs the graph as it is).",
        choices=("fp32", "fp16", "int8"),
    ),
    ParameterDef("engine_cache_dir", "~/.cache/seg_perception/engines", "Where TensorRT engines are cached."),
    ParameterDef("engine_build", True, "Build a missing or stale TensorRT engine at start; false refuses instead."),
    ParameterDef(
        "cameras",
        (),
        "Camera names for one batched node (e.g. [front, left]): topics <name>/image, "
        "<name>/segmentation/...; empty: a single camera on image and segmentation/...",
    ),
    ParameterDef(
        "batch_window_ms",
        5.0,
        "With several cameras: how long to wait for the other live cameras' frames.",
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterDef("autostart", True, "Walk the lifecycle to active at start (false: wait for a lifecycle manager)."),
    ParameterDef("grid_frame", "base_link", "Frame of segmentation/drivable_grid; mount poses are given in it."),
    ParameterDef("grid_resolution", 0.2, "Drivable grid cell size in metres.", minimum=0.01, maximum=10.0),
    ParameterDef("grid_width", 200, "Drivable grid cells along x (forward).", minimum=1, maximum=10000),
    ParameterDef("grid_height", 200, "Drivable grid cells along y (left).", minimum=1, maximum=10000),
    ParameterDef("grid_origin_x", 0.0, "x of the grid's first cell corner, metres.", minimum=-1e4, maximum=1e4),
    ParameterDef("grid_origin_y", -20.0, "y of the grid's first cell corner, metres.", minimum=-1e4, maximum=1e4),
    ParameterDef(
        "grid_max_range",
        40.0,
        "Cells farther than this from the camera stay unseen (-1), metres.",
        minimum=0.1,
        maximum=1e4,
    ),
    ParameterDef(
        "mount_xyz_rpy",
        (0.0, 0.0, 1.5, 0.0, 0.0, 0.0),
        "Camera mounting pose in grid_frame [x, y, z, roll, pitch, yaw] (m, rad; pitch > 0 looks down); "
        "with several cameras, <camera>.mount_xyz_rpy per camera.",
    ),
    ParameterDef("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", minimum=0.1, maximum=60.0),
    ParameterDef(
        "publish_stage_times",
        False,
        "Debug: publish segmentation/stage_times, per frame the wall-clock time it passed each stage.",
    ),
    ParameterDef(
        "health_flag_frames",
        _H.flag_frames,
        "Health: a reason is flagged after this many consecutive bad frames.",
        minimum=1,
        maximum=1000,
    ),
    ParameterDef(
        "health_clear_frames",
        _H.clear_frames,
        "Health: a flagged reason clears after this many consecutive good frames.",
        minimum=1,
        maximum=1000,
    ),
    ParameterDef(
        "health_dark_level", _H.dark_level, "Health: grey levels below this count as very dark.", minimum=1, maximum=255
    ),
    ParameterDef(
        "health_dark_share",
        _H.dark_share,
        "Health: a frame is dark when at least this share of its pixels is very dark.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterDef(
        "health_saturated_level",
        _H.saturated_level,
        "Health: grey levels at or above this count as clipped.",
        minimum=1,
        maximum=255,
    ),
    ParameterDef(
        "health_saturated_share",
        _H.saturated_share,
        "Health: a frame is saturated when at least this share of its pixels is clipped.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterDef(
        "health_blocked_detail",
        _H.blocked_detail,
        "Health: a grid cell (8 x 6 grid) whose mean |Laplacian| on the 160x90 sample is below this has no detail.",
        minimum=0.0,
        maximum=255.0,
    ),
    ParameterDef(
        "health_blocked_share",
        _H.blocked_share,
        "Health: a frame is blocked (covered or smeared lens) when at least this share of grid cells has no detail.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterDef(
        "health_low_visibility_range",
        _H.low_visibility_range,
        "Health: low_visibility (fog, rain, glare) when the 2nd to 98th percentile grey levels span fewer than this.",
        minimum=0,
        maximum=255,
    ),
    ParameterDef(
        "health_confidence_ratio",
        _H.confidence_ratio,
        "Health: low_confidence when mean confidence falls below this share of its baseline (the mean over the "
        "first health_baseline_frames frames measured); measured on frames whose confidence map is computed; 0 "
        "turns the check off.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterDef(
        "health_compute_confidence",
        False,
        "Health: compute the confidence map on every frame for low_confidence, not only while segmentation/"
        "confidence has a subscriber (costs a camera-sized resize: about 3 ms per 1280x720 frame on a CPU).",
    ),
    ParameterDef(
        "health_drivable_ratio",
        _H.drivable_ratio,
        "Health: drivable_collapse when the drivable share of the lower image falls below this share of its "
        "running baseline; 0 turns the check off.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterDef(
        "health_baseline_frames",
        _H.baseline_frames,
        "Health: frames the confidence and drivable baselines are learned over (and the running mean's weight).",
        minimum=1,
        maximum=100000,
    ),
    ParameterDef(
        "health_stale_s",
        _H.stale_s,
        "Health: stale (WARN, 'no input frames') when no frame arrived for this many seconds.",
        minimum=0.1,
        maximum=3600.0,
    ),
)
PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)


@dataclass(frozen=True)
class NodeConfig:
    """Validated parameter values, read once at start-up."""

    model: str
    backend: str
    input_transport: str
    video_input: bool
    output_resolution: str
    overlay_alpha: float
    publish_overlay: bool
    publish_color_mask: bool
    publish_confidence: bool
    qos_reliability: str
    camera_info_qos_reliability: str
    qos_depth: int
    labels_qos_reliability: str
    confidence_qos_reliability: str
    max_image_pixels: int
    threads: int
    precision: str
    engine_cache_dir: str
    engine_build: bool
    cameras: tuple[str, ...]
    batch_window_ms: float
    autostart: bool
    grid_frame: str
    grid_resolution: float
    grid_width: int
    grid_height: int
    grid_origin_x: float
    grid_origin_y: float
    grid_max_range: float
    mount_xyz_rpy: tuple[float, ...]
    diagnostics_period: float
    publish_stage_times: bool
    health_flag_frames: int
    health_clear_frames: int
    health_dark_level: int
    health_dark_share: float
    health_saturated_level: int
    health_saturated_share: float
    health_blocked_detail: float
    health_blocked_share: float
    health_low_visibility_range: int
    health_confidence_ratio: float
    health_compute_confidence: bool
    health_drivable_ratio: float
    health_baseline_frames: int
    health_stale_s: float

    @property
    def health(self) -> HealthThresholds:
        """The health checks' thresholds (parameters health_<name>)."""
        return HealthThresholds(**{f: getattr(self, f"health_{f}") for f in HealthThresholds.__dataclass_fields__})


def _camera_names(name: str, value: Any) -> tuple[str, ...]:
    names = tuple(value)
    for item in names:
        if not isinstance(item, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", item):
            raise SegPerceptionError(
                f"parameter '{name}' = {list(names)!r}: {item!r} is not a topic name token (letters, digits, _)"
            )
    if len(set(names)) != len(names):
        raise SegPerceptionError(f"parameter '{name}' = {list(names)!r}: names must be unique")
    return names


def pose_vector(name: str, value: Any) -> tuple[float, ...]:
    """[x, y, z, roll, pitch, yaw] as six finite floats."""
    items = tuple(value)
    ok = len(items) == 6 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
    if not ok or not all(math.isfinite(v) for v in items):
        raise SegPerceptionError(f"parameter '{name}' = {list(items)!r}: expected [x, y, z, roll, pitch, yaw]")
    return tuple(float(v) for v in items)


def validate_parameters(values: dict[str, Any]) -> NodeConfig:
    """Check every value against its definition; the error names parameter, value and what is allowed."""
    checked: dict[str, Any] = {}
    for p in PARAMETERS:
        value = values.get(p.name, p.default)
        expected = type(p.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is tuple and isinstance(value, list):  # YAML and rclpy give lists
            value = tuple(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise SegPerceptionError(
                f"parameter '{p.name}' = {value!r}: expected a {expected.__name__} (default {p.default!r})"
            )
        if expected is tuple:
            value = _camera_names(p.name, value) if p.name == "cameras" else pose_vector(p.name, value)
        elif p.choices and value not in p.choices:
            raise SegPerceptionError(f"parameter '{p.name}' = {value!r}: allowed values are {', '.join(p.choices)}")
        if (p.minimum is not None and value < p.minimum) or (p.maximum is not None and value > p.maximum):
            raise SegPerceptionError(f"parameter '{p.name}' = {value!r}: allowed range is [{p.minimum}, {p.maximum}]")
        checked[p.name] = value
    return NodeConfig(**checked)

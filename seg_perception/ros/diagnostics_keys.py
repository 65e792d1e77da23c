"""Every key of the node's `/diagnostics` statuses (one status per camera): the one table of them.

`docs/reference/diagnostics.md` is generated from `DIAGNOSTICS_KEYS` (tools/gen_docs_reference.py), and
`test/test_topics_and_diagnostics_match_the_node.py` checks over DDS that the keys the running node
publishes are exactly `expected_keys()`. Data only: no rclpy here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from seg_perception.core.health import REASONS

# ImageCodecError reasons of the node's decoders (core/image_codec.py, compressed_codec.py, image_cdr.py); a test checks
# this list against their `raise`s.
BAD_FRAME_REASONS = (
    "zero_size",
    "step_too_small",
    "data_short",
    "data_long",
    "unknown_encoding",
    "empty_encoding",
    "odd_size",
    "too_many_pixels",
    "data_empty",
    "truncated",
    "bad_signature",
    "unknown_format",
    "undecodable",
    "not_integer",
    "bad_type",
    "bad_serialization",
)
# Reasons a video camera input (`video_input`) counts under bad_frames.<x>: core/video_stream.py and
# ros/video_input.py.
VIDEO_BAD_REASONS = (
    "empty_access_unit",
    "undecodable_access_unit",
    "corrupt_picture",
    "no_picture",
    "undeserializable_message",
)
VIDEO_INPUT = "video_input"  # a condition: the parameter is true
LOSS_NOT_COUNTED = "loss_not_counted"  # a condition: losses are not counted now (several publishers, ROS 2 Jazzy)
COMPUTED_OUTPUTS = ("labels", "drivable_mask", "overlay", "color_mask", "confidence")
BASELINES = ("low_confidence", "drivable_collapse")


@dataclass(frozen=True)
class DiagnosticsKey:
    """One key. Where `each` is set, `key` holds `<x>` and the status has one key per value of `each`
    (all of them always, or with `once_met`, only those met so far)."""

    key: str
    meaning: str
    values: str
    each: tuple[str, ...] = ()
    once_met: bool = False
    requires: str = ""  # a condition (a boolean parameter, or LOSS_NOT_COUNTED) for the key to be published


_COUNT = "integer, since start"
DIAGNOSTICS_KEYS: tuple[DiagnosticsKey, ...] = (
    DiagnosticsKey("input_rate_hz", "frames received per second since the previous status", "float, 2 decimals"),
    DiagnosticsKey("output_rate_hz", "frames segmented and published per second since the previous status", "float"),
    DiagnosticsKey("frames_received", "frames the subscription callback received", _COUNT),
    DiagnosticsKey("frames_processed", "frames segmented and published", _COUNT),
    DiagnosticsKey("frames_dropped", "`frames_replaced` + `frames_lost_in_transport`", _COUNT),
    DiagnosticsKey(
        "frames_replaced", "a newer frame took this one's place in the one-slot buffer before it was segmented", _COUNT
    ),
    DiagnosticsKey(
        "frames_lost_in_transport",
        "gaps in the publisher's sequence numbers: DDS history overwrote them before the callback; counted on the "
        "frames whose losses can be told (see the next two keys)",
        _COUNT,
    ),
    DiagnosticsKey(
        "frames_lost_in_transport.counted",
        "whether losses are counted now: `false` while several publishers share the input and this rclpy does not "
        "name a frame's publisher (ROS 2 Jazzy), `true` again once one publisher is left",
        "`true` or `false`",
    ),
    DiagnosticsKey(
        "frames_lost_in_transport.not_counted_frames",
        "frames whose losses could not be counted (several publishers; Jazzy's rclpy names none)",
        _COUNT,
    ),
    DiagnosticsKey("frames_lost_in_transport.why", "why losses are not counted", "text", requires=LOSS_NOT_COUNTED),
    DiagnosticsKey("bad_frames", "frames the decoder refused (each also logged, rate-limited)", _COUNT),
    DiagnosticsKey(
        "bad_frames.<x>",
        "frames refused for this reason (`ImageCodecError.reason`); present once one was",
        _COUNT,
        BAD_FRAME_REASONS + VIDEO_BAD_REASONS,
        once_met=True,
    ),
    DiagnosticsKey("failed_frames", "frames whose inference failed", _COUNT),
    DiagnosticsKey("latency_p50_ms", "median receive -> published latency over the last 256 frames", "ms, float"),
    DiagnosticsKey("latency_p95_ms", "95th percentile of the same", "ms, float"),
    DiagnosticsKey("latency_max_ms", "maximum of the same", "ms, float"),
    DiagnosticsKey("health", "the camera's health: can its masks be trusted", "`ok`, `degraded`, `failed`"),
    DiagnosticsKey(
        "health.<x>",
        "what the health check measured on the newest frame (see the node page's Health)",
        "number or `n/a`",
        REASONS,
    ),
    DiagnosticsKey(
        "health_baseline.<x>",
        "the baseline the check compares with, learned on the first frames",
        "number or `n/a`",
        BASELINES,
    ),
    DiagnosticsKey("backend", "the inference backend and its device", "text"),
    DiagnosticsKey("model", "the model spec's name", "text"),
    DiagnosticsKey("engine", "the backend in use", "`onnxruntime`, `tensorrt`"),
    DiagnosticsKey("backend_requested", "parameter `backend`", "`auto`, `onnxruntime`, `tensorrt`"),
    DiagnosticsKey("backend_reason", "why this backend (what `auto` found); also in the start-up log", "text"),
    DiagnosticsKey("input_topic", "the camera's subscribed image topic", "topic, or `(waiting)` for a publisher"),
    DiagnosticsKey(
        "camera_intake",
        "the thread taking the cameras' frames (status ERROR once it stopped: no frame arrives any more)",
        "`running`, or `stopped: <why>`",
    ),
    DiagnosticsKey("mean_batch_size", "frames per inference call since the previous status", "float, 0 when idle"),
    DiagnosticsKey("batch_window_expired", "gathers where a live camera missed `batch_window_ms`", _COUNT),
    DiagnosticsKey(
        "computed.<x>",
        "frames for which this output was computed (only subscribed outputs are)",
        _COUNT,
        COMPUTED_OUTPUTS,
    ),
    DiagnosticsKey("grids_published", "bird's-eye grids published (computed only while subscribed)", _COUNT),
    DiagnosticsKey("batch", "the model's batch dimension", "`dynamic`, or `fixed K` (frames then run K at a time)"),
    DiagnosticsKey("label_info", "whether `segmentation/label_info` is published", "`published`, or `off: <why>`"),
    DiagnosticsKey(
        "video_input",
        "the camera's video input (`image/video`)",
        "`not active`, the message type subscribed, or `off: <why>`",
        requires=VIDEO_INPUT,
    ),
    DiagnosticsKey("video_units_received", "video units (access units) received", _COUNT, requires=VIDEO_INPUT),
    DiagnosticsKey("video_pictures_decoded", "pictures the decoder returned", _COUNT, requires=VIDEO_INPUT),
    DiagnosticsKey(
        "video_skipped_before_keyframe",
        "units skipped until the first keyframe (a stream joined mid-GOP)",
        _COUNT,
        requires=VIDEO_INPUT,
    ),
    DiagnosticsKey(
        "video_units_dropped_backlog",
        "units dropped because decoding fell behind (decoding restarts at the newest fresh keyframe queued, else "
        "at the next one)",
        _COUNT,
        requires=VIDEO_INPUT,
    ),
)


def expected_keys(met: Iterable[str] = (), enabled: Iterable[str] = ()) -> list[str]:
    """The keys of one status, in order; `met` are the values of `once_met` rows that occurred (bad-frame
    reasons seen), `enabled` the boolean parameters that are true (rows with `requires`)."""
    seen = set(met)
    on = set(enabled)
    keys: list[str] = []
    for row in DIAGNOSTICS_KEYS:
        if row.requires and row.requires not in on:
            continue
        if not row.each:
            keys.append(row.key)
            continue
        values = sorted(x for x in row.each if x in seen) if row.once_met else row.each  # published sorted
        keys.extend(row.key.replace("<x>", x) for x in values)
    return keys

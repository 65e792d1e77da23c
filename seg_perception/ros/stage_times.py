"""Per-frame time points inside the node, for a latency budget per stage (the bench's node phase).

Every point is wall-clock nanoseconds (`time.time_ns()`, the clock the camera stamps with and DDS stamps
samples with), so points taken in different processes on one machine subtract. The node records them for
every frame (a few `time.time_ns()` calls); only with parameter `publish_stage_times` does it publish
them, on `segmentation/stage_times` as a `diagnostic_msgs/DiagnosticArray` whose header is the frame's
input header and whose one status carries `<point>_ns` keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

STAGE_TIMES_TOPIC = "segmentation/stage_times"


@dataclass(slots=True)
class FrameTimes:
    """When one frame passed each point (0: not reached or not known)."""

    stamp_ns: int = 0  # the input header's stamp: when the camera says it took the frame
    source_ns: int = 0  # DDS source timestamp: when the camera's writer sent the sample
    dds_received_ns: int = 0  # DDS reception timestamp: when the node's reader had the sample
    callback_ns: int = 0  # the subscription callback began (the sample taken, deserialised if typed)
    taken_ns: int = 0  # the worker took the frame out of the one-slot buffer
    decoded_ns: int = 0  # message -> inference frame (a numpy view) done
    segmented_ns: int = 0  # the Segmenter returned
    labels_built_ns: int = 0  # the labels message was built
    labels_published_ns: int = 0  # the labels publish call returned
    outputs_published_ns: int = 0  # every output of the frame was published


POINTS: tuple[str, ...] = tuple(f.name for f in fields(FrameTimes))

# Consecutive intervals along the labels' path, (name, from point, to point). The last two points are
# the recorder's, known only to it: "recorder_dds_ns" (its reader had the labels) and "recorder_ns" (its
# callback began). dds_in = camera_send + dds_transport + take; dds_out = dds_out_transport + recorder_take.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("camera_send", "stamp_ns", "source_ns"),
    ("dds_transport", "source_ns", "dds_received_ns"),
    ("take", "dds_received_ns", "callback_ns"),
    ("queue", "callback_ns", "taken_ns"),
    ("decode", "taken_ns", "decoded_ns"),
    ("segment", "decoded_ns", "segmented_ns"),
    ("build", "segmented_ns", "labels_built_ns"),
    ("publish", "labels_built_ns", "labels_published_ns"),
    ("dds_out_transport", "labels_published_ns", "recorder_dds_ns"),
    ("recorder_take", "recorder_dds_ns", "recorder_ns"),
)
# Sums of the stages above, and work off the labels' path (it delays the next frame, not this one).
SPANS: tuple[tuple[str, str, str], ...] = (
    ("dds_in", "stamp_ns", "callback_ns"),
    ("in_node", "callback_ns", "labels_published_ns"),
    ("dds_out", "labels_published_ns", "recorder_ns"),
    ("other_outputs", "labels_published_ns", "outputs_published_ns"),
    ("end_to_end", "stamp_ns", "recorder_ns"),
)


def stage_times_message(header: Header, times: FrameTimes) -> DiagnosticArray:
    """The debug message of one frame: the input header, one status with a `<point>` key per point."""
    status = DiagnosticStatus(name="stage_times", message="wall-clock ns per point")
    status.values = [KeyValue(key=name, value=str(getattr(times, name))) for name in POINTS]
    out = DiagnosticArray()
    out.header = header
    out.status = [status]
    return out


def points_from_message(msg: DiagnosticArray) -> dict[str, int]:
    """The points of a stage_times message, by name (the inverse of `stage_times_message`)."""
    if not msg.status:
        return {}
    return {kv.key: int(kv.value) for kv in msg.status[0].values if kv.key in POINTS}


def stage_durations_ms(points: dict[str, int]) -> dict[str, float]:
    """Every stage and span whose two points are known (non-zero), in milliseconds."""
    out: dict[str, float] = {}
    for name, start, end in (*STAGES, *SPANS):
        a, b = points.get(start, 0), points.get(end, 0)
        if a and b:
            out[name] = (b - a) / 1e6
    return out

"""Conversions between numpy results and ROS messages; no node state here."""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from seg_perception.core.frame_stats import StatsSnapshot
from seg_perception.core.ground_grid import GridSpec
from seg_perception.core.health import FAILED, HealthReport
from seg_perception.core.image_cdr import FrameHeader
from seg_perception.core.model_spec import ModelSpec


def ros_header(header: FrameHeader) -> Header:
    """The std_msgs/Header of a header read from a serialized message."""
    out = Header(frame_id=header.frame_id)
    out.stamp.sec, out.stamp.nanosec = header.sec, header.nanosec
    return out


def image_message(header: Header, pixels: np.ndarray, encoding: str) -> Image:
    """An Image carrying `header` unchanged; one memcpy of the pixels, no per-byte validation."""
    height, width = pixels.shape[:2]
    msg = Image()
    msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * (pixels.shape[2] if pixels.ndim == 3 else 1) * pixels.itemsize
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(pixels).data)
    msg.data = data
    return msg


def occupancy_grid_message(header: Header, grid: np.ndarray, spec: GridSpec) -> OccupancyGrid:
    """An OccupancyGrid of int8 cells (row-major from the origin cell, rows along y)."""
    msg = OccupancyGrid()
    msg.header = header
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(spec.resolution)
    msg.info.width, msg.info.height = spec.width, spec.height
    msg.info.origin.position.x, msg.info.origin.position.y = spec.origin_x, spec.origin_y
    msg.info.origin.orientation.w = 1.0
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(grid, np.int8).data)
    msg.data = data
    return msg


def scaled_camera_info(info: CameraInfo, header: Header, width: int, height: int) -> CameraInfo:
    """Camera intrinsics rescaled to an output of width x height, stamped with the image header."""
    sx = width / info.width if info.width else 1.0
    sy = height / info.height if info.height else 1.0
    out = CameraInfo()
    out.header = header
    out.width, out.height = width, height
    out.distortion_model = info.distortion_model
    out.d = info.d
    out.r = info.r
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    k[0, :] *= sx
    k[1, :] *= sy
    out.k = k.ravel().tolist()
    p = np.array(info.p, dtype=np.float64).reshape(3, 4)
    p[0, :] *= sx
    p[1, :] *= sy
    out.p = p.ravel().tolist()
    out.binning_x, out.binning_y = info.binning_x, info.binning_y
    out.roi = info.roi
    return out


LABEL_INFO_NEEDED_BY = "Nav2's semantic segmentation layer needs segmentation/label_info (class ids -> names)"


def vision_msgs_import_error() -> str | None:
    """Why vision_msgs/LabelInfo cannot be imported here (the ImportError's text), or None when it can."""
    try:
        from vision_msgs.msg import LabelInfo, VisionClass  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def label_info_off_reason(import_error: str) -> str:
    """The /diagnostics `label_info` value (and the start-up warning's core) when vision_msgs is missing."""
    return f"off: vision_msgs is not importable ({import_error}); {LABEL_INFO_NEEDED_BY}"


def label_info_message(spec: ModelSpec, header: Header) -> Any | None:
    """vision_msgs/LabelInfo of the spec's classes (id = label value), or None where vision_msgs is absent.

    threshold is 0: labels are an argmax, no confidence threshold is applied.
    """
    try:
        from vision_msgs.msg import LabelInfo, VisionClass  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    msg = LabelInfo()
    msg.header = header
    msg.class_map = [VisionClass(class_id=i, class_name=cls.name) for i, cls in enumerate(spec.classes)]
    msg.threshold = 0.0
    return msg


def legend_image(spec: ModelSpec, row_height: int = 28, width: int = 260) -> np.ndarray:
    """An RGB image listing each class's colour swatch, name and role (drivable / obstacle)."""
    img = np.full((row_height * spec.num_classes, width, 3), 32, np.uint8)
    for i, cls in enumerate(spec.classes):
        top = i * row_height
        cv2.rectangle(img, (4, top + 4), (4 + row_height * 2, top + row_height - 4), cls.color, thickness=-1)
        role = " (drivable)" if cls.drivable else " (obstacle)" if cls.obstacle else ""
        cv2.putText(
            img,
            f"{i} {cls.name}{role}",
            (row_height * 2 + 12, top + row_height - 9),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return img


NOT_COUNTED_WHY = "several publishers on the input; this rclpy does not name a frame's publisher"


def lost_in_transport_values(stats: StatsSnapshot) -> dict[str, str]:
    """The frames-lost diagnostics. The count stays an integer, of the frames whose losses could be told;
    `.counted` says whether they can be now (false while several publishers share the input and this rclpy
    does not say which sent a frame: ROS 2 Jazzy; true again once one is left), and `.not_counted_frames`
    how many frames' losses were not counted, so a 0 never silently means "nothing was lost"."""
    values = {
        "frames_lost_in_transport": str(stats.lost_in_transport),
        "frames_lost_in_transport.counted": "true" if stats.loss_counted else "false",
        "frames_lost_in_transport.not_counted_frames": str(stats.loss_not_counted),
    }
    if not stats.loss_counted:
        values["frames_lost_in_transport.why"] = NOT_COUNTED_WHY
    return values


def diagnostics_message(
    stamp: Time,
    name: str,
    hardware_id: str,
    stats: StatsSnapshot,
    extra: dict[str, str],
    stale: bool,
    health: HealthReport | None = None,
    intake_stopped: str = "",
) -> DiagnosticArray:
    """One DiagnosticStatus: ERROR when the camera's health failed (its masks say nothing about the scene),
    WARN when input is stale, frames failed in inference or health is degraded, else OK; the message
    names the health reasons flagged. ERROR too, before all else, when the camera intake's thread stopped
    (`intake_stopped` says why): no frame reaches the node any more."""
    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = hardware_id
    if intake_stopped:
        status.level, status.message = DiagnosticStatus.ERROR, f"camera intake {intake_stopped}"
    elif health is not None and health.health == FAILED:
        status.level, status.message = DiagnosticStatus.ERROR, health.message
    elif stale:
        status.level, status.message = DiagnosticStatus.WARN, "no input frames"
    elif stats.failed:
        status.level, status.message = DiagnosticStatus.WARN, f"{stats.failed} frames failed in inference"
    elif health is not None and health.flagged:
        status.level, status.message = DiagnosticStatus.WARN, health.message
    else:
        status.level, status.message = DiagnosticStatus.OK, "segmenting"
    values = {
        "input_rate_hz": f"{stats.input_rate_hz:.2f}",
        "output_rate_hz": f"{stats.output_rate_hz:.2f}",
        "frames_received": str(stats.received),
        "frames_processed": str(stats.processed),
        "frames_dropped": str(stats.dropped),
        "frames_replaced": str(stats.replaced),
        **lost_in_transport_values(stats),
        "bad_frames": str(stats.bad_frames),
        **{f"bad_frames.{reason}": str(n) for reason, n in sorted(stats.bad_by_reason.items())},
        "failed_frames": str(stats.failed),
        "latency_p50_ms": f"{stats.latency_p50_ms:.2f}",
        "latency_p95_ms": f"{stats.latency_p95_ms:.2f}",
        "latency_max_ms": f"{stats.latency_max_ms:.2f}",
        **(health.values if health is not None else {}),
        **extra,
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status]
    return out

"""Message conversions: headers kept, steps and encodings right, intrinsics scaled with the image."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from seg_perception.core.frame_stats import FrameStats
from seg_perception.core.model_spec import ClassInfo, HeadSpec, InputSpec, ModelSpec
from seg_perception.ros.messages import diagnostics_message, image_message, legend_image, scaled_camera_info


def _header() -> Header:
    h = Header(frame_id="cam")
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


def test_image_message_mono_and_rgb() -> None:
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    msg = image_message(_header(), labels, "mono8")
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian) == (3, 4, 4, "mono8", 0)
    assert bytes(msg.data) == labels.tobytes()
    assert msg.header.frame_id == "cam" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = image_message(_header(), rgb[:, ::-1], "rgb8")  # non-contiguous input is packed
    assert msg.step == 9 and bytes(msg.data) == np.ascontiguousarray(rgb[:, ::-1]).tobytes()


def test_camera_info_scaled_to_output_size() -> None:
    info = CameraInfo(width=1280, height=720, distortion_model="plumb_bob")
    info.k = [1000.0, 0.0, 640.0, 0.0, 1000.0, 360.0, 0.0, 0.0, 1.0]
    info.p = [1000.0, 0.0, 640.0, 0.0, 0.0, 1000.0, 360.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.2, 0.0, 0.0, 0.0]
    out = scaled_camera_info(info, _header(), 320, 192)
    assert (out.width, out.height) == (320, 192)
    assert list(out.k) == [250.0, 0.0, 160.0, 0.0, 1000.0 * 192 / 720, 360.0 * 192 / 720, 0.0, 0.0, 1.0]
    assert out.p[0] == 250.0 and out.p[6] == 360.0 * 192 / 720 and out.p[10] == 1.0
    assert list(out.d) == list(info.d) and out.distortion_model == "plumb_bob"
    assert out.header.frame_id == "cam"


def test_legend_lists_every_class() -> None:
    classes = tuple(ClassInfo(f"c{i}", (i * 30, 0, 255 - i * 30), drivable=i == 0) for i in range(5))
    spec = ModelSpec(
        "m",
        __import__("pathlib").Path("m.onnx"),
        InputSpec("x", "NCHW", 8, 8, "RGB", 1.0, (0, 0, 0), (1, 1, 1)),
        (HeadSpec("y", "logits", 1, tuple(range(5))),),
        classes,
        255,
    )
    img = legend_image(spec)
    assert img.shape == (28 * 5, 260, 3) and img.dtype == np.uint8
    for i, cls in enumerate(classes):  # each row shows its class colour in the swatch
        assert tuple(img[i * 28 + 14, 20]) == cls.color


def test_diagnostics_levels() -> None:
    stats = FrameStats()
    stats.on_received(False)
    stats.on_processed(12.0)
    ok = diagnostics_message(Time(sec=1), "n", "hw", stats.snapshot(), {"backend": "onnxruntime"}, stale=False)
    status = ok.status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and values["frames_processed"] == "1"
    assert values["latency_p50_ms"] == "12.00" and values["backend"] == "onnxruntime"
    stale = diagnostics_message(Time(sec=2), "n", "hw", stats.snapshot(), {}, stale=True)
    assert stale.status[0].level == DiagnosticStatus.WARN and stale.status[0].message == "no input frames"


def test_diagnostics_levels_follow_health() -> None:
    from seg_perception.core.health import HealthMonitor, health_report

    stats = FrameStats()
    monitor = HealthMonitor()
    for i in range(3):
        monitor.update(np.zeros((90, 160, 3), np.uint8), i)
    failed = diagnostics_message(Time(sec=1), "n", "hw", stats.snapshot(), {}, False, health_report(monitor, 0.1))
    values = {kv.key: kv.value for kv in failed.status[0].values}
    assert failed.status[0].level == DiagnosticStatus.ERROR
    assert failed.status[0].message == "failed: dark, blocked, low_visibility"
    assert values["health"] == "failed" and values["health.dark"] == "1.000"
    stale = diagnostics_message(Time(sec=2), "n", "hw", stats.snapshot(), {}, True, health_report(monitor, 5.0))
    assert stale.status[0].level == DiagnosticStatus.WARN and stale.status[0].message == "no input frames"
    foggy = HealthMonitor()
    for i in range(3):
        foggy.update(np.random.default_rng(i).integers(120, 160, (90, 160, 3), dtype=np.uint8), i)  # grey range < 40
    report = health_report(foggy, 0.1)
    assert report.flagged == {"low_visibility"}, report.values
    degraded = diagnostics_message(Time(sec=3), "n", "hw", stats.snapshot(), {}, False, report)
    assert degraded.status[0].level == DiagnosticStatus.WARN
    assert degraded.status[0].message == "degraded: low_visibility"

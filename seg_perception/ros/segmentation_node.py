"""The segmentation node: a one-slot frame buffer fed by the subscription, drained by a worker thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.subscription import MessageInfo, Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_perception.core import image_codec
from seg_perception.core.errors import ImageCodecError, SegPerceptionError
from seg_perception.core.frame_stats import FrameStats
from seg_perception.core.model_spec import ModelSpec, default_spec_path, load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter, SegResult
from seg_perception.ros.messages import diagnostics_message, image_message, legend_image, scaled_camera_info
from seg_perception.ros.parameters import PARAMETERS, NodeConfig, validate_parameters

WARN_PERIOD_S = 5.0  # rate limit of per-frame warnings: one line per problem kind per period
STALE_AFTER_S = 3.0


@dataclass
class _Pending:
    msg: Image | CompressedImage
    received: float  # time.monotonic() at arrival


def _descriptor(p: Any) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=True)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.minimum is not None and isinstance(p.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(p.minimum), to_value=float(p.maximum))]
    elif p.minimum is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
        d.integer_range = [IntegerRange(from_value=int(p.minimum), to_value=int(p.maximum), step=1)]
    return d


class SegmentationNode(Node):
    """Subscribes to a camera, publishes labels, drivable mask, overlay, colour mask and confidence."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("seg_perception", **kwargs)
        self.config = self._read_config()
        self.spec = self._load_spec(self.config)
        self.segmenter = Segmenter(
            self.spec,
            backend=self.config.backend,
            output_resolution=self.config.output_resolution,  # type: ignore[arg-type]
            overlay_alpha=self.config.overlay_alpha,
            threads=self.config.threads,
            backend_options={
                "precision": self.config.precision,
                "engine_cache_dir": self.config.engine_cache_dir,
                "engine_build": self.config.engine_build,
            }
            if self.config.backend != "onnxruntime"
            else None,
        )
        self.get_logger().info(
            f"model {self.spec.name} ({self.spec.num_classes} classes) from {self.spec.spec_path}; "
            f"backend {self.segmenter.backend_name}: {self.segmenter.backend_reason}"
        )
        if self.segmenter.backend_name == "onnxruntime":
            # Proves model, graph and backend work before any frame arrives (fail fast); TensorRT
            # engines are per camera size and are built or loaded from the cache on the first frame.
            took = self.segmenter.warm_up()
            self.get_logger().info(f"warm-up on {self.segmenter.describe_backend()} took {took:.0f} ms")
        self.stats = FrameStats()
        self._slot: _Pending | None = None
        self._slot_cond = threading.Condition()
        self._running = True
        self._last_warn: dict[str, float] = {}
        self._camera_info: CameraInfo | None = None
        self._last_input = time.monotonic()
        self._last_sequence: dict[bytes, int] = {}

        out_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.config.qos_depth, reliability=ReliabilityPolicy.RELIABLE
        )
        self.pub_labels = self.create_publisher(Image, "segmentation/labels", out_qos)
        self.pub_drivable = self.create_publisher(Image, "segmentation/drivable_mask", out_qos)
        self.pub_overlay = (
            self.create_publisher(Image, "segmentation/overlay", out_qos) if (self.config.publish_overlay) else None
        )
        self.pub_color = (
            self.create_publisher(Image, "segmentation/color_mask", out_qos)
            if (self.config.publish_color_mask)
            else None
        )
        self.pub_confidence = (
            self.create_publisher(Image, "segmentation/confidence", out_qos)
            if (self.config.publish_confidence)
            else None
        )
        self.pub_info = self.create_publisher(CameraInfo, "segmentation/camera_info", out_qos)
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.pub_legend = self.create_publisher(Image, "segmentation/legend", latched)
        self.pub_legend.publish(image_message(self._legend_header(), legend_image(self.spec), "rgb8"))
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.sub_info = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, 1)
        self._image_type = CompressedImage if self.config.input_transport == "compressed" else Image
        self._image_topic = "image/compressed" if self.config.input_transport == "compressed" else "image"
        self.sub_image: Subscription[Any] | None = None
        self._qos_timer = None
        if not self._try_subscribe():
            resolved = self.resolve_topic_name(self._image_topic)
            self.get_logger().info(f"qos_reliability auto: waiting for a publisher on {resolved}")
            self._qos_timer = self.create_timer(0.2, self._retry_subscribe)

        self._diag_timer = self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="seg_perception_worker", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------- start-up

    def _read_config(self) -> NodeConfig:
        values = {}
        for p in PARAMETERS:
            self.declare_parameter(p.name, p.default, _descriptor(p))
            values[p.name] = self.get_parameter(p.name).value
        return validate_parameters(values)

    @staticmethod
    def _load_spec(config: NodeConfig) -> ModelSpec:
        return load_model_spec(Path(config.model) if config.model else default_spec_path())

    def _legend_header(self) -> Any:
        from std_msgs.msg import Header

        return Header(stamp=self.get_clock().now().to_msg(), frame_id="legend")

    def _input_reliability(self) -> ReliabilityPolicy | None:
        """The reliability to subscribe with, or None while auto has no publisher to match yet."""
        if self.config.qos_reliability == "reliable":
            return ReliabilityPolicy.RELIABLE
        if self.config.qos_reliability == "best_effort":
            return ReliabilityPolicy.BEST_EFFORT
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name(self._image_topic))
        if not infos:
            return None
        # As rosbag2 does: reliable only when every publisher offers it (a reliable reader
        # cannot match a best-effort writer).
        if all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
            return ReliabilityPolicy.RELIABLE
        return ReliabilityPolicy.BEST_EFFORT

    def _retry_subscribe(self) -> None:
        self._try_subscribe()

    def _try_subscribe(self) -> bool:
        reliability = self._input_reliability()
        if reliability is None:
            return False
        if self._qos_timer is not None:
            self._qos_timer.cancel()
            self.destroy_timer(self._qos_timer)
            self._qos_timer = None
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.config.qos_depth, reliability=reliability)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        sub = self.create_subscription(self._image_type, self._image_topic, self._on_image, qos, event_callbacks=events)
        self.sub_image = sub
        self.get_logger().info(
            f"subscribed to {sub.topic_name} ({self._image_type.__name__}, "
            f"{reliability.name.lower()}, depth {self.config.qos_depth})"
        )
        return True

    def _on_incompatible_qos(self, event: Any) -> None:
        self.get_logger().warning(
            f"incompatible QoS on {self._image_topic} (policy {event.last_policy_kind}); a publisher offers "
            "weaker QoS than this node requests: set parameter qos_reliability to best_effort or auto"
        )

    # ---------------------------------------------------------------- callbacks (never run inference)

    def _lost_in_transport(self, info: MessageInfo) -> int:
        """Frames a publisher sent that never reached this callback (DDS history overwrote them)."""
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if not seq or not gid:
            return 0
        key = bytes(gid.get("data", b""))
        last = self._last_sequence.get(key)
        self._last_sequence[key] = seq
        return max(0, seq - last - 1) if last is not None else 0

    def _on_image(self, msg: Image | CompressedImage, info: MessageInfo) -> None:
        pending = _Pending(msg, time.monotonic())
        lost = self._lost_in_transport(info)
        with self._slot_cond:
            replaced = self._slot is not None
            self._slot = pending
            self._slot_cond.notify()
        self._last_input = pending.received
        self.stats.on_received(replaced, lost)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    # ---------------------------------------------------------------- worker

    def _work(self) -> None:
        while True:
            with self._slot_cond:
                while self._slot is None and self._running:
                    self._slot_cond.wait(timeout=0.5)
                if not self._running:
                    return
                pending, self._slot = self._slot, None
            if pending is None:
                continue
            try:
                self._process(pending)
            except ImageCodecError as exc:
                self.stats.on_bad_frame()
                self._warn("bad_frame", f"dropping a bad frame: {exc}")
            except SegPerceptionError as exc:
                self.stats.on_failure()
                self._warn("failure", f"segmentation failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything one frame does
                self.stats.on_failure()
                self._warn("unexpected", f"unexpected {type(exc).__name__} while segmenting: {exc}")

    def _wanted(self) -> OutputSelection:
        def wanted(pub: Any) -> bool:
            return pub is not None and pub.get_subscription_count() > 0

        return OutputSelection(
            drivable=wanted(self.pub_drivable),
            color_mask=wanted(self.pub_color),
            overlay=wanted(self.pub_overlay),
            confidence=wanted(self.pub_confidence),
        )

    def _process(self, pending: _Pending) -> None:
        msg, limit = pending.msg, self.config.max_image_pixels
        want = self._wanted()
        if not (
            any((want.drivable, want.color_mask, want.overlay, want.confidence))
            or self.pub_labels.get_subscription_count()
            or self.pub_info.get_subscription_count()
        ):
            return  # nobody listens: skip the work
        if isinstance(msg, CompressedImage):
            frame, order = image_codec.compressed_to_inference_frame(msg.format, msg.data, max_pixels=limit)
        else:
            frame, order = image_codec.to_inference_frame(
                msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, max_pixels=limit
            )
        result = self.segmenter.segment(frame, order, want)
        self._publish(msg.header, result)
        self.stats.on_processed((time.monotonic() - pending.received) * 1e3)

    def _publish(self, header: Any, result: SegResult) -> None:
        self.pub_labels.publish(image_message(header, result.labels, "mono8"))
        if result.drivable is not None:
            self.pub_drivable.publish(image_message(header, result.drivable, "mono8"))
        if result.overlay is not None and self.pub_overlay is not None:
            self.pub_overlay.publish(image_message(header, result.overlay, "rgb8"))
        if result.color_mask is not None and self.pub_color is not None:
            self.pub_color.publish(image_message(header, result.color_mask, "rgb8"))
        if result.confidence is not None and self.pub_confidence is not None:
            self.pub_confidence.publish(image_message(header, result.confidence, "mono8"))
        info = self._camera_info
        if info is not None:
            h, w = result.labels.shape
            self.pub_info.publish(scaled_camera_info(info, header, w, h))

    def _warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(kind, -1e9) >= WARN_PERIOD_S:
            self._last_warn[kind] = now
            self.get_logger().warning(f"{text} (further '{kind}' warnings suppressed for {WARN_PERIOD_S:.0f} s)")

    # ---------------------------------------------------------------- diagnostics and shutdown

    def _publish_diagnostics(self) -> None:
        snap = self.stats.snapshot()
        extra = {
            "backend": self.segmenter.describe_backend(),
            "model": self.spec.name,
            "engine": self.segmenter.backend_name,
            "input_topic": self.sub_image.topic_name if self.sub_image is not None else "(waiting for publisher)",
        }
        stale = time.monotonic() - self._last_input > STALE_AFTER_S
        self.pub_diag.publish(
            diagnostics_message(
                self.get_clock().now().to_msg(),
                f"{self.get_name()}: segmentation",
                self.get_fully_qualified_name(),
                snap,
                extra,
                stale,
            )
        )

    def destroy_node(self) -> None:
        """Stop the worker, release the backend, then destroy the ROS entities."""
        with self._slot_cond:
            self._running = False
            self._slot_cond.notify_all()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=2.0)
        self.segmenter.close()
        super().destroy_node()

"""The segmentation node (a managed lifecycle node).

The camera subscriptions live on a lean node of their own with its own executor thread
(ros/camera_intake.py); their callbacks only store the newest frame per camera. One worker thread gathers
the newest frame of every camera (waiting a short window for cameras that are live), runs one batched inference
per frame size, and publishes each camera's outputs with that camera's header.

Lifecycle: configure loads the model and backend and creates publishers; activate subscribes and
starts the worker; deactivate unsubscribes and stops it; cleanup releases the backend. With
`autostart` (the default) the node walks itself to active, so plain launches keep working.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.core import compressed_codec, image_codec
from seg_perception.core.errors import ImageCodecError, SegPerceptionError
from seg_perception.core.ground_grid import GridSpec, MountPose, fuse, occupancy_table
from seg_perception.core.health import HealthMonitor, health_report
from seg_perception.core.image_cdr import FrameHeader, parse_compressed_image, parse_image
from seg_perception.core.model_spec import ModelSpec, default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.core.video_stream import DecodedPicture
from seg_perception.pipeline import Segmenter, drivable_table
from seg_perception.ros.camera_channel import (
    COMPRESSED_TOPICS,
    LISTENERS_REFRESH_S,
    OUTPUT_TOPICS,
    CameraChannel,
    PendingFrame,
)
from seg_perception.ros.camera_intake import RUNNING, CameraIntake
from seg_perception.ros.messages import (
    diagnostics_message,
    image_message,
    label_info_message,
    label_info_off_reason,
    legend_image,
    occupancy_grid_message,
    ros_header,
    vision_msgs_import_error,
)
from seg_perception.ros.output_qos import RELIABILITY, latched_qos, matched_reliability, stream_qos
from seg_perception.ros.parameters import PARAMETERS, NodeConfig, ParameterDef, pose_vector, validate_parameters
from seg_perception.ros.stage_times import STAGE_TIMES_TOPIC, stage_times_message
from seg_perception.ros.video_input import VideoInputs

WARN_PERIOD_S = 5.0  # rate limit of per-frame warnings: one line per problem kind per period


def _descriptor(p: ParameterDef) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=True)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.minimum is not None and p.maximum is not None and isinstance(p.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(p.minimum), to_value=float(p.maximum))]
    elif p.minimum is not None and p.maximum is not None and type(p.default) is int:
        d.integer_range = [IntegerRange(from_value=int(p.minimum), to_value=int(p.maximum), step=1)]
    return d


class SegmentationNode(LifecycleNode):
    """Publishes labels, drivable mask, overlay, colour mask and confidence for one or more cameras."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("seg_perception", **kwargs)
        # State first: rclpy may destroy a half-built node when reading the configuration fails.
        self.configure_error: str | None = None
        self.channels: list[CameraChannel] = []
        self.spec: ModelSpec | None = None
        self.segmenter: Segmenter | None = None
        self._cond = threading.Condition()
        self._running = False
        self._worker: threading.Thread | None = None
        self._last_warn: dict[str, float] = {}
        self._batch_sizes: list[int] = []
        self._legend_pub: Any = None
        self._label_info_pub: Any = None
        self._label_info_state = "not configured"  # /diagnostics `label_info`: published, or off and why
        self._label_info_warned = False
        self._diag_pub: Any = None
        self._stage_times_pub: Any = None
        self._diag_timer: Any = None
        self._grid_pub: Any = None
        self._grid_lut: np.ndarray | None = None
        self._grids_published = 0
        self._grid_listened = False
        self._grid_listeners_read = -math.inf
        self._window_expired = 0
        self.intake: CameraIntake | None = None
        self._video = VideoInputs(self, enabled=False)  # ros/video_input.py; on once the config says so
        self.config = self._read_config()
        self._video.enabled = self.config.video_input
        self.grid_spec = GridSpec(
            self.config.grid_resolution,
            self.config.grid_width,
            self.config.grid_height,
            self.config.grid_origin_x,
            self.config.grid_origin_y,
            self.config.grid_max_range,
        )
        names = self.config.cameras or ("",)
        self.channels = [
            CameraChannel(name or "camera", f"{name}/" if name else "", self._mount_pose(name), self.config.health)
            for name in names
        ]
        self.intake = CameraIntake(self.get_name(), self.get_namespace(), self.get_logger().error, self.context)
        self._video.intake = self.intake

    # ---------------------------------------------------------------- parameters

    def _read_config(self) -> NodeConfig:
        values: dict[str, Any] = {}
        for p in PARAMETERS:
            if isinstance(p.default, tuple) and not p.default:  # an empty default cannot carry its type
                self.declare_parameter(p.name, Parameter.Type.STRING_ARRAY, _descriptor(p))
                try:
                    values[p.name] = tuple(self.get_parameter(p.name).value)
                except ParameterUninitializedException:
                    values[p.name] = p.default
                continue
            default = list(p.default) if isinstance(p.default, tuple) else p.default
            self.declare_parameter(p.name, default, _descriptor(p))
            values[p.name] = self.get_parameter(p.name).value
        return validate_parameters(values)

    def _mount_pose(self, camera: str) -> MountPose:
        """The global mount_xyz_rpy, or <camera>.mount_xyz_rpy for a named camera when it is set."""
        if not camera:
            return MountPose.from_list(self.config.mount_xyz_rpy)
        name = f"{camera}.mount_xyz_rpy"
        self.declare_parameter(
            name,
            list(self.config.mount_xyz_rpy),
            ParameterDescriptor(description=f"mounting pose of camera {camera}", read_only=True),
        )
        return MountPose.from_list(pose_vector(name, self.get_parameter(name).value))

    # ---------------------------------------------------------------- lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and backend (fail here, not on the first frame) and create publishers."""
        try:
            self._load()
        except SegPerceptionError as exc:
            self.configure_error = str(exc)
            if not self.config.autostart:  # with autostart, main() reports it as the one fatal line
                self.get_logger().error(f"configure failed: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def _load(self) -> None:
        cfg = self.config
        spec = load_model_spec(Path(cfg.model) if cfg.model else default_spec_path())
        options = {
            "precision": cfg.precision,
            "engine_cache_dir": cfg.engine_cache_dir,
            "engine_build": cfg.engine_build,
        }
        self.segmenter = Segmenter(
            spec,
            backend=cfg.backend,
            output_resolution=cfg.output_resolution,  # type: ignore[arg-type]
            overlay_alpha=cfg.overlay_alpha,
            threads=cfg.threads,
            # Frames come at the camera's pace: ONNX Runtime's threads sleep between them (backends.create_backend).
            backend_options={**(options if cfg.backend != "onnxruntime" else {}), "spin_wait": False},
        )
        self.spec = spec
        self.get_logger().info(
            f"model {spec.name} ({spec.num_classes} classes) from {spec.spec_path}; "
            f"backend {self.segmenter.backend_name}: {self.segmenter.backend_reason}"
        )
        if self.segmenter.backend_name == "onnxruntime":
            # Proves model, graph and backend work before any frame arrives. TensorRT engines are per
            # camera size; they are loaded from the cache or built on the first frame.
            took = self.segmenter.warm_up()
            self.get_logger().info(f"warm-up on {self.segmenter.describe_backend()} took {took:.0f} ms")
        out_qos = stream_qos("reliable", cfg.qos_depth)
        # What Nav2's semantic segmentation layer reads (ros/output_qos.py): reliability set per topic.
        topic_qos = {
            "labels": stream_qos(cfg.labels_qos_reliability, cfg.qos_depth),
            "confidence": stream_qos(cfg.confidence_qos_reliability, cfg.qos_depth),
        }
        enabled = {
            "overlay": cfg.publish_overlay,
            "color_mask": cfg.publish_color_mask,
            "confidence": cfg.publish_confidence,
        }
        for ch in self.channels:
            for topic in OUTPUT_TOPICS:
                if enabled.get(topic, True):
                    ch.publishers[topic] = self.create_lifecycle_publisher(
                        Image, ch.topic(f"segmentation/{topic}"), topic_qos.get(topic, out_qos)
                    )
            ch.head_masks = tuple(mask.name for mask in spec.masks if mask.topic not in OUTPUT_TOPICS)
            for name in ch.head_masks:  # the drivable mask keeps segmentation/drivable_mask
                ch.publishers[f"{name}_mask"] = self.create_lifecycle_publisher(
                    Image, ch.topic(f"segmentation/{name}_mask"), out_qos
                )
            for topic in COMPRESSED_TOPICS:
                ch.publishers[topic] = self.create_lifecycle_publisher(
                    CompressedImage, ch.topic(f"segmentation/{topic}"), out_qos
                )
            ch.info_publisher = self.create_lifecycle_publisher(
                CameraInfo, ch.topic("segmentation/camera_info"), out_qos
            )
        latched = latched_qos()
        self._legend_pub = self.create_publisher(Image, "segmentation/legend", latched)
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="legend")
        self._legend_pub.publish(image_message(header, legend_image(spec), "rgb8"))
        # Published once, before any frame: stamped when the class map became valid, in no frame (the
        # class map holds for every camera; Nav2's layer reads only class_map).
        label_info = label_info_message(spec, Header(stamp=header.stamp, frame_id=""))  # None without vision_msgs
        if label_info is not None:
            self._label_info_pub = self.create_publisher(type(label_info), "segmentation/label_info", latched)
            self._label_info_pub.publish(label_info)
            self._label_info_state = "published"
        else:
            missing = vision_msgs_import_error() or "unknown"
            self._label_info_state = label_info_off_reason(missing)
            if not self._label_info_warned:  # once per process, however often the node is configured
                self._label_info_warned = True
                self.get_logger().warning(
                    f"segmentation/label_info is not published: vision_msgs is not importable ({missing}); "
                    "Nav2's semantic segmentation layer needs it: install ros-<distro>-vision-msgs"
                )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if cfg.publish_stage_times:  # a debug topic for the bench's latency budget; off by default
            self._stage_times_pub = self.create_publisher(DiagnosticArray, STAGE_TIMES_TOPIC, out_qos)
        self._grid_pub = self.create_lifecycle_publisher(OccupancyGrid, "segmentation/drivable_grid", out_qos)
        self._grid_lut = occupancy_table(spec.drivable_ids, spec.num_classes)
        for ch in self.channels:
            ch.forget_listeners()
            ch.health = HealthMonitor(cfg.health, drivable_table(spec))
            ch.compute_confidence = cfg.health_compute_confidence and cfg.health_confidence_ratio > 0
        self._grid_listeners_read = -math.inf

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._cond:  # before subscribing: a frame stored once the subscription exists is kept
            for ch in self.channels:  # one the intake stored while deactivating is stale now
                ch.pending = None
        for ch in self.channels:
            image_ready = self._try_subscribe(ch)
            info_ready = self._try_subscribe_camera_info(ch)
            if not image_ready:
                resolved = self.resolve_topic_name(self._image_topic(ch))
                self.get_logger().info(f"qos_reliability auto: waiting for a publisher on {resolved}")
            if not info_ready:
                resolved = self.resolve_topic_name(ch.topic("camera_info"))
                self.get_logger().info(f"camera_info_qos_reliability auto: waiting for a publisher on {resolved}")
            if not (image_ready and info_ready):
                ch.qos_timer = self.create_timer(0.2, partial(self._retry_subscribe, ch))
        with self._cond:
            self._running = True
        self._worker = threading.Thread(target=self._work, name="seg_perception_worker", daemon=True)
        self._worker.start()
        self._video.activate(self.channels, self._cond)
        self._diag_timer = self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._video.deactivate()
        self._stop_worker()
        for ch in self.channels:
            for attr in ("subscription", "info_subscription"):
                sub = getattr(ch, attr)
                if sub is not None and self.intake is not None:
                    self.intake.unsubscribe(sub)
                    setattr(ch, attr, None)
            self._cancel_qos_timer(ch)
            ch.pending = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._video.deactivate()
        self._stop_worker()
        self._release()
        return super().on_shutdown(state)

    def _release(self) -> None:
        for ch in self.channels:
            for pub in ch.publishers.values():
                self.destroy_lifecycle_publisher(pub)
            ch.publishers.clear()
            ch.forget_listeners()
            if ch.info_publisher is not None:
                self.destroy_lifecycle_publisher(ch.info_publisher)
                ch.info_publisher = None
        if self._grid_pub is not None:
            self.destroy_lifecycle_publisher(self._grid_pub)
            self._grid_pub = None
        for attr in ("_legend_pub", "_label_info_pub", "_diag_pub", "_stage_times_pub"):
            pub = getattr(self, attr)
            if pub is not None:
                self.destroy_publisher(pub)
                setattr(self, attr, None)
        if self.segmenter is not None:
            self.segmenter.close()
            self.segmenter = None

    # ---------------------------------------------------------------- input QoS

    def _image_topic(self, ch: CameraChannel) -> str:
        return ch.topic("image/compressed" if self.config.input_transport == "compressed" else "image")

    def _reliability_for(self, setting: str, topic: str) -> ReliabilityPolicy | None:
        """The reliability to subscribe to `topic` with, or None while auto has no publisher to match yet."""
        if setting in RELIABILITY:
            return RELIABILITY[setting]
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name(topic))
        return matched_reliability([i.qos_profile.reliability for i in infos])

    def _cancel_qos_timer(self, ch: CameraChannel) -> None:
        if ch.qos_timer is not None:
            ch.qos_timer.cancel()
            self.destroy_timer(ch.qos_timer)
            ch.qos_timer = None

    def _retry_subscribe(self, ch: CameraChannel) -> None:
        if self._try_subscribe(ch) & self._try_subscribe_camera_info(ch):  # both tried, every time
            self._cancel_qos_timer(ch)

    def _try_subscribe_camera_info(self, ch: CameraChannel) -> bool:
        """camera_info matches its publishers as the image does (a best-effort CameraInfo writer never
        matches a reliable reader, and segmentation/camera_info would never be published)."""
        if ch.info_subscription is not None:
            return True
        topic = ch.topic("camera_info")
        reliability = self._reliability_for(self.config.camera_info_qos_reliability, topic)
        if reliability is None or self.intake is None:
            return False
        ch.info_subscription = self.intake.subscribe(
            CameraInfo,
            self.resolve_topic_name(topic),
            partial(setattr, ch, "camera_info"),
            QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=partial(self._on_incompatible, topic, "camera_info_qos_reliability")
            ),
        )
        self.get_logger().info(
            f"subscribed to {ch.info_subscription.topic_name} (CameraInfo, {reliability.name.lower()})"
        )
        return True

    def _try_subscribe(self, ch: CameraChannel) -> bool:
        if ch.subscription is not None:
            return True
        reliability = self._reliability_for(self.config.qos_reliability, self._image_topic(ch))
        if reliability is None or self.intake is None:
            return False
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.config.qos_depth, reliability=reliability)
        msg_type = CompressedImage if self.config.input_transport == "compressed" else Image
        # On the intake node (its own executor thread): resolved here, so this node's remappings apply.
        ch.subscription = self.intake.subscribe(
            msg_type,
            self.resolve_topic_name(self._image_topic(ch)),
            partial(ch.store, cond=self._cond),
            qos,
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=partial(self._on_incompatible, self._image_topic(ch), "qos_reliability")
            ),
            raw=True,  # serialized bytes: the worker views the pixels in place (core/image_cdr.py)
        )
        ch.publisher_count = partial(self.count_publishers, ch.subscription.topic_name)
        self.get_logger().info(
            f"subscribed to {ch.subscription.topic_name} ({msg_type.__name__}, {reliability.name.lower()}, "
            f"depth {self.config.qos_depth})"
        )
        return True

    def _on_incompatible(self, topic: str, parameter: str, event: Any) -> None:
        self.get_logger().warning(
            f"incompatible QoS on {topic} (policy {event.last_policy_kind}); a publisher offers "
            f"weaker QoS than this node requests: set parameter {parameter} to best_effort or auto"
        )

    # ---------------------------------------------------------------- worker

    def _stop_worker(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        worker, self._worker = self._worker, None
        if worker is not None and worker.is_alive() and threading.current_thread() is not worker:
            worker.join(timeout=2.0)

    def _gather(self) -> list[tuple[CameraChannel, PendingFrame]] | None:
        """Wait for a frame, then up to batch_window_ms for the other live cameras; None when stopping."""
        with self._cond:
            while self._running and not any(ch.pending for ch in self.channels):
                self._cond.wait(timeout=0.5)
            if not self._running:
                return None
            if len(self.channels) > 1 and self.config.batch_window_ms > 0:
                deadline = time.monotonic() + self.config.batch_window_ms / 1e3
                while self._running:
                    now = time.monotonic()
                    waiting = [ch for ch in self.channels if ch.pending is None and ch.is_live(now)]
                    if not waiting:
                        break
                    if now >= deadline:  # a live camera missed the window: counted, for tuning batch_window_ms
                        self._window_expired += 1
                        break
                    self._cond.wait(timeout=deadline - now)
            taken = [(ch, ch.take()) for ch in self.channels]
        return [(ch, p) for ch, p in taken if p is not None]

    def _work(self) -> None:
        while True:
            gathered = self._gather()
            if gathered is None:
                return
            try:
                self._process(gathered)
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything a frame does
                for ch, _ in gathered:
                    ch.stats.on_failure()
                self._warn("unexpected", f"unexpected {type(exc).__name__} while segmenting: {exc}")

    def _decode(self, pending: PendingFrame) -> tuple[np.ndarray, str, FrameHeader]:
        """The serialized frame as an inference frame (a view on its bytes where the encoding allows)."""
        limit = self.config.max_image_pixels
        if isinstance(pending.msg, DecodedPicture):  # decoded from a video topic (ros/video_input.py)
            return pending.msg.frame, "RGB", pending.msg.header
        if self.config.input_transport == "compressed":
            compressed = parse_compressed_image(pending.msg)  # type: ignore[arg-type]
            frame, order = compressed_codec.compressed_to_inference_frame(
                compressed.format, compressed.data, max_pixels=limit
            )
            return frame, order, compressed.header
        msg = parse_image(pending.msg)  # type: ignore[arg-type]
        frame, order = image_codec.to_inference_frame(
            msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, max_pixels=limit
        )
        return frame, order, msg.header

    def _grid_wanted(self) -> bool:
        """Somebody subscribes to the grid (the count re-read at most every LISTENERS_REFRESH_S)."""
        if self._grid_lut is None or self._grid_pub is None:
            return False
        now = time.monotonic()
        if now - self._grid_listeners_read >= LISTENERS_REFRESH_S:
            self._grid_listened = self._grid_pub.get_subscription_count() > 0
            self._grid_listeners_read = now
        return self._grid_listened

    def _process(self, gathered: list[tuple[CameraChannel, PendingFrame]]) -> None:
        segmenter = self.segmenter
        if segmenter is None:
            return
        groups: dict[tuple[int, int, str], list[tuple[CameraChannel, PendingFrame, Any, FrameHeader]]] = defaultdict(
            list
        )
        lut = self._grid_lut
        want_grid = self._grid_wanted()
        for ch, pending in gathered:
            if not (want_grid or ch.anyone_listening()):
                continue  # nobody listens to this camera's outputs nor to the grid: skip the work
            try:
                frame, order, header = self._decode(pending)
            except ImageCodecError as exc:
                ch.stats.on_bad_frame(exc.reason)
                self._warn("bad_frame", f"dropping a bad frame on {ch.name}: {exc}")
                continue
            pending.times.stamp_ns = header.stamp_ns
            pending.times.decoded_ns = time.time_ns()
            groups[(frame.shape[1], frame.shape[0], order)].append((ch, pending, frame, header))
        projected: list[tuple[np.ndarray | None, FrameHeader]] = []
        for (_, _, order), members in groups.items():
            try:
                results = segmenter.segment_batch([m[2] for m in members], order, [m[0].wanted() for m in members])
            except SegPerceptionError as exc:
                for ch, _, _, _ in members:
                    ch.stats.on_failure()
                self._warn("failure", f"segmentation failed: {exc}")
                continue
            self._batch_sizes.append(len(members))
            segmented = time.time_ns()
            for (ch, pending, frame, header), result in zip(members, results, strict=True):
                pending.times.segmented_ns = segmented
                ch.publish(header, result, pending.times)
                ch.check_health(frame, header.stamp_ns, result)
                if self._stage_times_pub is not None:
                    self._stage_times_pub.publish(stage_times_message(ros_header(header), pending.times))
                if want_grid and lut is not None:
                    projected.append((ch.project(result.labels, self.grid_spec, lut), header))
                ch.stats.on_processed((time.monotonic() - pending.received) * 1e3)
        if want_grid:
            self._publish_grid(projected)

    def _publish_grid(self, projected: list[tuple[np.ndarray | None, FrameHeader]]) -> None:
        """One fused grid per cycle: this cycle's cameras plus other cameras' grids younger than 0.5 s."""
        fresh = [(g, h) for g, h in projected if g is not None]
        if not fresh:
            self._warn("no_camera_info", "drivable_grid needs camera_info on each camera's camera_info topic")
            return
        now = time.monotonic()
        grids = [g for g, _ in fresh]
        grids += [
            c.last_grid
            for c in self.channels
            if c.last_grid is not None and now - c.last_grid_time < 0.5 and not any(c.last_grid is g for g in grids)
        ]
        newest = max((h for _, h in fresh), key=lambda h: h.stamp_ns)
        header = ros_header(newest)
        header.frame_id = self.config.grid_frame
        self._grid_pub.publish(occupancy_grid_message(header, fuse(grids), self.grid_spec))
        self._grids_published += 1

    def _warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(kind, -1e9) >= WARN_PERIOD_S:
            self._last_warn[kind] = now
            self.get_logger().warning(f"{text} (further '{kind}' warnings suppressed for {WARN_PERIOD_S:.0f} s)")

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None or self.segmenter is None or self.spec is None:
            return
        sizes, self._batch_sizes = self._batch_sizes, []
        mean_batch = sum(sizes) / len(sizes) if sizes else 0.0
        now = time.monotonic()
        intake_state = self.intake.state if self.intake is not None else "stopped: not created"
        statuses = []
        for ch in self.channels:
            extra = {
                "backend": self.segmenter.describe_backend(),
                "model": self.spec.name,
                "engine": self.segmenter.backend_name,
                "backend_requested": self.config.backend,
                "backend_reason": self.segmenter.backend_reason,
                "input_topic": ch.subscription.topic_name if ch.subscription is not None else "(waiting)",
                "camera_intake": intake_state,
                "mean_batch_size": f"{mean_batch:.2f}",
                "batch_window_expired": str(self._window_expired),
                **{f"computed.{topic}": str(n) for topic, n in ch.computed.items()},
                "grids_published": str(self._grids_published),
                "batch": self.segmenter.batch_mode,  # 'fixed 1': a static-batch export runs frame by frame
                "label_info": self._label_info_state,
                **self._video.diagnostics(ch),
            }
            msg = diagnostics_message(
                self.get_clock().now().to_msg(),
                f"{self.get_name()}: {ch.name}",
                self.get_fully_qualified_name(),
                ch.stats.snapshot(),
                extra,
                now - ch.last_input > self.config.health_stale_s,
                health_report(ch.health, now - ch.last_input),
                "" if intake_state == RUNNING else intake_state,
            )
            statuses.extend(msg.status)
        out = DiagnosticArray()
        out.header.stamp = self.get_clock().now().to_msg()
        out.status = statuses
        self._diag_pub.publish(out)

    def destroy_node(self) -> None:
        """Stop the worker and release the backend before the ROS entities go (idempotent)."""
        if getattr(self, "_destroyed", False):
            return
        self._destroyed = True
        self._video.deactivate()
        self._stop_worker()
        if self.intake is not None:
            self.intake.close()  # before the lifecycle node: no callback may store into a released channel
        self._release()
        super().destroy_node()

"""Real-DDS test harness: the node in a subprocess, a probe node in this process, isolated by domain id."""

from __future__ import annotations

import array
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from seg_perception.ros.domain_ids import release_domain_id, reserve_domain_id
from seg_perception.ros.node_process import NodeProcess as _NodeProcess
from seg_perception.ros.node_process import apply_to_this_process

OUTPUT_TOPICS = ("labels", "drivable_mask", "overlay", "color_mask", "confidence")


_recent_domains: deque[int] = deque()
_probes_on: Counter[int] = Counter()  # domain id -> open Probes on it


def unique_domain_id(salt: int = 0) -> int:
    """A domain id no other process on this machine holds (file-locked); `salt` is kept for call sites.

    The last few ids stay reserved so a node still shutting down from the previous test never shares a
    domain with the next one; older ones are given back so long sessions do not exhaust the range, except
    those an open Probe still uses (a module-scoped fixture outlives several tests' domains).
    """
    del salt
    for old in list(_recent_domains)[:-2]:
        if not _probes_on[old]:
            _recent_domains.remove(old)
            release_domain_id(old)
    domain = reserve_domain_id()
    _recent_domains.append(domain)
    return domain


class NodeProcess(_NodeProcess):
    """The product's node launcher, with test-friendly waiting that fails loudly."""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        if not super().wait_for_log(text, timeout):
            raise AssertionError(
                f"node (exit {self.proc.poll()}) did not log {text!r} within {timeout} s:\n{self.output}"
            )
        return True


class Probe:
    """A test node: publishes camera frames and records everything the segmentation node publishes."""

    def __init__(
        self,
        domain_id: int,
        namespace: str = "/camera",
        input_reliable: bool = True,
        cameras: tuple[str, ...] = ("",),
        outputs: tuple[str, ...] = OUTPUT_TOPICS,
        record_camera_info: bool = True,
    ) -> None:
        """`cameras` are topic prefixes ('' or 'front/'); recordings are keyed '<prefix><output>'.

        Only the `outputs` named are subscribed (the node computes only what somebody subscribes to).
        """
        apply_to_this_process(domain_id)
        self.domain_id = domain_id
        _probes_on[domain_id] += 1
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("probe", namespace=namespace, context=self.context)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._lock = threading.Lock()
        reliability = ReliabilityPolicy.RELIABLE if input_reliable else ReliabilityPolicy.BEST_EFFORT
        pub_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=reliability)
        self.image_pubs = {c: self.node.create_publisher(Image, f"{c}image", pub_qos) for c in cameras}
        self.image_pub = next(iter(self.image_pubs.values()))
        self.compressed_pub = self.node.create_publisher(CompressedImage, f"{cameras[0]}image/compressed", pub_qos)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.cameras = cameras
        self.outputs = outputs
        for cam in cameras:
            for name in outputs:
                topic = f"{cam}segmentation/{name}"
                self.node.create_subscription(Image, topic, self._recorder(f"{cam}{name}"), out_qos)
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(Image, "segmentation/legend", self._recorder("legend"), latched)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo

        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._recorder("diagnostics"), 10)
        if record_camera_info:
            self.node.create_subscription(
                CameraInfo, "segmentation/camera_info", self._recorder("camera_info"), out_qos
            )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def record(self, msg_type: Any, topic: str, name: str, depth: int = 200) -> Any:
        """Subscribe (reliable, keep last `depth`) and record what arrives under `name`."""
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_subscription(msg_type, topic, self._recorder(name), qos)

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._lock:
                self.received[name].append(msg)

        return record

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def messages(self, name: str) -> list[Any]:
        with self._lock:
            return list(self.received[name])

    def clear(self) -> None:
        """Forget recorded messages, except the latched legend (it is published only once)."""
        with self._lock:
            for name in [n for n in self.received if n != "legend"]:
                del self.received[name]

    def poll_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True as soon as `predicate()` holds, False once `timeout` has passed (for retry loops)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        if not self.poll_until(predicate, timeout):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def diagnostics(self, status: int = 0) -> dict[str, str]:
        """Key/values of the newest /diagnostics message's status `status` (one per camera); {} before any."""
        diags = self.messages("diagnostics")
        return {kv.key: kv.value for kv in diags[-1].status[status].values} if diags else {}

    def counter(self, key: str, status: int = 0) -> int:
        """An integer diagnostics value of the newest message (0 while absent)."""
        return int(self.diagnostics(status).get(key, 0))

    def wait_for_subscribers(self, publisher: Any, timeout: float = 20.0) -> None:
        self.wait_until(lambda: publisher.get_subscription_count() > 0, timeout, "the node to subscribe")

    def wait_for_node_outputs(self, timeout: float = 20.0) -> None:
        """Wait until the node's output publishers have matched our subscriptions."""
        ns = self.node.get_namespace().rstrip("/")
        self.wait_until(
            lambda: all(
                self.node.count_publishers(f"{ns}/{c}segmentation/{n}") > 0 for c in self.cameras for n in self.outputs
            ),
            timeout,
            "the node's output publishers",
        )

    def close(self) -> None:
        self._spinning = False
        # The spin thread may be inside a long callback (a burst of large frames on a loaded machine):
        # destroying the node under it raises InvalidHandle in that thread, so wait for it to finish.
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            raise AssertionError("probe spin thread did not stop within 60 s")
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        _probes_on[self.domain_id] -= 1


def image_msg(
    pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = "camera_front", step: int | None = None
) -> Image:
    """An Image with optional row padding (`step` larger than the packed row)."""
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1).view(np.uint8)
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.height, msg.width, msg.encoding, msg.is_bigendian = h, w, encoding, 0
    msg.step = step or row.shape[1]
    padded = np.zeros((h, msg.step), np.uint8)
    padded[:, : row.shape[1]] = row
    data = array.array("B")
    data.frombytes(padded.tobytes())
    msg.data = data
    return msg


def stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def msg_array(msg: Image) -> np.ndarray:
    """A received Image as (H, W) or (H, W, C) uint8, honouring step."""
    buf = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    channels = {"mono8": 1, "rgb8": 3, "bgr8": 3}[msg.encoding]
    arr = buf[:, : msg.width * channels]
    return arr.reshape(msg.height, msg.width, channels) if channels > 1 else arr


THREE_CAMERAS = ("front/", "left/", "right/")


@contextmanager
def three_camera_node(domain_id: int, spec_path: Any) -> Iterator[tuple[NodeProcess, Probe]]:
    """The node serving front/left/right (100 ms batch window, 0.2 s diagnostics) and a probe on all three,
    matched and ready; both always stopped."""
    probe = Probe(domain_id, cameras=THREE_CAMERAS)
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "cameras": "[front,left,right]",
        "batch_window_ms": 100.0,
        "diagnostics_period": 0.2,
    }
    node = NodeProcess(domain_id, params)
    try:
        for pub in probe.image_pubs.values():
            probe.wait_for_subscribers(pub)
        probe.wait_for_node_outputs()
        yield node, probe
    finally:
        node.stop()
        probe.close()


@contextmanager
def node_with_probe(
    domain_id: int, params: dict[str, Any], ready_log: str = "subscribed to /camera/image"
) -> Iterator[tuple[NodeProcess, Probe]]:
    """The node and a probe on one isolated domain, matched and ready; both always stopped."""
    probe = Probe(domain_id)
    node = NodeProcess(domain_id, params)
    try:
        node.wait_for_log(ready_log)
        probe.wait_for_subscribers(probe.image_pub if "compressed" not in ready_log else probe.compressed_pub)
        probe.wait_for_node_outputs()
        yield node, probe
    finally:
        node.stop()
        probe.close()

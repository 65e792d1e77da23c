"""Real-DDS test harness: the node in a subprocess, a probe node in this process, isolated by domain id."""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

REPO = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO / "config" / "fastdds_large_data.xml"
OUTPUT_TOPICS = ("labels", "drivable_mask", "overlay", "color_mask", "confidence")


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment for an isolated, localhost-only DDS domain with the large-data profile."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RCUTILS_LOGGING_BUFFERED_STREAM="0",
        PYTHONUNBUFFERED="1",
    )
    if FASTDDS_PROFILE.is_file():
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    return env


def unique_domain_id(salt: int = 0) -> int:
    """A domain id unlikely to collide with other test runs on this machine (valid range 0-101)."""
    return 1 + (os.getpid() * 7 + salt * 13) % 100


class NodeProcess:
    """`seg_perception_node` in a subprocess; always terminated on exit."""

    def __init__(self, domain_id: int, params: dict[str, Any], ros_args: Sequence[str] = ()) -> None:
        cmd = [sys.executable, "-m", "seg_perception.node", "--ros-args", "-r", "__ns:=/camera"]
        for key, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{key}:={text}"]
        cmd += list(ros_args)
        self.proc = subprocess.Popen(
            cmd, env=ros_environment(domain_id), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"node exited with {self.proc.returncode} before logging {text!r}:\n{self.output}")
            time.sleep(0.05)
        raise AssertionError(f"node did not log {text!r} within {timeout} s:\n{self.output}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> float:
        """Send a signal, wait for exit, return the seconds it took."""
        if self.proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2)
        return time.monotonic() - start


class Probe:
    """A test node: publishes camera frames and records everything the segmentation node publishes."""

    def __init__(self, domain_id: int, namespace: str = "/camera", input_reliable: bool = True) -> None:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        if FASTDDS_PROFILE.is_file():
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("probe", namespace=namespace, context=self.context)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._lock = threading.Lock()
        reliability = ReliabilityPolicy.RELIABLE if input_reliable else ReliabilityPolicy.BEST_EFFORT
        pub_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=reliability)
        self.image_pub = self.node.create_publisher(Image, "image", pub_qos)
        self.compressed_pub = self.node.create_publisher(CompressedImage, "image/compressed", pub_qos)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE)
        for name in OUTPUT_TOPICS:
            self.node.create_subscription(Image, f"segmentation/{name}", self._recorder(name), out_qos)
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
        self.node.create_subscription(CameraInfo, "segmentation/camera_info", self._recorder("camera_info"), out_qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

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

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def wait_for_subscribers(self, publisher: Any, timeout: float = 20.0) -> None:
        self.wait_until(lambda: publisher.get_subscription_count() > 0, timeout, "the node to subscribe")

    def wait_for_node_outputs(self, timeout: float = 20.0) -> None:
        """Wait until the node's output publishers have matched our subscriptions."""
        self.wait_until(
            lambda: all(self.node.count_publishers(f"/camera/segmentation/{n}") > 0 for n in OUTPUT_TOPICS),
            timeout,
            "the node's output publishers",
        )

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


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


@contextmanager
def running_node(domain_id: int, params: dict[str, Any]) -> Iterator[NodeProcess]:
    node = NodeProcess(domain_id, params)
    try:
        yield node
    finally:
        node.stop()

"""The cameras' subscriptions on a lean node of their own, spun by their own executor in their own thread.

Why: rclpy's Python executor rebuilds its wait set from every entity of every node it spins, each time it
wakes. The lifecycle node carries ~30 of them (lifecycle and parameter services, timers, the publishers'
event handlers), so taking a camera frame there paid for all of them before the callback ran (the bench's
`take` stage). Here the executor waits on the camera subscriptions (and their QoS event handlers) only;
lifecycle, parameters, timers and diagnostics stay on the lifecycle node and its executor.

The intake node takes no global ROS arguments: the lifecycle node resolves topic names (namespace and
remappings, node-specific ones included) and the intake subscribes to those absolute names, so a launch's
`__node:=` rename or `-p` overrides never reach it. Its callbacks only store the newest frame
(CameraChannel.store): inference runs on the lifecycle node's worker thread, never here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from seg_perception.ros.distro import RCLError
from seg_perception.ros.topics import INTAKE_SUFFIX  # the intake is named <lifecycle node's name>_camera_intake

JOIN_TIMEOUT_S = 2.0
RUNNING = "running"
SPIN_TIMEOUT_S = 0.1  # how long the intake thread waits before it looks at its stop flag again


class CameraIntake:
    """A plain node holding only the camera subscriptions, and the thread that spins it."""

    def __init__(
        self, name: str, namespace: str, on_error: Callable[[str], object], context: Context | None = None
    ) -> None:
        """`on_error` gets one line when a callback raised (the thread then stops taking frames)."""
        self.node = Node(
            name + INTAKE_SUFFIX,
            namespace=namespace,
            context=context,
            use_global_arguments=False,
            enable_rosout=False,
            start_parameter_services=False,
            # Parameter name of rclpy's TypeDescriptionService (Jazzy and later): one service fewer to wait on.
            parameter_overrides=[Parameter("start_type_description_service", value=False)],
        )
        self.executor = SingleThreadedExecutor(context=self.node.context)
        self.executor.add_node(self.node)
        self._on_error = on_error
        # Our own stop flag: rclpy's executor.shutdown(timeout_sec) does not wait for a spinning thread (Jazzy,
        # Kilted 9.1.2: it sets _is_shutdown before checking it) and destroys the guard condition under it.
        self._stop = threading.Event()
        self.state = RUNNING  # /diagnostics `camera_intake`: `running`, or `stopped: <why>` once the thread died
        self._thread = threading.Thread(target=self._spin, name="seg_perception_intake", daemon=True)
        self._thread.start()
        self._closed = False

    def _spin(self) -> None:
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
        except (ExternalShutdownException, KeyboardInterrupt):
            pass
        except RCLError as exc:  # a callback that ran as a signal shut the context down is a clean stop
            if rclpy.ok(context=self.node.context):
                self._stopped(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the lifecycle node's logger, not lost in a thread
            self._stopped(exc)

    def _stopped(self, exc: BaseException) -> None:
        """The thread died: no camera frame arrives any more. One log line, and /diagnostics says so (ERROR)."""
        self.state = f"stopped: {type(exc).__name__}: {exc}"
        self._on_error(f"camera intake {self.state}")

    @property
    def thread_name(self) -> str:
        return self._thread.name

    def subscribe(
        self, msg_type: Any, topic: str, callback: Callable[..., None], qos: QoSProfile, **kwargs: Any
    ) -> Any:
        """A subscription on the intake node (`topic` absolute, as the lifecycle node resolved it); rclpy
        wakes the intake executor, which waits on it from its next turn."""
        return self.node.create_subscription(msg_type, topic, callback, qos, **kwargs)

    def unsubscribe(self, subscription: Any) -> None:
        self.node.destroy_subscription(subscription)

    def close(self) -> None:
        """Stop the thread and destroy the node (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        wake = getattr(self.executor, "wake", None)  # wakes spin_once at once (rclpy with Executor.wake)
        if wake is not None:
            wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
        if self._thread.is_alive():  # a callback outlived the join: destroying its handles now would race it
            self._on_error(f"camera intake thread still running after {JOIN_TIMEOUT_S:.0f} s; its node is left")
            return
        # Only now, with the thread gone, may the executor's guard condition and the node's handles go.
        self.executor.shutdown(timeout_sec=JOIN_TIMEOUT_S)
        self.node.destroy_node()

"""The cameras' subscriptions on a lean node of their own, taken by a wait-set loop in their own thread.

Why: rclpy's Python executor rebuilds its wait set from every entity of every node it spins, each time it
wakes. The lifecycle node carries ~30 of them (lifecycle and parameter services, timers, the publishers'
event handlers), so taking a camera frame there paid for all of them before the callback ran (the bench's
`take` stage). Here only the camera subscriptions (and their QoS event handlers) are waited on, by
ros/subscription_loop.py (not an executor: no task machinery either); lifecycle, parameters, timers and
diagnostics stay on the lifecycle node and its executor.

The intake node takes no global ROS arguments: the lifecycle node resolves topic names (namespace and
remappings, node-specific ones included) and the intake subscribes to those absolute names, so a launch's
`__node:=` rename or `-p` overrides never reach it. Its callbacks only store the newest frame
(CameraChannel.store): inference runs on the lifecycle node's worker thread, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from seg_perception.ros.subscription_loop import JOIN_TIMEOUT_S, RUNNING, SubscriptionLoop
from seg_perception.ros.topics import INTAKE_SUFFIX  # the intake is named <lifecycle node's name>_camera_intake

__all__ = ["RUNNING", "CameraIntake"]


class CameraIntake:
    """A plain node holding only the camera subscriptions, and the thread that takes their frames."""

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
            # Parameter name of rclpy's TypeDescriptionService (Jazzy and later): one service fewer on the node.
            parameter_overrides=[Parameter("start_type_description_service", value=False)],
        )
        self._on_error = on_error
        self._loop = SubscriptionLoop(self.node.context, "camera intake", "seg_perception_intake", on_error)
        self._closed = False

    @property
    def state(self) -> str:
        """/diagnostics `camera_intake`: `running`, or `stopped: <why>` once the thread died."""
        return self._loop.state

    @property
    def thread_name(self) -> str:
        return self._loop.thread_name

    def subscribe(
        self, msg_type: Any, topic: str, callback: Callable[..., None], qos: QoSProfile, **kwargs: Any
    ) -> Any:
        """A subscription on the intake node (`topic` absolute, as the lifecycle node resolved it); the
        intake thread waits on it from its next turn."""
        return self._loop.add(self.node.create_subscription(msg_type, topic, callback, qos, **kwargs))

    def unsubscribe(self, subscription: Any) -> None:
        self._loop.remove(subscription)
        self.node.destroy_subscription(subscription)

    def close(self) -> None:
        """Stop the thread and destroy the node (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.close():  # a callback outlived the join: destroying its handles now would race it
            self._on_error(f"camera intake thread still running after {JOIN_TIMEOUT_S:.0f} s; its node is left")
            return
        self.node.destroy_node()

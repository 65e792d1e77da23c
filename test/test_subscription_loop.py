"""The wait-set loop under the camera intake and the bench recorder (ros/subscription_loop.py), with real rclpy
over DDS in one process: remove() keeps its promise (no callback after it returns, and it waits for one that
is running), and subscriptions added and destroyed while frames flood in never end the thread or make it
look healthy while dead."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import image_msg, unique_domain_id
from sensor_msgs.msg import Image

from seg_perception.ros.subscription_loop import RUNNING, SubscriptionLoop

QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _wait(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(predicate())


def _setup(offset: int) -> tuple[Context, Node, Any, SubscriptionLoop, list[str]]:
    context = Context()
    rclpy.init(context=context, domain_id=unique_domain_id(offset))
    node = Node("loop_test", namespace="/t", context=context)
    pub = node.create_publisher(Image, "/t/image", QOS)
    errors: list[str] = []
    return context, node, pub, SubscriptionLoop(context, "test loop", "seg_perception_test_loop", errors.append), errors


def test_remove_waits_for_a_running_callback_and_no_callback_runs_after_it() -> None:
    context, node, pub, loop, errors = _setup(46)
    try:
        entered, release = threading.Event(), threading.Event()
        calls: list[int] = []

        def slow(_msg: bytes) -> None:
            calls.append(1)
            entered.set()
            release.wait(10)

        sub = loop.add(node.create_subscription(Image, "/t/image", slow, QOS, raw=True))
        assert _wait(lambda: pub.get_subscription_count() == 1)
        pub.publish(image_msg(np.zeros((2, 3, 3), np.uint8), "rgb8", 1))
        assert entered.wait(20), "no callback"
        removed = threading.Event()
        remover = threading.Thread(target=lambda: (loop.remove(sub), removed.set()))
        remover.start()
        assert not removed.wait(0.5)  # the callback still runs: remove() waits for it
        release.set()
        assert removed.wait(10)
        remover.join(5)
        for stamp in (2, 3, 4):  # the subscription still exists (not destroyed): only remove() stops it
            pub.publish(image_msg(np.zeros((2, 3, 3), np.uint8), "rgb8", stamp))
        time.sleep(0.5)
        assert calls == [1]
        assert loop.state == RUNNING
        node.destroy_subscription(sub)
    finally:
        assert loop.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert errors == []


def test_subscriptions_added_and_destroyed_under_a_flood_leave_the_loop_running() -> None:
    """Each cycle adds a subscription with a QoS event handler, lets it take frames, then removes and destroys
    it (handlers first, as rclpy does) while a publisher floods; a second, permanent subscription must keep
    receiving throughout, and the loop must still run at the end."""
    context, node, pub, loop, errors = _setup(47)
    stop = threading.Event()
    permanent: list[int] = []
    loop.add(node.create_subscription(Image, "/t/image", lambda _m: permanent.append(1), QOS, raw=True))
    msg = image_msg(np.zeros((120, 160, 3), np.uint8), "rgb8", 5)

    def flood() -> None:
        while not stop.is_set():
            pub.publish(msg)
            time.sleep(0.001)

    flooder = threading.Thread(target=flood, daemon=True)
    try:
        assert _wait(lambda: pub.get_subscription_count() == 1)
        flooder.start()
        for _ in range(40):
            got = threading.Event()
            sub = node.create_subscription(
                Image,
                "/t/image",
                lambda _m, got=got: got.set(),
                QOS,
                raw=True,
                event_callbacks=rclpy.event_handler.SubscriptionEventCallbacks(incompatible_qos=lambda _e: None),
            )
            loop.add(sub)
            assert got.wait(20), "a new subscription was never served"
            loop.remove(sub)
            node.destroy_subscription(sub)
        before = len(permanent)
        assert _wait(lambda: len(permanent) > before + 10), "the permanent subscription stopped receiving"
        assert loop.state == RUNNING
    finally:
        stop.set()
        flooder.join(5)
        assert loop.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert errors == []

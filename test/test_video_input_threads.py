"""The video input's decoder threads (ros/video_input.py) end on deactivate and do not pile up over lifecycle
cycles: one `seg_perception_video_<camera>` thread per video camera while active, none after deactivate.

VideoInputs runs against a stand-in of the node (the few node methods it calls), so threads can be counted by
name in this process; the subscription callbacks are called directly with units, so each decoder thread has
work in hand (units it refuses) when deactivate comes.
"""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

from seg_perception.bag.video_topics import COMPRESSED_VIDEO
from seg_perception.ros import video_input
from seg_perception.ros.camera_channel import CameraChannel
from seg_perception.ros.video_input import VideoInputs

PREFIX = "seg_perception_video_"


class _NodeStandIn:
    """What VideoInputs asks of the node: publishers found at once, subscriptions recorded."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(qos_reliability="reliable", max_image_pixels=None, qos_depth=5)
        self.subscriptions: dict[str, Any] = {}  # topic -> the subscription callback
        self.warnings: list[str] = []

    def get_logger(self) -> logging.Logger:
        return logging.getLogger("video_input_threads")

    def create_timer(self, period: float, callback: Any) -> Any:
        raise AssertionError("every camera has a publisher: no retry timer")

    def resolve_topic_name(self, topic: str) -> str:
        return f"/camera/{topic}"

    def get_publishers_info_by_topic(self, topic: str) -> list[Any]:
        qos = SimpleNamespace(reliability=ReliabilityPolicy.RELIABLE)
        return [SimpleNamespace(topic_type=COMPRESSED_VIDEO, qos_profile=qos)]

    def create_subscription(self, msg_class: Any, topic: str, callback: Any, qos: Any, **kwargs: Any) -> str:
        assert topic not in self.subscriptions, f"{topic} subscribed twice"
        self.subscriptions[topic] = callback
        return topic

    def destroy_subscription(self, subscription: str) -> None:
        del self.subscriptions[subscription]

    def count_publishers(self, topic: str) -> int:
        return 1

    def _warn(self, key: str, text: str) -> None:
        self.warnings.append(text)

    def _on_incompatible(self, *args: Any) -> None:
        pass


def _video_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(PREFIX))


@pytest.fixture()
def inputs(monkeypatch: pytest.MonkeyPatch) -> VideoInputs:
    # foxglove_msgs' stand-in is importable only in a process started with its libraries (interface_env);
    # here Image plays the class: the units below are no Image, so each is refused as undeserializable.
    monkeypatch.setattr(video_input, "video_type_class", lambda type_name: (Image, ""))
    return VideoInputs(_NodeStandIn(), enabled=True)


def test_decoder_threads_end_on_deactivate_and_do_not_pile_up_over_cycles(inputs: VideoInputs) -> None:
    node: _NodeStandIn = inputs._node
    channels = [CameraChannel("front", "front/"), CameraChannel("rear", "rear/")]
    cond = threading.Condition()
    before = _video_threads()
    assert before == []
    for cycle in range(5):
        inputs.activate(channels, cond)
        assert _video_threads() == [PREFIX + "front", PREFIX + "rear"], f"cycle {cycle}"
        assert sorted(node.subscriptions) == ["/camera/front/image/video", "/camera/rear/image/video"]
        for store in node.subscriptions.values():
            for seq in range(1, 30):  # work in hand when deactivate comes
                store(b"\x00\x01\x00\x00garbage", {"publication_sequence_number": seq + 100 * cycle})
        if cycle == 0:  # the threads decode before the first deactivate (on a loaded machine they may lag)
            deadline = time.monotonic() + 20
            while not any("could not be deserialized" in w for w in node.warnings) and time.monotonic() < deadline:
                time.sleep(0.01)
        inputs.deactivate()
        assert _video_threads() == before, f"cycle {cycle}: decoder threads still alive right after deactivate"
        assert node.subscriptions == {}
        assert inputs.diagnostics(channels[0]) == {"video_input": "not active"}
    inputs.deactivate()  # idempotent
    assert _video_threads() == before
    assert any("could not be deserialized" in w for w in node.warnings)  # the threads did decode units


def test_a_failed_subscription_leaves_no_decoder_thread(inputs: VideoInputs) -> None:
    node: _NodeStandIn = inputs._node

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("rmw says no")

    node.create_subscription = refuse  # type: ignore[method-assign]
    channel = CameraChannel("front", "front/")
    before = _video_threads()
    inputs.activate([channel], threading.Condition())
    assert _video_threads() == before
    assert inputs.diagnostics(channel) == {
        "video_input": "off: cannot subscribe to /camera/front/image/video: RuntimeError: rmw says no"
    }
    inputs.deactivate()

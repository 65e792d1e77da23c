"""The DDS floor of the bench's node phases: a process that answers each camera frame without a model.

Run by `bench` as `python -m seg_perception.bench.echo_node --ros-args -r __ns:=/camera`, in the node's
place, with the same camera process and recorder: it takes each 1280x720 rgb8 frame serialized, through the
same wait-set loop as the node's camera intake (ros/subscription_loop.py), and answers at once, in that
callback, with a zero `labels` and `drivable_mask` (mono8, the camera's size, the input's header), serialized
as the node serializes them (core/image_cdr.py). Its stamp -> recorder latency is what the camera's write,
both transports, both takes and two publishes of these sizes cost on this machine with no model and no
worker thread: what no node on this machine can go below (`dds_floor` in the bench JSON).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from seg_perception.core.image_cdr import image_cdr as serialized_image
from seg_perception.core.image_cdr import parse_image
from seg_perception.ros.output_qos import stream_qos
from seg_perception.ros.subscription_loop import SubscriptionLoop

OUTPUTS = ("labels", "drivable_mask")


class Echo:
    """Answers every frame on `image` with zero mono8 outputs of its size under its header."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.publishers = {
            t: node.create_publisher(Image, f"segmentation/{t}", stream_qos("reliable", 1)) for t in OUTPUTS
        }
        self._zeros: dict[tuple[int, int], np.ndarray] = {}  # one buffer per camera size: allocated once
        self.errors: list[str] = []
        self.loop = SubscriptionLoop(node.context, "echo", "seg_perception_echo", self.errors.append)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.loop.add(node.create_subscription(Image, "image", self.answer, qos, raw=True))

    def answer(self, msg: bytes) -> None:
        frame = parse_image(msg)
        size = (frame.height, frame.width)
        zeros = self._zeros.get(size)
        if zeros is None:
            zeros = self._zeros[size] = np.zeros(size, np.uint8)
        answer = serialized_image(frame.header.cdr, zeros, "mono8")  # one message, serialized once, for each output
        for publisher in self.publishers.values():
            publisher.publish(answer)


def main(argv: Sequence[str] | None = None) -> int:
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    node = Node("echo")
    echo = Echo(node)
    stop = threading.Event()
    try:
        while not stop.wait(0.2) and rclpy.ok() and not echo.errors:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        closed = echo.loop.close()
        for line in echo.errors:
            sys.stderr.write(f"echo_node: {line}\n")
        if closed:  # else a callback still runs: its handles stay until the process ends
            node.destroy_node()
        rclpy.try_shutdown()
    return 1 if echo.errors else 0


if __name__ == "__main__":
    sys.exit(main())

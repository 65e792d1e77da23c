"""Publish pre-encoded access units as foxglove_msgs/CompressedVideo or FFMPEGPacket (run in a subprocess).

The message packages are test stand-ins (test/interface_packages.py) whose libraries must be on
LD_LIBRARY_PATH when the process starts, hence a subprocess: `python video_publisher.py UNITS.pkl`.
UNITS.pkl holds {"topic", "type", "period_s", "repeat_s", "units": [(stamp_ns, frame_id, fmt, data, key)]}.
Waits for a subscriber, publishes every unit in order (reliable, keep all), then repeats for `repeat_s`.
"""

from __future__ import annotations

import pickle
import sys
import time

import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        job = pickle.load(f)
    if job["type"] == "foxglove_msgs/msg/CompressedVideo":
        from foxglove_msgs.msg import CompressedVideo as Msg
    else:
        from ffmpeg_image_transport_msgs.msg import FFMPEGPacket as Msg
    rclpy.init()
    node = rclpy.create_node("video_publisher", namespace="/camera")
    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Msg, job["topic"], qos)
    deadline = time.monotonic() + 60
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            return 3
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # the subscriber's reader is matched on its side too
    end = time.monotonic() + job["repeat_s"]
    while True:
        for stamp_ns, frame_id, fmt, data, key in job["units"]:
            msg = Msg()
            sec, nanosec = divmod(stamp_ns, 1_000_000_000)
            if job["type"] == "foxglove_msgs/msg/CompressedVideo":
                msg.timestamp.sec, msg.timestamp.nanosec = sec, nanosec
                msg.frame_id, msg.format = frame_id, fmt
            else:
                msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
                msg.header.frame_id, msg.encoding, msg.flags, msg.pts = frame_id, fmt, int(key), stamp_ns
            msg.data = data
            pub.publish(msg)
            time.sleep(job["period_s"])
        if time.monotonic() >= end:
            break
    time.sleep(1.0)  # reliable delivery of the last units before the writer goes
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

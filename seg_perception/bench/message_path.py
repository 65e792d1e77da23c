"""The node's message path offline: a camera frame from serialized bytes to an inference frame, and a
label image to serialized bytes, three ways (rclpy messages, rosbags, our `core/image_cdr.py`).

No DDS and no threads, so unlike the node phases these figures hold still on a loaded machine; they
show what taking frames raw and publishing serialized buffers saves, and why our reader and writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

REPEATS_MIN = 20


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm: rosbags generates its (de)serialiser on first use
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return float(np.median(samples))


def measure_message_path(size: tuple[int, int], repeats: int) -> dict[str, Any]:
    """Medians in ms: `in_*` serialized rgb8 Image -> inference frame, `out_*` mono8 labels -> bytes."""
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from seg_perception.core import image_codec
    from seg_perception.core.image_cdr import header_cdr, image_cdr, parse_image
    from seg_perception.ros.messages import image_message
    from seg_perception.synthetic.scenes import generate_scene

    width, height = size
    header = Header(frame_id="camera_front")
    header.stamp.sec = 1_700_000_000
    serialized = serialize_message(image_message(header, generate_scene(1, width, height).image, "rgb8"))
    labels = np.random.default_rng(0).integers(0, 8, (height, width), np.uint8)
    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types

    def to_frame(msg: Any) -> None:
        image_codec.to_inference_frame(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)

    def rosbags_out() -> bytes:
        stamp = types["builtin_interfaces/msg/Time"](sec=1_700_000_000, nanosec=0)
        msg = types["sensor_msgs/msg/Image"](
            header=types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_front"),
            height=height,
            width=width,
            encoding="mono8",
            is_bigendian=0,
            step=width,
            data=labels.reshape(-1),
        )
        return bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Image"))  # publish() takes bytes only

    ours = header_cdr(1_700_000_000, 0, "camera_front")
    repeats = max(REPEATS_MIN, repeats)
    ms = {
        "in_rclpy": _median_ms(lambda: to_frame(deserialize_message(serialized, Image)), repeats),
        "in_rosbags": _median_ms(lambda: to_frame(store.deserialize_cdr(serialized, "sensor_msgs/msg/Image")), repeats),
        "in_image_cdr": _median_ms(lambda: to_frame(parse_image(serialized)), repeats),
        # rclpy's publish(msg) converts the Python message and serialises it: serialize_message does both.
        "out_rclpy": _median_ms(lambda: serialize_message(image_message(header, labels, "mono8")), repeats),
        "out_rosbags": _median_ms(rosbags_out, repeats),
        "out_image_cdr": _median_ms(lambda: image_cdr(ours, labels, "mono8"), repeats),
    }
    return {"size": f"{width}x{height}", "repeats": repeats, "median_ms": ms}


def markdown_line(path: dict[str, Any]) -> str:
    ms = path["median_ms"]
    return (
        f"Message path at {path['size']} (medians of {path['repeats']}, no DDS): serialized rgb8 frame → "
        f"inference frame {ms['in_image_cdr']:.3f} ms with `core/image_cdr.py` (rosbags {ms['in_rosbags']:.3f} ms, "
        f"an rclpy message {ms['in_rclpy']:.3f} ms); mono8 labels → serialized bytes {ms['out_image_cdr']:.3f} ms "
        f"(rosbags {ms['out_rosbags']:.3f} ms, an rclpy message {ms['out_rclpy']:.3f} ms)."
    )

"""The bench's `take` stage (the node's DDS reader has the sample -> its subscription callback runs), A/B in
one process: a camera process sends 1280x720 rgb8 frames at 30 Hz, and in alternating rounds the frames
are taken by the same subscription on one of three owners: the configured and active lifecycle
SegmentationNode itself (its executor waits on all its entities: how the node took frames before the
intake), a lean node of its own spun by a SingleThreadedExecutor in its own thread (the intake before its
wait-set loop), or the node's camera intake (ros/camera_intake.py: a wait-set loop in its own thread).
Every executor and loop runs throughout.

    PYTHONPATH=$PWD .venv/bin/python tools/measure_intake_take.py [--rounds 4] [--seconds 8]

Prints per round the p50/p90 of `take` in ms, then the medians of the round p50s (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from functools import partial
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from seg_perception.ros.domain_ids import reserve_domain_id
from seg_perception.ros.node_process import apply_to_this_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    domain = reserve_domain_id()
    apply_to_this_process(domain)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    rclpy.init(args=["--ros-args", "-r", "__ns:=/camera"])
    from seg_perception.ros.segmentation_node import SegmentationNode

    node = SegmentationNode(
        parameter_overrides=[
            Parameter("backend", value="onnxruntime"),
            Parameter("qos_reliability", value="reliable"),  # subscribed at once, so no retry timer takes over
            Parameter("camera_info_qos_reliability", value="reliable"),
        ]
    )
    node.trigger_configure()
    node.trigger_activate()  # subscribes the intake to /camera/image; that subscription is replaced below
    for ch in node.channels:
        if ch.subscription is not None and node.intake is not None:
            node.intake.unsubscribe(ch.subscription)
            ch.subscription = None
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    count = int(args.rounds * 3 * (args.seconds + 2) * 30) + 300
    camera = subprocess.Popen(
        [
            *(sys.executable, "-m", "seg_perception.bench.frame_publisher", "--domain", str(domain)),
            *("--rate", "30", "--count", str(count), "--size", "1280x720"),
        ],
        stdout=subprocess.DEVNULL,
    )
    samples: list[float] = []

    def take(msg: bytes, info: Any) -> None:
        samples.append((time.time_ns() - info["received_timestamp"]) / 1e6)

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    if node.intake is None:
        raise SystemExit("the node made no camera intake")
    lean = Node("lean_executor_intake", enable_rosout=False, start_parameter_services=False)
    lean_executor = SingleThreadedExecutor()
    lean_executor.add_node(lean)
    lean_spinner = threading.Thread(target=lean_executor.spin, daemon=True)
    lean_spinner.start()
    arms: dict[str, tuple[Any, Any]] = {
        "lifecycle node": (partial(node.create_subscription, Image), node.destroy_subscription),
        "lean node + executor": (partial(lean.create_subscription, Image), lean.destroy_subscription),
        "camera intake": (partial(node.intake.subscribe, Image), node.intake.unsubscribe),
    }
    medians: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for r in range(args.rounds):
            for name, (subscribe, unsubscribe) in arms.items():
                sub = subscribe("/camera/image", take, qos, raw=True)
                time.sleep(2.0)  # matched, warm
                samples.clear()
                time.sleep(args.seconds)
                got = np.array(samples)
                unsubscribe(sub)
                if not len(got):
                    sys.stdout.write(f"round {r} {name}: no frames\n")
                    continue
                medians[name].append(float(np.median(got)))
                sys.stdout.write(
                    f"round {r} {name:20s} take p50 {np.median(got):5.2f} ms  p90 {np.percentile(got, 90):5.2f} ms"
                    f"  frames {len(got)}  load {os.getloadavg()[0]:.1f}\n"
                )
    finally:
        camera.kill()
        camera.wait()
        executor.shutdown()
        lean_executor.shutdown()
        lean.destroy_node()
        spinner.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    summary = {
        name: {"take_p50_ms": round(float(np.median(v)), 3), "round_p50s_ms": [round(x, 3) for x in v]}
        for name, v in medians.items()
        if v
    }
    sys.stdout.write(json.dumps({"take": summary, "cores": os.cpu_count(), "load_1min": os.getloadavg()[0]}) + "\n")


if __name__ == "__main__":
    main()

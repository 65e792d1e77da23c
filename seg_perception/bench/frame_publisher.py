"""A camera in its own process for benchmarks: publishes a synthetic drive at a fixed rate over DDS.

Run by `bench` as `python -m seg_perception.bench.frame_publisher ...`, so the recording side's
executor never competes with publishing for one interpreter's GIL. With --wait-for-go it first sends
warm-up frames (WARMUP_HZ) until a line arrives on stdin (the recorder has seen answers), so the measured
frames start on matched links. Prints one JSON line at the end: the count and stamps of measured frames.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time
from collections.abc import Sequence
from typing import Any

from seg_perception.cli_args import parse_size

WARMUP_HZ = 10.0
WARMUP_TIMEOUT_S = 300.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--namespace", default="/camera")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=parse_size, default=(1280, 720))
    parser.add_argument("--wait-for-go", action="store_true", help="send warm-up frames until stdin has a line")
    args = parser.parse_args(argv)

    from seg_perception.ros.drive_player import DrivePlayer, serialized_frame
    from seg_perception.ros.node_process import apply_to_this_process
    from seg_perception.synthetic.scenes import generate_drive

    width, height = args.size
    # Serialized once: per frame the camera only stamps and sends (one copy), so the node's latency
    # budget is not charged for building Python messages in the camera process.
    frames = [serialized_frame(s.image) for s in generate_drive(60, width, height, seed=3)]
    apply_to_this_process(args.domain)
    player = DrivePlayer(args.domain, args.namespace, ())
    try:
        if not player.wait_for_node(60):
            sys.stderr.write("frame_publisher: nobody subscribed to the image topic\n")
            return 1
        if args.wait_for_go and not _warm_up_until_go(player, frames[0]):
            sys.stderr.write("frame_publisher: no go on stdin within the warm-up time\n")
            return 1
        first = len(player.log.sent_stamps)
        player.play((frames[i % len(frames)] for i in range(args.count)), args.rate)
    finally:
        player.close()
    stamps = player.log.sent_stamps[first:]
    sys.stdout.write(json.dumps({"sent": len(stamps), "stamps": stamps}) + "\n")
    return 0


def _warm_up_until_go(player: Any, frame: Any) -> bool:
    """Publish `frame` at WARMUP_HZ until stdin has a line; False on EOF or timeout."""
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while time.monotonic() < deadline:
        player.publish(frame)
        ready, _, _ = select.select([sys.stdin], [], [], 1.0 / WARMUP_HZ)
        if ready:
            return sys.stdin.readline().strip() == "go"
    return False


if __name__ == "__main__":
    sys.exit(main())

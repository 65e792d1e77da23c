"""A camera in its own process for benchmarks: publishes a synthetic drive at a fixed rate over DDS.

Run by `bench` as `python -m seg_perception.bench.frame_publisher ...`, so the recording side's
executor never competes with publishing for one interpreter's GIL. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from seg_perception.cli_args import parse_size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--namespace", default="/camera")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=parse_size, default=(1280, 720))
    args = parser.parse_args(argv)

    from seg_perception.core.scenes import generate_drive
    from seg_perception.ros.drive_player import DrivePlayer
    from seg_perception.ros.node_process import apply_to_this_process

    width, height = args.size
    frames = [s.image for s in generate_drive(60, width, height, seed=3)]
    apply_to_this_process(args.domain)
    player = DrivePlayer(args.domain, args.namespace, ())
    try:
        if not player.wait_for_node(60):
            sys.stderr.write("frame_publisher: nobody subscribed to the image topic\n")
            return 1
        player.play((frames[i % len(frames)] for i in range(args.count)), args.rate)
    finally:
        player.close()
    sys.stdout.write(json.dumps({"sent": len(player.log.sent_stamps)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

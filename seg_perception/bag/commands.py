"""`seg-perception replay`: a recorded drive into the node; the option types `process` shares."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from seg_perception.bag.bag_io import (
    COMPRESSED_OUTPUTS,
    SEGMENTATION_OUTPUTS,
)
from seg_perception.cli_args import number
from seg_perception.core.model_spec import MASK_NAME

LOG = logging.getLogger("seg_perception")
OUTPUT_NAMES = (*SEGMENTATION_OUTPUTS, *COMPRESSED_OUTPUTS)
DEFAULT_CLOCK_HZ = 40.0  # as `ros2 bag play --clock`


_positive = number(float, 0.0, strict=True)
_non_negative = number(float, 0.0)


def _is_head_mask_output(name: str) -> bool:
    """<name>_mask of a spec's `masks:` entry (the spec's own naming rule), e.g. lane_mask."""
    return name.endswith("_mask") and MASK_NAME.match(name.removesuffix("_mask")) is not None


def output_list(text: str) -> tuple[str, ...]:
    """Known outputs, or <name>_mask of a per-head mask (checked against the spec once it is loaded)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OUTPUT_NAMES and not _is_head_mask_output(n)]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--outputs {text!r}: expected a comma-separated subset of {','.join(OUTPUT_NAMES)}"
        )
    return tuple(dict.fromkeys(names))


def cmd_replay(args: argparse.Namespace) -> int:
    from seg_perception.bag.replay import ReplayOptions, replay_bag

    options = ReplayOptions(
        topics=tuple(args.topics or ()),
        rate=args.rate,
        loop=args.loop,
        start_offset_s=args.start_offset,
        clock_hz=args.clock,
        wait_for_subscribers_s=args.wait_for_subscribers or 0.0,
    )
    summary = replay_bag(args.bag, options)
    LOG.info(
        "%s %d messages on %d topic%s in %.2f s: bag time %.2f s at %.2fx (requested %.2fx)%s%s",
        "interrupted after" if summary.interrupted else "published",
        summary.published,
        summary.topics,
        "" if summary.topics == 1 else "s",
        summary.wall_s,
        summary.bag_s,
        summary.speed,
        args.rate,
        f"; /clock {summary.clock_messages} messages" if args.clock else "",
        f"; skipped {', '.join(summary.skipped_topics)}" if summary.skipped_topics else "",
    )
    return 130 if summary.interrupted else 0


def register(subparsers: Any) -> None:
    """Add `replay` to the seg-perception command line (`process` is seg_perception.fleet.process_command)."""
    p = subparsers.add_parser(
        "replay", help="publish a bag (sqlite3 or MCAP) over DDS with its recorded timing, bytes unchanged"
    )
    p.add_argument("bag", type=Path, help="rosbag2 directory, or a .mcap / .db3 file")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)")
    p.add_argument("--rate", type=_positive, default=1.0, help="playback speed factor (default 1.0)")
    p.add_argument("--loop", action="store_true", help="play again from the start until Ctrl-C")
    p.add_argument("--start-offset", type=_non_negative, default=0.0, metavar="S", help="skip the first S seconds")
    p.add_argument(
        "--clock",
        type=_positive,
        nargs="?",
        const=DEFAULT_CLOCK_HZ,
        default=None,
        metavar="HZ",
        help=f"publish /clock from bag time at HZ (default {DEFAULT_CLOCK_HZ:g}) for nodes with use_sim_time",
    )
    p.add_argument(
        "--wait-for-subscribers",
        type=_non_negative,
        nargs="?",
        const=10.0,
        default=None,
        metavar="S",
        help="before playing, wait up to S seconds (default 10) until every topic has a subscriber; the first "
        "message of each reliable topic then waits for its subscribers' acknowledgement",
    )
    p.set_defaults(func=cmd_replay)

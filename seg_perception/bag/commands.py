"""`seg-perception replay` and `seg-perception process`: recorded drives into the node, or offline."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from seg_perception.bag.bag_io import (
    COMPRESSED_OUTPUTS,
    DEFAULT_OUTPUTS,
    DEFAULT_STORAGE,
    SEGMENTATION_OUTPUTS,
    STORAGE_CHOICES,
)
from seg_perception.cli_args import number

LOG = logging.getLogger("seg_perception")
OUTPUT_NAMES = (*SEGMENTATION_OUTPUTS, *COMPRESSED_OUTPUTS)
HEAD_MASK_OUTPUT = re.compile(r"^[a-z][a-z0-9_]*_mask$")  # a spec's `masks:` entry, e.g. lane_mask
DEFAULT_CLOCK_HZ = 40.0  # as `ros2 bag play --clock`


_positive = number(float, 0.0, strict=True)
_non_negative = number(float, 0.0)


def _output_list(text: str) -> tuple[str, ...]:
    """Known outputs, or <name>_mask of a per-head mask (checked against the spec once it is loaded)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OUTPUT_NAMES and not HEAD_MASK_OUTPUT.match(n)]
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


def cmd_process(args: argparse.Namespace) -> int:
    from seg_perception.bag.bag_io import check_output_path
    from seg_perception.bag.offline_processing import default_outputs, process_bag
    from seg_perception.core.model_spec import default_spec_path, load_model_spec
    from seg_perception.pipeline import Segmenter

    # Refuse a bad OUT_BAG before the model is loaded and compiled.
    check_output_path(args.out_bag, args.force, inputs=[args.in_bag])
    spec = load_model_spec(args.model or default_spec_path())
    outputs = args.outputs or default_outputs(spec)
    with Segmenter(spec, backend=args.backend, threads=args.threads) as segmenter:
        summary = process_bag(
            args.in_bag,
            args.out_bag,
            segmenter,
            outputs=outputs,
            topics=tuple(args.topics or ()),
            storage=args.storage,
            force=args.force,
        )
        backend = segmenter.describe_backend()
    per_frame = summary.segment_ms / summary.frames if summary.frames else 0.0
    LOG.info(
        "processed %d frames from %d camera topic%s in %.2f s: %.1f frames/s (segmenter %.1f ms/frame, %s on %s)",
        summary.frames,
        summary.cameras,
        "" if summary.cameras == 1 else "s",
        summary.seconds,
        summary.frames_per_second,
        per_frame,
        spec.name,
        backend,
    )
    LOG.info(
        "copied %d input messages and wrote %d outputs (%s) to %s (%s)",
        summary.copied,
        summary.outputs_written,
        ",".join(outputs),
        args.out_bag,
        args.storage,
    )
    if summary.bad_frames:
        LOG.warning("%d frames could not be decoded and have no outputs", summary.bad_frames)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add `replay` and `process` to the seg-perception command line."""
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
        help="before playing, wait up to S seconds (default 10) until every topic has a subscriber",
    )
    p.set_defaults(func=cmd_replay)

    p = subparsers.add_parser(
        "process", help="segment a bag offline (no DDS) into a new bag with the node's output topics"
    )
    p.add_argument("in_bag", type=Path, metavar="IN_BAG", help="rosbag2 directory, or a .mcap / .db3 file")
    p.add_argument("out_bag", type=Path, metavar="OUT_BAG", help="new bag directory (replaced only with --force)")
    p.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")
    p.add_argument(
        "--topics", nargs="+", metavar="TOPIC", help="camera topics to segment (default: every Image/CompressedImage)"
    )
    p.add_argument(
        "--outputs",
        type=_output_list,
        default=None,
        help=f"comma-separated, from {','.join(OUTPUT_NAMES)} and the spec's <mask>_mask outputs "
        f"(default {','.join(DEFAULT_OUTPUTS)} and every mask the spec declares)",
    )
    p.add_argument("--storage", choices=STORAGE_CHOICES, default=DEFAULT_STORAGE, help="output bag storage")
    p.add_argument("--force", action="store_true", help="replace an existing OUT_BAG")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: backend default)")
    p.set_defaults(func=cmd_process)

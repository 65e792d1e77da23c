"""`seg-perception process INPUT... OUT`: one bag, or many, in this process or on a Ray cluster.

It lives in fleet/ (not bag/) because it drives bag/ through fleet/'s runner; bag/ never imports fleet/.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from seg_perception.bag.bag_io import COMPRESSION_FORMATS, COMPRESSION_MODES, DEFAULT_STORAGE, STORAGE_CHOICES
from seg_perception.bag.commands import OUTPUT_NAMES, output_list
from seg_perception.bag.offline_processing import DEFAULT_OUTPUTS
from seg_perception.bag.split_bags import bag_split
from seg_perception.cli_args import RawDescriptionDefaultsHelpFormatter
from seg_perception.core.errors import SegPerceptionError
from seg_perception.fleet.fleet_summary import DONE, FAILED, FleetSummary
from seg_perception.fleet.ray_runtime import add_actor_pool_arguments, add_ray_argument

LOG = logging.getLogger("seg_perception")

RULE = """\
INPUT... OUT: with exactly one INPUT that is a bag (a rosbag2 directory, a .mcap / .db3 file, or a ROS 1
.bag file), OUT is the output bag (always rosbag2). Otherwise (several INPUTs, a directory tree, or a
quoted glob such as 'drives/**/*.mcap') OUT is an output root and each bag's output is mirrored under
it: a bag named on the command line goes to OUT/<its name>, a bag found in a tree to OUT/<its path
inside the tree>, a glob match to OUT/<its path below the pattern's fixed prefix> (a bare .mcap / .db3 /
.bag file's output drops the suffix).
Bags named twice, two bags writing one output, an output over an input, an OUT root inside an input
tree, existing outputs without --force, and an OUT root holding anything this run does not write (even
with --force: it replaces only this run's bags) are refused (exit 2) before the model is loaded.

Without --ray the bags run one after the other in this process; with --ray they run on Ray actors,
one Segmenter per actor. With fewer bags than workers, each bag is split into time-range chunks that
run in parallel and are merged in time order into the one output bag (message for message the bag an
unchunked run writes). Outputs appear only complete; a worker that dies is replaced and its unit run
again; a bag that fails is listed with the reason (exit 1 with several bags, 2 with one); Ctrl-C
stops every worker and leaves no partial output (exit 130).
"""


COPY_CHOICE = {
    False: "camera images left out: they stay in the input bag; --copy-inputs copies them",
    True: "camera images included: --copy-inputs",
}


def cmd_process(args: argparse.Namespace) -> int:
    from seg_perception.bag.offline_processing import default_outputs, output_selection
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.fleet.bag_inputs import plan_bags
    from seg_perception.fleet.fleet_runner import FleetRequest, run_fleet
    from seg_perception.fleet.ray_pool import InProcessPool, RayActorPool
    from seg_perception.fleet.ray_runtime import actor_pool, actors_that_fit, import_ray, ray_session
    from seg_perception.fleet.work_units import ProcessOptions

    pool = actor_pool(args, "process")
    if pool is not None:
        import_ray()  # a missing Ray is one line before anything else happens
    # Refuse bad INPUT... OUT before the model is loaded and compiled.
    plan = plan_bags(args.inputs, args.out, args.force, args.summary)
    spec = load_model_spec(args.model or default_spec_path())
    outputs = tuple(args.outputs or default_outputs(spec))
    output_selection(outputs, spec)
    threads = args.threads or (pool.threads if pool is not None else 0)
    if args.compression == "none" and args.compression_mode is not None:
        raise SegPerceptionError("--compression-mode needs --compression zstd")
    compression = "" if args.compression == "none" else (args.compression_mode or "file")
    split = bag_split(args.split_size, args.split_duration)
    options = ProcessOptions(
        args.model,
        args.backend,
        threads,
        outputs,
        tuple(args.topics or ()),
        args.storage,
        compression=compression,
        copy_inputs=args.copy_inputs,
        split=split,
    )
    if pool is None:
        request = FleetRequest(plan, options, workers=1, force=args.force)
        summary = run_fleet(request, lambda _n, on_frame: InProcessPool(options, on_frame))
    else:
        with ray_session(args.ray) as ray:
            workers = actors_that_fit(pool, ray.cluster_resources())
            request = FleetRequest(plan, options, workers=workers, force=args.force, ray=args.ray)
            summary = run_fleet(request, lambda n, _f: RayActorPool(ray, options, n, pool.num_cpus, pool.num_gpus))
    if args.summary is not None:
        from seg_perception.fleet.fleet_summary import write_summary

        write_summary(args.summary, summary)
    return _report(summary, plan.single, spec.name, outputs, args.storage, args.copy_inputs)


def _report(
    summary: FleetSummary, single: bool, model: str, outputs: tuple[str, ...], storage: str, copy_inputs: bool
) -> int:
    if summary.interrupted:
        LOG.error(
            "interrupted: %d of %d bags were complete and stay; nothing partial is left",
            summary.count(DONE),
            len(summary.bags),
        )
        return 130
    if single:
        bag = summary.bags[0]
        if bag.status != DONE:
            LOG.error("error: %s", bag.error)
            return 2
        per_frame = bag.segment_ms / bag.frames if bag.frames else 0.0
        LOG.info(
            "processed %d frames from %d camera topic%s in %.2f s: %.1f frames/s (segmenter %.1f ms/frame, %s on %s)",
            bag.frames,
            bag.cameras,
            "" if bag.cameras == 1 else "s",
            bag.seconds,
            bag.frames_per_second,
            per_frame,
            model,
            summary.backend,
        )
        LOG.info(
            "copied %d input messages (%s) and wrote %d outputs (%s) to %s (%s)",
            bag.copied,
            COPY_CHOICE[copy_inputs],
            bag.outputs_written,
            ",".join(outputs),
            bag.output,
            storage,
        )
    else:
        for bag in summary.bags:
            if bag.status == FAILED:
                LOG.error("failed %s: %s", bag.input, bag.error)
        where = f"on Ray ({summary.ray})" if summary.ray else "in this process"
        LOG.info(
            "processed %d frames of %d of %d bags in %.2f s: %.1f frames/s with %d worker%s %s; %d failed (%s)",
            summary.frames,
            summary.count(DONE),
            len(summary.bags),
            summary.seconds,
            summary.frames / summary.seconds if summary.seconds > 0 else 0.0,
            summary.workers,
            "" if summary.workers == 1 else "s",
            where,
            summary.count(FAILED),
            COPY_CHOICE[copy_inputs],
        )
    for bag in summary.bags:
        for line in bag.health_lines():  # the segments of a drive whose masks cannot be trusted
            LOG.warning("health: %s%s", "" if single else f"{bag.input}: ", line)
    if summary.bad_frames:
        LOG.warning("%d frames could not be decoded and have no outputs", summary.bad_frames)
    return 1 if summary.bad_frames or summary.count(FAILED) else 0


def register(subparsers: Any) -> None:
    """Add `process` to the seg-perception command line."""
    p = subparsers.add_parser(
        "process",
        help="segment bags offline (no DDS) into new bags with the node's output topics; many bags, or on Ray",
        description="Segment every camera frame of one bag or many into new bags with the node's output topics.",
        epilog=RULE,
        formatter_class=RawDescriptionDefaultsHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="a bag (rosbag2 directory, .mcap / .db3 file, ROS 1 .bag), a directory tree of bags, or a quoted glob",
    )
    p.add_argument("out", type=Path, metavar="OUT", help="the output bag of one input bag, else the output root")
    p.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")
    p.add_argument(
        "--topics", nargs="+", metavar="TOPIC", help="camera topics to segment (default: every Image/CompressedImage)"
    )
    p.add_argument(
        "--outputs",
        type=output_list,
        default=None,
        help=f"comma-separated, from {','.join(OUTPUT_NAMES)} and the spec's <mask>_mask outputs "
        f"(default {','.join(DEFAULT_OUTPUTS)} and every mask the spec declares)",
    )
    p.add_argument("--storage", choices=STORAGE_CHOICES, default=DEFAULT_STORAGE, help="output bag storage")
    p.add_argument(
        "--compression",
        choices=COMPRESSION_FORMATS,
        default="none",
        help="compress the output bags with zstd, as `ros2 bag record --compression-format zstd` (default none)",
    )
    p.add_argument(
        "--compression-mode",
        choices=COMPRESSION_MODES,
        default=None,
        help="with --compression zstd: compress each storage file whole, or each message (default file)",
    )
    p.add_argument(
        "--split-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="write each output bag as several storage files of at most BYTES of message data each, counted "
        "uncompressed (`ros2 bag record --max-bag-size` counts the file's size)",
    )
    p.add_argument(
        "--split-duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="write each output bag as several storage files spanning at most SECONDS of record time each "
        "(as `ros2 bag record --max-bag-duration`)",
    )
    p.add_argument("--force", action="store_true", help="replace existing output bags")
    p.add_argument(
        "--copy-inputs",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also copy the segmented camera images into the output bag (nearly all of its size); without it the "
        "output holds the segmentation topics and every other recorded topic (camera_info, tf, ...), with the "
        "input headers, so it plays beside the input bag",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "onnxruntime", "tensorrt"),
        default="auto",
        help="auto: TensorRT when it imports and a GPU exists, else ONNX Runtime; or name one",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="inference threads per worker (0: the backend's default; with --ray, the actor's --num-cpus)",
    )
    p.add_argument("--summary", type=Path, default=None, metavar="PATH", help="write a JSON summary (per bag, totals)")
    add_ray_argument(p, "process the bags")
    add_actor_pool_arguments(p, "one Segmenter")
    p.set_defaults(func=cmd_process)

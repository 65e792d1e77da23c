"""`seg-perception` command line: thin wrappers that parse, validate, call the core and report."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from seg_perception.cli_args import (
    SYNTHETIC_MAX_SIZE,
    OneLineErrorParser,
    RawDescriptionDefaultsHelpFormatter,
    number,
    parse_size,
    synthetic_size,
)
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.image_files import IMAGE_SUFFIXES, input_images
from seg_perception.core.model_spec import ModelSpec
from seg_perception.core.output_rule import check_output, staged_output_dir

LOG = logging.getLogger("seg_perception")
_positive = number(int, 1)
_non_negative = number(int, 0)
_positive_rate = number(float, 0.0, strict=True)


def _model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")


def _load_spec(path: Path | None) -> ModelSpec:
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec

    return load_model_spec(path or default_spec_path())


def cmd_compile(args: argparse.Namespace) -> int:
    import onnx

    from seg_perception.core.atomic_files import write_atomic
    from seg_perception.core.graph_compiler import compile_fused_graph, graph_digest
    from seg_perception.core.image_files import make_output_dir

    spec = _load_spec(args.model)
    width, height = args.input_size or (spec.input.width, spec.input.height)
    fused = compile_fused_graph(spec, width, height, args.channel_order, args.output_resolution, batch=args.batch)
    make_output_dir(args.out.parent)
    try:
        write_atomic(args.out, lambda tmp: onnx.save(fused, str(tmp)))
    except OSError as exc:
        raise SegPerceptionError(f"cannot write --out {args.out}: {exc.strerror or exc}") from None
    LOG.info(
        "wrote %s: %s at %dx%d %s, sha256 %s",
        args.out,
        spec.name,
        width,
        height,
        args.channel_order,
        graph_digest(fused)[:16],
    )
    return 0


def _list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return input_images(path)
    raise SegPerceptionError(f"--input {path} is neither an image file nor a directory")


def cmd_infer(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from seg_perception.core.image_files import write_image
    from seg_perception.pipeline import OutputSelection, Segmenter

    check_output(args.out, "--out", args.force, inputs=[args.input])  # before the model is loaded
    spec = _load_spec(args.model)
    images = _list_images(args.input)
    if not images:
        raise SegPerceptionError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {args.input}")
    want = OutputSelection(drivable=True, overlay=True, masks=True)
    unreadable: list[Path] = []
    with (
        staged_output_dir(args.out, "--out", args.force, inputs=[args.input]) as out,
        Segmenter(spec, args.backend, args.output_resolution, threads=args.threads) as segmenter,
    ):
        for path in tqdm(images, unit="img", disable=len(images) < 2):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                LOG.warning("skipping %s: not a readable image", path)
                unreadable.append(path)
                continue
            result = segmenter.segment(frame, channel_order="BGR", outputs=want)
            if result.drivable is None or result.overlay is None:
                raise SegPerceptionError("the segmenter did not produce the requested outputs")
            write_image(out / f"{path.stem}_labels.png", result.labels)
            write_image(out / f"{path.stem}_drivable.png", result.drivable)
            write_image(out / f"{path.stem}_overlay.png", cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
            for name, mask in result.masks.items():  # per-head masks; drivable is <stem>_drivable.png
                if name != "drivable":
                    write_image(out / f"{path.stem}_{name}_mask.png", mask)
        LOG.info(
            "segmented %d of %d images with %s on %s into %s (labels at %s resolution)",
            len(images) - len(unreadable),
            len(images),
            spec.name,
            segmenter.describe_backend(),
            args.out,
            args.output_resolution,
        )
    if unreadable:
        LOG.error(
            "%d of %d images could not be read and have no outputs (first: %s)",
            len(unreadable),
            len(images),
            unreadable[0],
        )
        return 1
    return 0


def _synth_video(args: argparse.Namespace, width: int, height: int) -> int:
    from seg_perception.synthetic.video_drive import VIDEO_TOPIC, VideoSettings, write_video_drive

    if args.compressed or len(args.topic or ()) > 1:
        raise SegPerceptionError("--video writes one camera: give at most one --topic and no --compressed")
    if not 0 <= args.bframes <= 8:
        raise SegPerceptionError(f"--bframes must be between 0 and 8, got {args.bframes}")
    topic = (args.topic or [VIDEO_TOPIC])[0]
    settings = VideoSettings("libx264" if args.video == "h264" else "libx265", bframes=args.bframes)
    summary = write_video_drive(
        args.bag,
        args.frames,
        width,
        height,
        settings,
        topic=topic,
        rate_hz=args.rate,
        seed=args.seed,
        storage=args.storage,
        force=args.force,
    )
    LOG.info(
        "wrote a %d-frame drive (%dx%d at %g Hz, %s CompressedVideo with %d B-frames, %s, seed %d) on %s to %s",
        summary.frames,
        width,
        height,
        args.rate,
        args.video,
        args.bframes,
        args.storage,
        args.seed,
        topic,
        args.bag,
    )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    if (args.out is None) == (args.bag is None):
        raise SegPerceptionError("synth needs either --out DIR (PNG files) or --bag OUT_BAG (a rosbag2 bag)")
    width, height = args.size
    if args.bag is not None and args.video is not None:
        return _synth_video(args, width, height)
    if args.bag is not None:
        from seg_perception.synthetic.drive_bag import DEFAULT_TOPIC, SyntheticCamera, write_synthetic_drive

        cameras = [SyntheticCamera(t, args.compressed) for t in args.topic or [DEFAULT_TOPIC]]
        summary = write_synthetic_drive(
            args.bag, args.frames, cameras, width, height, args.rate, args.seed, args.storage, args.force
        )
        LOG.info(
            "wrote a %d-frame drive (%dx%d at %g Hz, %s, %s, seed %d) on %s to %s",
            summary.frames,
            width,
            height,
            args.rate,
            "jpeg CompressedImage" if args.compressed else "rgb8 Image",
            args.storage,
            args.seed,
            ", ".join(c.image_topic for c in cameras),
            args.bag,
        )
        return 0
    from seg_perception.synthetic.scenes import write_scenes

    with staged_output_dir(args.out, "--out", args.force) as out:
        written = write_scenes(out, args.frames, width, height, args.seed, drive=args.drive)
    what = f"frames of one drive (seed {args.seed})" if args.drive else f"scenes (seeds {args.seed}..)"
    LOG.info("wrote %d %s %dx%d to %s", written, what, width, height, args.out)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from seg_perception.node import main as node_main
    from seg_perception.ros.dds_profile import apply_default_profile

    ros_args = list(args.ros_args)
    if ros_args and ros_args[0] == "--":
        ros_args = ros_args[1:]
    if args.params_file is not None:
        if not args.params_file.is_file():
            raise SegPerceptionError(f"--params-file {args.params_file} does not exist")
        if "--ros-args" not in ros_args:
            ros_args.insert(0, "--ros-args")
        ros_args += ["--params-file", str(args.params_file)]
    # As the launch file does: Fast DDS reads the variable when rclpy.init creates the participant.
    apply_default_profile()
    return node_main(["seg_perception_node", *ros_args])


BACKEND_HELP = "auto: TensorRT when it imports and a GPU exists, else ONNX Runtime; or name one"


def package_version() -> str:
    """The installed distribution's version (setup.py's, which package.xml repeats)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seg_perception")
    except PackageNotFoundError:
        return "unknown (not installed: run from a source tree without pip install -e)"


def node_parameters_epilog() -> str:
    """The node's parameters for `run --help`, from the table the node declares them with."""
    import textwrap

    from seg_perception.ros.parameters import PARAMETERS

    def shown(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return '""' if value == "" else str(list(value) if isinstance(value, tuple) else value)

    lines = [
        "node parameters (pass them as `run --ros-args -p NAME:=VALUE ...` or in --params-file; the same",
        "table with every range is docs/reference/parameters.md):",
    ]
    for p in PARAMETERS:
        allowed = "|".join(p.choices)
        if not allowed and (p.minimum is not None or p.maximum is not None):
            low = "-inf" if p.minimum is None else f"{p.minimum:g}"
            allowed = f"{low}..{'inf' if p.maximum is None else f'{p.maximum:g}'}"
        lines.append(f"  {p.name} = {shown(p.default)}" + (f"  [{allowed}]" if allowed else ""))
        lines += textwrap.wrap(p.description, 96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """`run ... --ros-args X` -> (`run ...`, `--ros-args X`): argparse cannot take an unknown option as REMAINDER.

    Only for the `run` command (the first token that is not an option); other commands get argv unchanged.
    """
    argv = list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command != "run" or "--ros-args" not in argv:
        return argv, []
    cut = argv.index("--ros-args")
    if "--" in argv[:cut]:  # `run -- --ros-args ...`: argparse already passes it through
        return argv, []
    return argv[:cut], argv[cut:]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="seg-perception", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {package_version()}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="write the fused ONNX graph (uint8 camera frames in, uint8 labels out)")
    _model_arg(p)
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    p.add_argument("--input-size", type=parse_size, default=None, help="camera WIDTHxHEIGHT (default: model size)")
    p.add_argument(
        "--batch", type=_positive, default=None, help="fixed batch size (default: dynamic when the model allows)"
    )
    p.add_argument("--channel-order", choices=("RGB", "BGR"), default="RGB", help="camera channel order")
    p.add_argument(
        "--output-resolution",
        choices=("input", "model"),
        default="input",
        help="labels at the camera's size (input) or at the model's input size (model)",
    )
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser(
        "infer", help="segment image files: writes <stem>_labels/_drivable/_overlay.png and <stem>_<mask>_mask.png"
    )
    _model_arg(p)
    p.add_argument("--input", type=Path, required=True, help="an image or a directory of images")
    p.add_argument("--out", type=Path, required=True, help="output directory (refused when not empty, see --force)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out whole (old files are deleted)")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="onnxruntime", help=BACKEND_HELP)
    p.add_argument("--threads", type=_non_negative, default=0, help="inference threads (0: backend default)")
    p.add_argument(
        "--output-resolution",
        choices=("input", "model"),
        default="input",
        help="labels at the image's size (input) or at the model's input size (model)",
    )
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("synth", help="generate a synthetic drive: PNG scenes with labels, or a rosbag2 bag")
    p.add_argument(
        "--out", type=Path, default=None, help="directory for <i>.png and <i>_labels.png: independent scenes"
    )
    p.add_argument("--bag", type=Path, default=None, help="write a rosbag2 bag (frames + camera_info) here instead")
    p.add_argument("--frames", type=_positive, default=10, help="frames (scenes) to write, at least 1 (default 10)")
    p.add_argument(
        "--size",
        type=synthetic_size,
        default=(1280, 720),
        help=f"WIDTHxHEIGHT, at most {SYNTHETIC_MAX_SIZE[0]}x{SYNTHETIC_MAX_SIZE[1]} (default 1280x720)",
    )
    p.add_argument("--seed", type=int, default=0, help="--out: scene i uses seed + i; --bag: the drive's seed")
    p.add_argument(
        "--drive",
        action="store_true",
        help="--out: consecutive frames of one drive instead of independent scenes (--bag always writes a drive)",
    )
    p.add_argument(
        "--topic", action="append", help="--bag: camera image topic, repeatable (default /camera/front/image_raw)"
    )
    p.add_argument("--compressed", action="store_true", help="--bag: JPEG CompressedImage on <topic>/compressed")
    p.add_argument(
        "--video",
        choices=("h264", "h265"),
        default=None,
        help="--bag: the camera as foxglove_msgs/CompressedVideo (encoded with PyAV) on one --topic "
        "(default /camera/front/video), a keyframe every 10 frames",
    )
    p.add_argument("--bframes", type=int, default=0, help="--video: B-frames between references (default 0)")
    p.add_argument("--rate", type=_positive_rate, default=15.0, help="--bag: frames per second (default 15)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="--bag: storage (default mcap)")
    p.add_argument("--force", action="store_true", help="replace an existing --bag, or a non-empty --out, whole")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "run",
        help="run the node without the launch package: `run --ros-args ...` as with ros2 run (`run -- --ros-args` too)",
        description="Run the segmentation node in this process, as `ros2 run seg_perception seg_perception_node`.",
        epilog=node_parameters_epilog(),
        formatter_class=RawDescriptionDefaultsHelpFormatter,
    )
    p.add_argument(
        "--params-file", type=Path, default=None, help="ROS 2 parameters YAML (e.g. config/seg_perception.yaml)"
    )
    p.add_argument(
        "ros_args", nargs=argparse.REMAINDER, help="e.g. --ros-args -r __ns:=/camera -p backend:=onnxruntime"
    )
    p.set_defaults(func=cmd_run)

    for module in COMMAND_MODULES:
        # Each module exposes register(subparsers) and keeps its heavy imports inside its handlers.
        importlib.import_module(module).register(sub)
    return parser


# Subsystems that add subcommands (bags, engines, evaluation, benchmarks).
COMMAND_MODULES: tuple[str, ...] = (
    "seg_perception.bag.commands",
    "seg_perception.fleet.process_command",
    "seg_perception.fleet.scaling_bench",
    "seg_perception.bench.soak",
    "seg_perception.bench.bench",
    "seg_perception.engine_commands",
    "seg_perception.fleet.eval_commands",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    head, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(head)
    if ros_args:
        args.ros_args = [*args.ros_args, *ros_args]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except SegPerceptionError as exc:
        LOG.error("error: %s", exc)
        return 2
    except KeyboardInterrupt:
        LOG.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`seg-perception build-engine` and `seg-perception quantize`: TensorRT engines and INT8 QDQ graphs.

Both compile the same fused graph the node compiles (same model, camera size, channel order and output
resolution), so what they write lands in the cache slot the node looks up. Heavy imports (onnx,
onnxruntime, tensorrt) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seg_perception.cli_args import number, parse_size
from seg_perception.core.errors import SegPerceptionError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from seg_perception.core.model_spec import ModelSpec

LOG = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = "~/.cache/seg_perception/engines"  # the node's engine_cache_dir default
_positive = number(int, 1)
_non_negative = number(int, 0)
CALIBRATION_SEED = 20_000  # generated calibration scenes; evaluation scenes use other seeds
EVALUATION_SEED = 10_000


def _fused_graph(args: argparse.Namespace) -> tuple[ModelSpec, onnx.ModelProto]:
    from seg_perception.core.graph_compiler import compile_fused_graph
    from seg_perception.core.model_spec import default_spec_path, load_model_spec

    spec = load_model_spec(args.model or default_spec_path())
    width, height = args.input_size or (spec.input.width, spec.input.height)
    # batch=None keeps the batch dynamic, exactly as the node's Segmenter compiles it.
    fused = compile_fused_graph(spec, width, height, args.channel_order, args.output_resolution, batch=None)
    return spec, fused


def _calibration_frames(args: argparse.Namespace, width: int, height: int) -> list[np.ndarray]:
    """RGB frames from --calib DIR, or generated driving scenes when no directory is given."""
    from seg_perception.core.quantization import frames_from_directory

    if args.calib is None:
        from seg_perception.core.scenes import generate_scene

        LOG.info(
            "no --calib: calibrating on %d generated driving scenes (use real camera frames for a real car)",
            args.frames,
        )
        return [generate_scene(CALIBRATION_SEED + i, width, height).image for i in range(args.frames)]
    calib = Path(args.calib)
    if calib.is_file() or (calib / "metadata.yaml").is_file():  # a rosbag2 bag: its camera topics
        from seg_perception.bag.offline_processing import camera_frames

        frames = list(camera_frames(calib, limit=args.frames))
        if not frames:
            raise SegPerceptionError(f"--calib {calib}: the bag has no decodable camera frames")
        return frames
    return list(frames_from_directory(calib, limit=args.frames))


def _quantize(args: argparse.Namespace, spec: ModelSpec, fused: onnx.ModelProto) -> onnx.ModelProto:
    """Calibrate, report agreement on held-out generated scenes, and store the QDQ graph in the cache."""
    from seg_perception.backends.engine_builder import store_qdq
    from seg_perception.core.quantization import compare_labels, fused_graph_input, quantize_fused_graph
    from seg_perception.core.scenes import generate_scene

    target = fused_graph_input(fused)
    frames = _calibration_frames(args, target.width, target.height)
    qdq = quantize_fused_graph(fused, frames, method=args.method)
    scenes = [generate_scene(EVALUATION_SEED + i, target.width, target.height) for i in range(args.eval_frames)]
    report = compare_labels(fused, qdq, [(s.image, s.labels) for s in scenes], ignore_id=spec.ignore_id)
    LOG.info("INT8 QDQ vs FP32 on ONNX Runtime, held-out generated scenes: %s", report.describe())
    info: dict[str, Any] = {
        "calibration": str(args.calib or f"{len(frames)} generated scenes"),
        "calibration_frames": len(frames),
        "method": args.method,
        "label_agreement": round(report.label_agreement, 6),
        "miou_change": round(report.miou_change, 6),
    }
    path = store_qdq(fused, qdq, Path(args.cache_dir), info)
    LOG.info("stored the QDQ graph for engine builds in %s", path)
    return qdq


def cmd_build_engine(args: argparse.Namespace) -> int:
    from seg_perception.backends.engine_builder import BuildOptions, ensure_engine, require_tensorrt

    require_tensorrt()  # before any work: one line with install steps when TensorRT is missing
    spec, fused = _fused_graph(args)
    options = BuildOptions(args.precision, args.max_batch, args.workspace, args.dla_core)
    qdq = None
    if args.precision == "int8" and args.calib is not None:
        qdq = _quantize(args, spec, fused)
    elif args.calib is not None:
        LOG.warning("--calib is only used with --precision int8; ignoring it")
    cached = ensure_engine(
        fused, options, Path(args.cache_dir), allow_build=True, qdq=qdq, out=args.out, force=args.force
    )
    LOG.info(
        "%s %s (%.1f MiB; key and I/O in %s.json)",
        "built" if cached.built else "reused the valid engine",
        cached.path,
        len(cached.data) / 2**20,
        cached.path.name,
    )
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    import onnx

    spec, fused = _fused_graph(args)
    qdq = _quantize(args, spec, fused)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(qdq, str(args.out))
    LOG.info("wrote %s (QDQ INT8 fused graph for %s)", args.out, spec.name)
    return 0


def _graph_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")
    parser.add_argument("--input-size", type=parse_size, default=None, help="camera WIDTHxHEIGHT (default: model size)")
    parser.add_argument("--channel-order", choices=("RGB", "BGR"), default="RGB", help="camera channel order")
    parser.add_argument("--output-resolution", choices=("input", "model"), default="input", help="label resolution")
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help=f"engine cache (the node's engine_cache_dir; {DEFAULT_CACHE_DIR})",
    )


def _calibration_args(parser: argparse.ArgumentParser, frames_default: int) -> None:
    parser.add_argument("--frames", type=_positive, default=frames_default, help="calibration frames to use")
    parser.add_argument("--eval-frames", type=_positive, default=8, help="held-out generated scenes for the report")
    parser.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="percentile")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "build-engine", help="build (or validate) the TensorRT engine for a model and camera size into the cache"
    )
    _graph_args(p)
    p.add_argument("--max-batch", type=_positive, default=1, help="largest batch of the optimization profile")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    p.add_argument(
        "--calib",
        default=None,
        metavar="DIR_OR_BAG",
        help="int8: calibration images or a rosbag2 bag's camera topics (default: a QDQ graph already cached)",
    )
    p.add_argument("--workspace", type=_non_negative, default=0, metavar="MiB", help="builder workspace (0: default)")
    p.add_argument("--dla-core", type=_non_negative, default=None, metavar="K", help="build for DLA core K (Jetson)")
    p.add_argument("--out", type=Path, default=None, help="engine path (default: the cache slot the node loads)")
    p.add_argument("--force", action="store_true", help="rebuild even when the cached engine is valid")
    _calibration_args(p, frames_default=64)
    p.set_defaults(func=cmd_build_engine)

    p = subparsers.add_parser("quantize", help="write the INT8 QDQ fused graph (ONNX Runtime) and report agreement")
    _graph_args(p)
    p.add_argument(
        "--calib", default=None, metavar="DIR_OR_BAG", help="calibration images or a bag (default: generated scenes)"
    )
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    _calibration_args(p, frames_default=64)
    p.set_defaults(func=cmd_quantize)

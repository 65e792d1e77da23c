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
    import onnx

    from seg_perception.core.model_spec import ModelSpec
    from seg_perception.int8_flow import Int8Graph

LOG = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = "~/.cache/seg_perception/engines"  # the node's engine_cache_dir default
_positive = number(int, 1)
_non_negative = number(int, 0)


def _fused_graph(args: argparse.Namespace) -> tuple[ModelSpec, onnx.ModelProto]:
    from seg_perception.core.graph_compiler import compile_fused_graph
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec

    spec = load_model_spec(args.model or default_spec_path())
    width, height = args.input_size or (spec.input.width, spec.input.height)
    # batch=None keeps the batch dynamic, exactly as the node's Segmenter compiles it.
    fused = compile_fused_graph(spec, width, height, args.channel_order, args.output_resolution, batch=None)
    return spec, fused


def _quantize(args: argparse.Namespace, spec: ModelSpec, fused: onnx.ModelProto) -> Int8Graph:
    """Calibrate, gate against fp32 on held-out frames, and store the QDQ graph in the cache."""
    from seg_perception.int8_flow import int8_graph, store_int8

    graph = int8_graph(args, spec, fused)
    path = store_int8(fused, graph, Path(args.cache_dir))
    if path is not None:
        LOG.info("stored the QDQ graph for engine builds in %s", path)
    return graph


def _refused(exc: SegPerceptionError) -> int:
    """A gate refusal: one line, exit 1 (the inputs were valid; the INT8 result is not good enough)."""
    LOG.error("error: %s", exc)
    return 1


def cmd_build_engine(args: argparse.Namespace) -> int:
    from seg_perception.backends.engine_artefacts import BuildOptions
    from seg_perception.backends.engine_builder import ensure_engine, require_tensorrt
    from seg_perception.core.int8_gate import AccuracyGateError

    spec, fused = _fused_graph(args)  # the spec first: a wrong --model is named before TensorRT is looked for
    options = BuildOptions(args.precision, args.max_batch, args.workspace, args.dla_core)
    require_tensorrt()  # before calibrating: one line with install steps when TensorRT is missing
    qdq, gate = None, None
    if args.precision == "int8" and args.calib is not None:
        try:
            graph = _quantize(args, spec, fused)
        except AccuracyGateError as exc:
            return _refused(exc)
        qdq, gate = graph.qdq, graph.info["gate"]
    elif args.calib is not None:
        LOG.warning("--calib is only used with --precision int8; ignoring it")
    cached = ensure_engine(
        fused, options, Path(args.cache_dir), allow_build=True, qdq=qdq, out=args.out, force=args.force, qdq_gate=gate
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
    from seg_perception.core.engine_cache import write_bytes_atomic
    from seg_perception.core.int8_gate import AccuracyGateError

    spec, fused = _fused_graph(args)
    try:
        graph = _quantize(args, spec, fused)
    except AccuracyGateError as exc:
        return _refused(exc)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.out, graph.qdq.SerializeToString())
    except OSError as exc:
        raise SegPerceptionError(f"cannot write --out {args.out}: {exc.strerror or exc}") from exc
    LOG.info("wrote %s (QDQ INT8 fused graph for %s)", args.out, spec.name)
    return 0


def _graph_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")
    parser.add_argument("--input-size", type=parse_size, default=None, help="camera WIDTHxHEIGHT (default: model size)")
    parser.add_argument("--channel-order", choices=("RGB", "BGR"), default="RGB", help="camera channel order")
    parser.add_argument(
        "--output-resolution",
        choices=("input", "model"),
        default="input",
        help="labels at the camera's size (input) or at the model's input size (model)",
    )
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="engine cache (the node's engine_cache_dir)",
    )


def register(subparsers: Any) -> None:
    from seg_perception.int8_flow import add_int8_args

    p = subparsers.add_parser(
        "build-engine", help="build (or validate) the TensorRT engine for a model and camera size into the cache"
    )
    _graph_args(p)
    p.add_argument("--max-batch", type=_positive, default=1, help="largest batch of the optimization profile")
    p.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        default="fp16",
        help="engine precision; int8 calibrates (--calib) or uses the QDQ graph `quantize` cached, behind an "
        "accuracy gate against fp32",
    )
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
    add_int8_args(p, frames_default=64)
    p.set_defaults(func=cmd_build_engine)

    p = subparsers.add_parser("quantize", help="write the INT8 QDQ fused graph (ONNX Runtime) and report agreement")
    _graph_args(p)
    p.add_argument(
        "--calib", default=None, metavar="DIR_OR_BAG", help="calibration images or a bag (default: generated scenes)"
    )
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    add_int8_args(p, frames_default=64)
    p.set_defaults(func=cmd_quantize)

"""The INT8 flow behind `quantize` and `build-engine --precision int8`: calibrate, gate, mixed precision, cache.

1. Frames: ``--calib DIR_OR_BAG`` (else generated driving scenes). Without ``--val DIR`` the last quarter
   of the calibration frames is held out (the last, not every fourth: consecutive frames of one drive are
   near-duplicates, and a check on them would flatter the graph).
2. Calibrate on the rest (``core.calibration``), quantize, and check the INT8 labels against fp32 on the
   held-out frames (``core.int8_gate``).
3. With ``--mixed-precision`` a failing graph keeps its most sensitive layers in fp32
   (``core.mixed_precision``).
4. A graph that fails its gate is never cached: the command exits 1 with one line saying what to do, unless
   ``--accept-accuracy-loss``; even then it does not replace a cached graph that passed its own gate.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seg_perception.cli_args import number
from seg_perception.core.errors import SegPerceptionError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from seg_perception.core.model_spec import ModelSpec

LOG = logging.getLogger(__name__)
MIN_CALIBRATION_FRAMES = 4
MIN_HELD_OUT_FRAMES = 2
HELD_OUT_SHARE = 0.25
CALIBRATION_SEED = 20_000  # generated calibration scenes; evaluation scenes use other seeds


@dataclass(frozen=True)
class Int8Graph:
    """A QDQ graph, what the cache sidecar records about it, and whether it passed its gate."""

    qdq: onnx.ModelProto
    info: dict[str, Any]
    passed: bool


def _frames(source: str | None, limit: int, width: int, height: int, what: str) -> tuple[list[np.ndarray], str]:
    """RGB frames and a description of where they came from."""
    from seg_perception.core.quantization import frames_from_directory

    if source is None:
        from seg_perception.synthetic.scenes import generate_scene

        LOG.info("no --calib: using %d generated driving scenes (use real camera frames for a real car)", limit)
        return [generate_scene(CALIBRATION_SEED + i, width, height).image for i in range(limit)], "generated scenes"
    path = Path(source)
    if path.is_file() or (path / "metadata.yaml").is_file():  # a rosbag2 bag: its camera topics
        from seg_perception.bag.offline_processing import camera_frames

        try:
            return list(camera_frames(path, limit=limit)), str(path)
        except SegPerceptionError:
            raise
        except Exception as exc:  # a damaged bag is a user error, named in one line
            raise SegPerceptionError(f"{what} {path}: cannot read the bag ({exc})") from exc
    if not path.is_dir():
        raise SegPerceptionError(f"{what} {path} is neither an image directory nor a rosbag2 bag")
    try:
        return list(frames_from_directory(path, limit=limit)), str(path)  # unreadable files: one warning each
    except SegPerceptionError as exc:  # e.g. no images: say which option named the directory
        raise SegPerceptionError(f"{what} {exc}") from None  # unreadable files: one warning each


def _split(
    args: argparse.Namespace, width: int, height: int
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """Calibration frames, held-out frames, and their description for the sidecar."""
    frames, source = _frames(args.calib, args.frames, width, height, "--calib")
    if args.val is not None:
        held_out, val_source = _frames(args.val, args.frames, width, height, "--val")
        calibration = frames
    else:
        held = max(MIN_HELD_OUT_FRAMES, round(len(frames) * HELD_OUT_SHARE))
        calibration, held_out, val_source = frames[:-held], frames[-held:], f"last {held} frames of --calib"
    if len(calibration) < MIN_CALIBRATION_FRAMES or len(held_out) < MIN_HELD_OUT_FRAMES:
        need = (
            f"at least {MIN_CALIBRATION_FRAMES}"
            if args.val is not None
            else f"at least {MIN_CALIBRATION_FRAMES + MIN_HELD_OUT_FRAMES} "
            f"({MIN_CALIBRATION_FRAMES} to calibrate, {MIN_HELD_OUT_FRAMES} held out to check accuracy)"
        )
        if args.val is not None and len(held_out) < MIN_HELD_OUT_FRAMES:
            raise SegPerceptionError(
                f"--val {args.val} has {len(held_out)} readable frame(s); the accuracy check needs "
                f"at least {MIN_HELD_OUT_FRAMES}"
            )
        raise SegPerceptionError(
            f"--calib {source} has {len(frames)} readable frame(s); INT8 calibration needs {need}: "
            "add frames (or raise --frames)"
        )
    described = {
        "calibration": source,
        "calibration_frames": len(calibration),
        "held_out": val_source,
        "held_out_frames": len(held_out),
    }
    return calibration, held_out, described


def int8_graph(args: argparse.Namespace, spec: ModelSpec, fused: onnx.ModelProto) -> Int8Graph:
    """Calibrate, gate and (with --mixed-precision) repair the QDQ graph for `fused`."""
    from seg_perception.core.calibration import CALIBRATION_SETTINGS
    from seg_perception.core.int8_gate import AccuracyGateError, GateThresholds, check_accuracy, fp32_labels
    from seg_perception.core.quantization import (
        calibrate_fused_graph,
        calibration_batches,
        fused_graph_input,
        qdq_from_ranges,
        weighted_nodes,
    )

    thresholds = GateThresholds(args.min_agreement / 100, args.min_class_iou / 100)
    target = fused_graph_input(fused)
    calibration, held_out, info = _split(args, target.width, target.height)
    ranges = calibrate_fused_graph(fused, calibration, args.method)
    qdq = qdq_from_ranges(fused, ranges, calibration_frames=len(calibration))
    held_batches = calibration_batches(fused, held_out)
    held_ref = fp32_labels(fused, held_batches)
    names, drivable = list(spec.class_names), list(spec.drivable_ids)
    check = check_accuracy(qdq, held_batches, held_ref, names, drivable)
    LOG.info("INT8 (%s) vs fp32 on ONNX Runtime: %s", args.method, check.describe())
    info.update(method=args.method, calibration_settings=CALIBRATION_SETTINGS[args.method].to_json())
    info["full_int8"] = check.to_json(thresholds)
    fp32_nodes: tuple[str, ...] = ()
    if check.failures(thresholds) and args.mixed_precision:
        from seg_perception.core.mixed_precision import search_mixed_precision

        calib_batches = calibration_batches(fused, calibration)
        found = search_mixed_precision(
            fused,
            ranges,
            (calib_batches, fp32_labels(fused, calib_batches[:8])),
            (held_batches, held_ref),
            names,
            drivable,
            thresholds,
            args.min_quantized / 100,
        )
        qdq, check, fp32_nodes = found.qdq, found.check, found.fp32_nodes
        info["mixed_precision"] = found.to_json()
        LOG.info(
            "mixed precision: %d of %d weighted nodes kept in fp32 (%s): %s",
            len(fp32_nodes),
            found.weighted_nodes,
            ", ".join(fp32_nodes) or "none",
            check.describe(),
        )
    failures = check.failures(thresholds)
    info["gate"] = check.to_json(thresholds, accepted_loss=args.accept_accuracy_loss)
    info["fp32_nodes"] = list(fp32_nodes)
    info["weighted_nodes"] = len(weighted_nodes(fused))
    if failures and not args.accept_accuracy_loss:
        hint = "" if args.mixed_precision else "--mixed-precision, "
        raise AccuracyGateError(
            f"INT8 failed its accuracy gate ({'; '.join(failures)}) and was not cached: try {hint}"
            "other or more calibration frames (--calib), --method, or --accept-accuracy-loss to keep it anyway"
        )
    if failures:
        LOG.warning("INT8 failed its accuracy gate (%s); kept because of --accept-accuracy-loss", "; ".join(failures))
    return Int8Graph(qdq, info, passed=not failures)


def store_int8(fused: onnx.ModelProto, graph: Int8Graph, cache_dir: Path) -> Path | None:
    """Cache the graph for engine builds; a graph that failed its gate never replaces one that passed."""
    from seg_perception.backends.engine_artefacts import cached_qdq_gate, qdq_path, store_qdq

    if not graph.passed:
        previous = cached_qdq_gate(fused, cache_dir)
        if previous is not None and previous.get("passed"):
            LOG.warning(
                "not replacing %s: it passed its accuracy gate and this graph did not",
                qdq_path(cache_dir, fused),
            )
            return None
    return store_qdq(fused, graph.qdq, cache_dir, graph.info)


# An argparse type: a percentage 0..100 (gate thresholds, the share left quantized).
percent = number(float, 0.0, maximum=100.0)


def add_int8_args(parser: argparse.ArgumentParser, frames_default: int) -> None:
    """Calibration, gate and mixed-precision options (shared by quantize and build-engine)."""
    from seg_perception.core.calibration import CALIBRATION_METHODS

    positive = number(int, 1)
    parser.add_argument("--frames", type=positive, default=frames_default, help="calibration frames to read")
    parser.add_argument(
        "--val",
        default=None,
        metavar="DIR_OR_BAG",
        help="held-out frames for the accuracy gate (default: the last quarter of the calibration frames)",
    )
    parser.add_argument(
        "--method", choices=CALIBRATION_METHODS, default="percentile", help="calibration method (default percentile)"
    )
    parser.add_argument(
        "--min-agreement", type=percent, default=98.0, metavar="PCT", help="gate: INT8/fp32 label agreement"
    )
    parser.add_argument(
        "--min-class-iou", type=percent, default=90.0, metavar="PCT", help="gate: lowest class IoU vs fp32"
    )
    parser.add_argument(
        "--accept-accuracy-loss", action="store_true", help="cache the INT8 graph even when it fails the gate"
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="when full INT8 fails the gate, keep the most sensitive layers in fp32 until it passes",
    )
    parser.add_argument(
        "--min-quantized",
        type=percent,
        default=50.0,
        metavar="PCT",
        help="mixed precision: keep at least this share of weighted layers quantized (50)",
    )

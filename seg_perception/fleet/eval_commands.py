"""`seg-perception eval` and `seg-perception compare`: measure accuracy and backend/precision parity.

Heavy imports (onnx, onnxruntime, cv2) stay inside the handlers, so `seg-perception --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seg_perception.cli_args import number
from seg_perception.core.atomic_files import write_command_output
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.metrics import LABEL_FORMATS

LOG = logging.getLogger(__name__)
VARIANT_HELP = (
    "onnxruntime[:fp32|int8-qdq|fp16], tensorrt[:fp32|fp16|int8] or auto "
    "(int8-qdq: the gated CPU-variant QDQ graph `seg-perception quantize --target onnxruntime` cached for this "
    "camera size, else one calibrated on --calib DIR or generated scenes)"
)


def _write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    write_command_output(path, json.dumps(data, indent=2) + "\n", "--json")
    LOG.info("wrote %s", path)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _load(args: argparse.Namespace) -> Any:
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec

    return load_model_spec(args.model or default_spec_path())


def _calibration(args: argparse.Namespace, *variants: Any) -> Any:
    from seg_perception.evaluation.runners import Calibration

    calibration = Calibration(args.calib, args.calib_method)
    if calibration.requested and not any(str(v) == "onnxruntime:int8-qdq" for v in variants):
        LOG.warning("--calib/--calib-method only apply to onnxruntime:int8-qdq; ignoring them")
    return calibration


def _ray_options(args: argparse.Namespace, variant: Any) -> Any:
    """`eval --ray`'s actor pool, or None without --ray (where the pool options are refused)."""
    from seg_perception.fleet.ray_runtime import actor_pool

    pool = actor_pool(args, "eval", {"--batch-size": args.batch_size})
    if pool is None:
        return None
    if variant.backend == "tensorrt" and not args.num_gpus:
        raise SegPerceptionError(f"--backend {variant} with --ray needs GPU actors: add --num-gpus 1")
    from seg_perception.fleet.eval_on_ray import DEFAULT_BATCH_SIZE, RayEvalOptions

    return RayEvalOptions(
        args.ray, pool.workers, pool.num_cpus, pool.num_gpus, batch_size=args.batch_size or DEFAULT_BATCH_SIZE
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.runners import evaluate_in_process, parse_variant, plan_eval

    _check_report(args)
    spec = _load(args)
    variant = parse_variant(args.backend)  # before any frame: a missing TensorRT fails here
    on_ray = _ray_options(args, variant)
    job = plan_eval(
        spec,
        args.images,
        args.labels,
        args.label_format,
        args.ignore_index,
        variant,
        keep_pixels=bool(args.report),
        calibration=_calibration(args, variant),
    )
    if on_ray is None:
        result = evaluate_in_process(job)
    else:
        from seg_perception.fleet.eval_on_ray import evaluate_on_ray

        result = evaluate_on_ray(job, on_ray)
    data = result.to_json()
    LOG.info(
        "%s on %s, %d frames: mIoU %s, pixel accuracy %s, drivable IoU %s (precision %s, recall %s), %.1f fps",
        spec.name,
        result.backend_detail,
        result.frames,
        _pct(data["miou"]),
        _pct(data["pixel_accuracy"]),
        _pct(data["drivable_iou"]),
        _pct(data["drivable_precision"]),
        _pct(data["drivable_recall"]),
        data["fps"] or float("nan"),
    )
    for name, iou in data["per_class_iou"].items():
        LOG.info("  %-20s IoU %s", name, "not present" if iou is None else _pct(iou))
    if data["ignored_classes"]:
        LOG.info("  not scored (ignored): %s", ", ".join(data["ignored_classes"]))
    for reason, spans in (data["health"] or {}).get("spans", {}).items():  # frames in name order, as a drive
        frames = data["health"]["flagged_frames"][reason]
        where = ", ".join(s["first"] if s["frames"] == 1 else f"{s['first']}..{s['last']}" for s in spans[:5])
        LOG.warning("health: %s on %d frames: %s%s", reason, frames, where, ", ..." if len(spans) > 5 else "")
    from seg_perception.evaluation.report import page_for_eval

    return _finish(args, result, data, page_for_eval)


def cmd_compare(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.runners import parse_variant, run_compare

    _check_report(args)
    spec = _load(args)
    a, b = parse_variant(args.a), parse_variant(args.b)
    if a == b:
        LOG.warning("--a and --b are both %s: expect 100%% agreement", a)
    result = run_compare(spec, args.images, a, b, keep_pixels=bool(args.report), calibration=_calibration(args, a, b))
    data = result.to_json()
    LOG.info(
        "%s vs %s on %d frames: label agreement %.3f%%, mIoU of B against A %s; fps A %.1f, B %.1f",
        a,
        b,
        result.frames,
        result.agreement * 100,
        _pct(data["miou_b_vs_a"]),
        result.fps_a,
        result.fps_b,
    )
    for row in data["worst_frames"]:
        LOG.info("  worst: %-24s agreement %s", row["stem"], _pct(row["agreement"]))
    from seg_perception.evaluation.report import page_for_compare

    return _finish(args, result, data, page_for_compare)


def _finish(args: argparse.Namespace, result: Any, data: dict[str, Any], page: Callable[[Any], Any]) -> int:
    """Shared tail of eval and compare: notes, --json, --report (built by `page`)."""
    for note in result.notes:
        LOG.info("note: %s", note)
    _write_json(args.json, data)
    if args.report:
        from seg_perception.core.output_rule import staged_output_dir
        from seg_perception.evaluation.report import write_report

        with staged_output_dir(args.report, "--report", args.force, inputs=[args.images]) as out:
            write_report(out, page(result))
        LOG.info("wrote the report %s", args.report / "index.html")
    return 0


def _check_report(args: argparse.Namespace) -> None:
    """--report follows the output rule (core.output_rule), checked before any frame is scored."""
    if args.report is not None:
        from seg_perception.core.output_rule import check_output

        check_output(args.report, "--report", args.force, inputs=[args.images])


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model spec YAML (default: the bundled demo model)")
    parser.add_argument("--images", type=Path, required=True, help="directory of camera images")


def _int8(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calib",
        type=Path,
        default=None,
        metavar="DIR",
        help="int8-qdq: calibrate on these images instead of using the cached QDQ graph",
    )
    parser.add_argument(
        "--calib-method",
        choices=("minmax", "percentile", "entropy"),
        default=None,
        help="int8-qdq: calibrate with this method instead of using the cached QDQ graph (default percentile)",
    )


def _outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument(
        "--report", type=Path, default=None, metavar="OUT_DIR", help="write a static HTML report (OUT_DIR/index.html)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a non-empty --report directory whole (--json is always replaced)"
    )


def _cluster(parser: argparse.ArgumentParser) -> None:
    from seg_perception.fleet.ray_runtime import add_actor_pool_arguments, add_ray_argument

    add_ray_argument(parser, "score the images")
    add_actor_pool_arguments(parser, "its own model")
    parser.add_argument(
        "--batch-size",
        type=number(int, 1),
        default=None,
        metavar="N",
        help="--ray: frames an actor scores per Ray Data batch (default 16)",
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="mIoU, pixel accuracy and drivable IoU/precision/recall on labelled images, with fps"
    )
    _common(p)
    p.add_argument("--labels", type=Path, required=True, help="ground truth: <stem>.png or <stem>_labels.png per image")
    p.add_argument(
        "--label-format",
        choices=LABEL_FORMATS,
        default="index",
        help="index: the spec's class ids; cityscapes-ids: Cityscapes labelIds (mapped to train ids); "
        "bdd-drivable: BDD100K drivable maps (0 direct, 1 alternative, 2 background)",
    )
    p.add_argument(
        "--ignore-index",
        type=number(int, 0, maximum=255),  # label images are 8-bit
        default=None,
        metavar="K",
        help="ground-truth value not scored; the class it names is left out of every score "
        "(default: the spec's ignore_id; 255 is always void)",
    )
    p.add_argument("--backend", default="onnxruntime", help=f"{VARIANT_HELP} (default onnxruntime:fp32)")
    _int8(p)
    _outputs(p)
    _cluster(p)
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser(
        "compare", help="label agreement and mIoU of backend/precision B against A's labels, with worst frames"
    )
    _common(p)
    p.add_argument("--a", default="onnxruntime:fp32", help=f"reference: {VARIANT_HELP} (default onnxruntime:fp32)")
    p.add_argument("--b", required=True, help="candidate, same forms as --a, e.g. onnxruntime:int8-qdq")
    _int8(p)
    _outputs(p)
    p.set_defaults(func=cmd_compare)

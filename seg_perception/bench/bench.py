"""`seg-perception bench`: pure inference, the fused pipeline, a straightforward baseline and the node
over DDS, measured side by side in one run; JSON in a stable schema and a PNG plot.

Every measurement is a phase of its own: one that fails is listed under "failures" (with its error) and
the others are still measured and written; the command then exits 1. The straightforward baseline skips
itself, with the reason under "skipped", for a spec option it does not implement.

Schema (schema_version 1):
  {"schema_version": 1, "machine": {...}, "model": str, "backend": str,
   "settings": {"frames", "node_seconds", "threads", "sizes": ["WxH"] (benched), "summary_size": "WxH",
                "batching_size": "WxH", "sizes_requested": ["WxH"] (--sizes and --summary-size as asked),
                "size_substitutions": [{"requested", "benched", "reason"}] (bench/camera_sizes.py: a spec
                whose graph accepts only some camera sizes is benched at the accepted size nearest each
                requested one; one it cannot place is listed under "skipped")},
   "label_agreement_straightforward": {"WxH": share of pixels where baseline labels == pipeline labels},
   "measurements": [{"name": str, "size": "WxH", "unit": "ms", "median": float, "p10": float,
                     "p90": float, "repeats": int, "stages_ms": {stage: median}?, ...}],
   "multi_camera": [{"cameras": N, "batched_median", "single_median", "throughput_ratio", "batched_fps",
                     "labels_match_single": bool}],
   "message_path": {"size", "repeats", "median_ms": {"in_rclpy", "in_rosbags", "in_image_cdr", "out_rclpy",
                    "out_rosbags", "out_image_cdr"}} | null (serialized frame -> inference frame and labels ->
                    serialized bytes, no DDS; seg_perception/bench/message_path.py),
   "node": {"30hz" | "overload": {"rate_hz", "seconds", "sent", "answered", "dropped" (sent - answered),
            "answered_by_topic", "send_rate_hz", "sustained_hz" (answers per second of sending),
            "cpu_percent", "rss_mb_start", "rss_mb_end" (the node's RSS when sending began and after the
            last answer), "rss": {...} (below), "latency_ms": {"p50", "p95", "p99", "max"},
            "latency_quarter_medians_ms", "latency_trend_ms", "output_fps", "latencies_ms",
            "stages_ms": {stage: {"p50", "p95", "frames"}} (the node's latency budget, from its
            segmentation/stage_times debug topic; stage names in seg_perception/ros/stage_times.py),
            "error": str (only when the phase failed; then no latency figures, and no "rss" if it failed
            before sending)},
            "dds_floor": {the same figures but "stages_ms" and "rss", for bench/echo_node.py in the node's
            place at the camera rate: no model, outputs answered at once}},
   "summary": {"size": "WxH", "pure_ms", "pipeline_ms", "pipeline_overlay_ms", "straightforward_ms",
               "health_checks_ms" (every health check on one frame, measurement "health_checks"),
               "speedup_vs_straightforward", "node_p50_ms", "node_p99_ms", "overload_p99_ms",
               "dropped_overload", "rss_mb_start", "rss_mb_end", "rss_mb_peak", "rss_rise_mb",
               "rss_growth_mb", "rss_one_time_mb", "rss_verdict", "node_stages_p50_ms": {stage: p50 at the
               camera rate}, "dds_floor_p50_ms", "node_over_pipeline_ms" (node p50 - pipeline),
               "node_own_ms" (node_p50_ms - its segment stage p50 - dds_floor_p50_ms),
               "targets": {name: bool | "noisy" | null}, "noise": [reason]}  (null: not measured),
   "interleaved": {"rounds", "repeats_per_round", "pure_round_medians_ms", "pipeline_round_medians_ms",
                   "pure_spread", "pipeline_spread", "pipeline_minus_pure_ms"} | null (at the summary size,
                   alternating rounds of pure inference and the pipeline: the summary's pure_ms and
                   pipeline_ms are their medians, the figures of record),
   "conditions": {"load_average_1min": [at start, after the offline phases, at the end], "cores"},
   "phases_run": int, "failures": [{"phase", "size", "error"}], "skipped": [{"phase", "reason"}]}

Where the timing cannot be trusted (bench_report.noise_reasons: pure inference slower than the pipeline,
round medians spread above SPREAD_BOUND, load above the cores), the summary's "noise" lists why and every
timing target is "noisy" instead of true or false.

The node's memory (bench/memory_figures.py says how): its RSS is sampled every 0.25 s through each node
phase. A phase's "rss": {"samples", "rss_mb_start" (when the phase began, before its warm-up frames; for
the 30 Hz phase that is the node's start), "rss_mb_after_warmup" (idle, the last sample before sending
began), "rss_mb_end" (idle, after the last answer), "rss_mb_peak", "warmup_step_mb", "measured_s" (the
sending span), "rise_mb" (end - after_warmup), "steady_slope_mb_per_min" (slope of the RSS floor over
the second half of the sending span), "second_half_rise_mb" (raw), "growth_mb" (the steady slope times
measured_s, within 0 and rise_mb), "one_time_mb" (rise_mb - growth_mb), "tolerance_mb", "verdict"
("flat" | "one_time" | "growth"), "threads" and "open_fds": {"start", "end", "min", "max"} from the start
of sending, "series": {"t_s", "rss_mb"} (at most 120 points, seconds since the phase began)}.
The summary's rss_mb_start is the 30 Hz phase's rss_mb_after_warmup, rss_mb_end the overload phase's
end, rss_rise_mb their difference (what "rss_growth_mb" used to be), rss_growth_mb the overload phase's
growth_mb scaled to both phases' measured span (the 30 Hz phase is the first sustained load at this size
and may keep one-time buffers; the overload phase repeats the load), to which the < 10 MB target
applies; rss_one_time_mb the rest of the rise; rss_verdict classifies the two.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import onnx

from seg_perception.bench.bench_report import SUMMARY_SIZE, markdown, noise_reasons, plot, summarise
from seg_perception.bench.message_path import measure_message_path
from seg_perception.bench.node_bench import measure_node
from seg_perception.cli_args import number, parse_size, size_list
from seg_perception.core.atomic_files import write_atomic

if TYPE_CHECKING:
    from seg_perception.bench.straightforward import StraightforwardSegmenter
    from seg_perception.core.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter

LOG = logging.getLogger("seg_perception.bench")
T = TypeVar("T")
SCHEMA_VERSION = 1
BATCHING_SIZE = (640, 360)
INTERLEAVED_ROUNDS = 5


def _stats(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, np.float64)
    return {
        "median": float(np.median(a)),
        "p10": float(np.percentile(a, 10)),
        "p90": float(np.percentile(a, 90)),
        "repeats": len(a),
    }


def _time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    import onnxruntime

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "onnxruntime": onnxruntime.__version__,
    }


class Phases:
    """Runs named measurements; a failing one is recorded with its error and the others still run."""

    def __init__(self) -> None:
        self.ran = 0
        self.failures: list[dict[str, str]] = []
        self.skipped: list[dict[str, str]] = []

    def run(self, name: str, size: str, measure: Callable[[], T]) -> T | None:
        self.ran += 1
        try:
            return measure()
        except Exception as exc:  # noqa: BLE001 - one failing measurement must not lose the others
            LOG.warning("bench: %s at %s failed: %s: %s", name, size, type(exc).__name__, exc)
            self.failures.append({"phase": name, "size": size, "error": f"{type(exc).__name__}: {exc}"})
            return None

    def fail(self, name: str, size: str, error: str) -> None:
        LOG.warning("bench: %s at %s failed: %s", name, size, error)
        self.failures.append({"phase": name, "size": size, "error": error})


def _pure_runner(spec: ModelSpec, threads: int) -> tuple[Callable[[], object], str]:
    """One call of the bare model on a ready tensor of its own input type and (fixed or batch-1) shape."""
    import onnxruntime as ort

    from seg_perception.core.onnx_checks import graph_io, load_onnx

    inp = spec.input
    info = graph_io(load_onnx(spec.onnx_path))[0][inp.name]
    batch = info.dims[0] if isinstance(info.dims[0], int) and info.dims[0] > 0 else 1
    shape = (batch, 3, inp.height, inp.width) if inp.layout == "NCHW" else (batch, inp.height, inp.width, 3)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(info.elem_type)
    tensor = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    bare = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
    return (lambda: bare.run(None, {inp.name: tensor})), f"{inp.width}x{inp.height}"


def _pure_inference(spec: ModelSpec, frames: int, threads: int) -> dict[str, Any]:
    run, size = _pure_runner(spec, threads)
    return {"name": "pure_inference", "size": size, "unit": "ms", **_stats(_time(run, frames))}


def _pipeline_runner(seg: Segmenter, size: tuple[int, int], payloads: list[bytes]) -> Callable[[], object]:
    """One camera frame through decode and the pipeline (labels + drivable), cycling over `payloads`."""
    from seg_perception.core import image_codec
    from seg_perception.pipeline import OutputSelection

    want = OutputSelection(drivable=True)
    width, height = size
    turn = iter(range(1 << 62))

    def once() -> object:
        payload = payloads[next(turn) % len(payloads)]
        frame, order = image_codec.to_inference_frame("rgb8", height, width, width * 3, 0, payload)
        return seg.segment(frame, order, want)

    return once


def _interleaved(
    pure: Callable[[], object], pipeline: Callable[[], object], repeats: int, rounds: int = INTERLEAVED_ROUNDS
) -> dict[str, Any]:
    """Pure inference and the pipeline in alternating rounds, so a change of machine speed hits both: the
    medians of their round medians are the figures of record, and their spread says how steady it was."""
    from seg_perception.bench.bench_report import spread

    pure_rounds, pipeline_rounds = [], []
    for _ in range(rounds):
        pure_rounds.append(float(np.median(_time(pure, repeats, warmup=1))))
        pipeline_rounds.append(float(np.median(_time(pipeline, repeats, warmup=1))))
    pure_ms, pipeline_ms = float(np.median(pure_rounds)), float(np.median(pipeline_rounds))
    return {
        "rounds": rounds,
        "repeats_per_round": repeats,
        "pure_round_medians_ms": pure_rounds,
        "pipeline_round_medians_ms": pipeline_rounds,
        "pure_spread": spread(pure_rounds),
        "pipeline_spread": spread(pipeline_rounds),
        "pipeline_minus_pure_ms": pipeline_ms - pure_ms,
    }


def _pipeline(seg: Segmenter, name: str, size: tuple[int, int], payloads: list[bytes], frames: int) -> dict[str, Any]:
    from seg_perception.core import image_codec
    from seg_perception.pipeline import OutputSelection

    want = OutputSelection(drivable=True, overlay=name == "pipeline_overlay")
    width, height = size
    stages: dict[str, list[float]] = {}
    samples = []
    seg.warm_up(width, height)
    for i in range(frames + 3):
        t = time.perf_counter()
        frame, order = image_codec.to_inference_frame("rgb8", height, width, width * 3, 0, payloads[i % 4])
        t_decode = (time.perf_counter() - t) * 1e3
        r = seg.segment(frame, order, want)
        total = (time.perf_counter() - t) * 1e3
        if i < 3:
            continue
        samples.append(total)
        for k, v in {"decode": t_decode, **r.timings_ms}.items():
            stages.setdefault(k, []).append(v)
    return {
        "name": name,
        "size": f"{width}x{height}",
        "unit": "ms",
        **_stats(samples),
        "stages_ms": {k: float(np.median(v)) for k, v in stages.items()},
    }


def _health_checks(seg: Segmenter, frames_rgb: list[np.ndarray], frames: int) -> dict[str, Any]:
    """Every health check on one frame (core/health.py), fed as the node feeds it: the frame, its
    confidence map and its labels; frames alternate so the frozen check compares distinct frames."""
    from seg_perception.core.health import HealthMonitor
    from seg_perception.pipeline import OutputSelection, drivable_table

    want = OutputSelection(drivable=False, confidence=True)
    results = [seg.segment(f, "RGB", want) for f in frames_rgb]
    outputs = [
        (f, r.confidence.copy() if r.confidence is not None else None, r.labels.copy())
        for f, r in zip(frames_rgb, results, strict=True)
    ]
    monitor = HealthMonitor(drivable_table=drivable_table(seg.spec))
    stamp = 0

    def check() -> None:
        nonlocal stamp
        frame, confidence, labels = outputs[stamp % len(outputs)]
        monitor.update(frame, stamp, confidence, labels=labels)
        stamp += 1

    height, width = frames_rgb[0].shape[:2]
    samples = _time(check, frames, warmup=len(outputs) * 2)
    return {"name": "health_checks", "size": f"{width}x{height}", "unit": "ms", **_stats(samples)}


def _straightforward(
    baseline: StraightforwardSegmenter, payload: bytes, width: int, height: int, frames: int
) -> dict[str, Any]:
    samples = _time(lambda: baseline.segment(payload, width, height), frames)
    return {"name": "straightforward", "size": f"{width}x{height}", "unit": "ms", **_stats(samples)}


def _agreement(seg: Segmenter, baseline: StraightforwardSegmenter, frames_rgb: list[np.ndarray]) -> float:
    """Share of pixels where the baseline's labels equal the pipeline's (mean over the frames)."""
    height, width = frames_rgb[0].shape[:2]
    shares = [
        float((baseline.segment(f.tobytes(), width, height)[0] == seg.segment(f, "RGB").labels).mean())
        for f in frames_rgb
    ]
    return float(np.mean(shares))


def measure_offline(
    spec: ModelSpec,
    sizes: list[tuple[int, int]],
    frames: int,
    threads: int,
    phases: Phases,
    summary_size: tuple[int, int] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, Any] | None]:
    """Pure inference, pipeline (with and without overlay) and the straightforward baseline, per size;
    the share of pixels on which the baseline's labels equal the pipeline's, per size; and, at
    `summary_size`, pure inference and the pipeline measured in interleaved rounds (None if not asked)."""
    from seg_perception.bench.straightforward import BaselineUnsupportedError
    from seg_perception.pipeline import Segmenter
    from seg_perception.synthetic.scenes import generate_scene

    results: list[dict[str, Any]] = []
    agreement: dict[str, float] = {}
    pure = phases.run(
        "pure_inference", f"{spec.input.width}x{spec.input.height}", lambda: _pure_inference(spec, frames, threads)
    )
    results += [pure] if pure else []
    from seg_perception.bench.straightforward import StraightforwardSegmenter

    baseline: StraightforwardSegmenter | None = None
    try:
        baseline = StraightforwardSegmenter(spec, threads)
    except BaselineUnsupportedError as exc:
        LOG.warning("bench: straightforward baseline skipped: %s", exc)
        phases.skipped.append({"phase": "straightforward", "reason": str(exc)})
    with Segmenter(spec, backend="onnxruntime", threads=threads) as seg:
        for width, height in sizes:
            size = f"{width}x{height}"
            frames_rgb = [generate_scene(s, width, height).image for s in range(4)]
            payloads = [f.tobytes() for f in frames_rgb]
            for name in ("pipeline", "pipeline_overlay"):
                row = phases.run(name, size, partial(_pipeline, seg, name, (width, height), payloads, frames))
                results += [row] if row else []
            row = phases.run("health_checks", size, partial(_health_checks, seg, frames_rgb, frames))
            results += [row] if row else []
            if baseline is None:
                continue
            row = phases.run(
                "straightforward", size, partial(_straightforward, baseline, payloads[0], width, height, frames)
            )
            results += [row] if row else []
            share = phases.run("label_agreement_straightforward", size, partial(_agreement, seg, baseline, frames_rgb))
            if share is not None:
                agreement[size] = share
        interleaved = None
        if summary_size is not None:
            frames_rgb = [generate_scene(s, *summary_size).image for s in range(4)]
            pipeline = _pipeline_runner(seg, summary_size, [f.tobytes() for f in frames_rgb])
            size = f"{summary_size[0]}x{summary_size[1]}"

            def compare() -> dict[str, Any]:
                pure, _ = _pure_runner(spec, threads)
                return _interleaved(pure, pipeline, max(2, frames // INTERLEAVED_ROUNDS))

            interleaved = phases.run("interleaved_pure_vs_pipeline", size, compare)
    return results, agreement, interleaved


def _batch_row(seg: Segmenter, images: list[np.ndarray], frames: int) -> dict[str, Any]:
    n = len(images)
    batched = _time(lambda: seg.segment_batch(images), frames)
    single = _time(lambda: [seg.segment(f) for f in images], frames)
    together = [r.labels.copy() for r in seg.segment_batch(images)]
    one_by_one = [seg.segment(f).labels.copy() for f in images]
    height, width = images[0].shape[:2]
    return {
        "name": "multi_camera",
        "cameras": n,
        "size": f"{width}x{height}",
        "unit": "ms",
        "batched_median": float(np.median(batched)),
        "single_median": float(np.median(single)),
        "throughput_ratio": float(np.median(single) / np.median(batched)),
        "batched_fps": n * 1e3 / float(np.median(batched)),
        "labels_match_single": all(np.array_equal(a, b) for a, b in zip(together, one_by_one, strict=True)),
        "repeats": frames,
    }


def measure_batching(
    spec: ModelSpec, frames: int, threads: int, phases: Phases, size: tuple[int, int] = BATCHING_SIZE
) -> list[dict[str, Any]]:
    """Multi-camera: one batched call over N cameras' frames vs N single-frame calls, same backend."""
    from seg_perception.pipeline import Segmenter
    from seg_perception.synthetic.scenes import generate_scene

    width, height = size
    images = [generate_scene(100 + i, width, height).image for i in range(4)]
    out = []
    with Segmenter(spec, backend="onnxruntime", threads=threads) as seg:
        for n in (1, 2, 4):
            row = phases.run(f"multi_camera_{n}", f"{width}x{height}", partial(_batch_row, seg, images[:n], frames))
            out += [row] if row else []
    return out


def run_bench(
    spec_path: Path | None,
    sizes: list[tuple[int, int]],
    frames: int,
    node_seconds: float,
    threads: int,
    summary_size: tuple[int, int] = SUMMARY_SIZE,
    batching_size: tuple[int, int] = BATCHING_SIZE,
) -> dict[str, Any]:
    """Every measurement; the ones that failed are listed under "failures", skipped ones under "skipped"."""
    from seg_perception.bench.camera_sizes import plan_sizes
    from seg_perception.core.errors import ModelSpecError
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec

    spec = load_model_spec(spec_path or default_spec_path())
    phases = Phases()
    requested = [*sizes, *([summary_size] if summary_size not in sizes else [])]
    plan = plan_sizes(spec, sizes, summary_size, batching_size)
    for change in plan.substitutions:
        LOG.warning("bench: camera size %s benched as %s: %s", change["requested"], change["benched"], change["reason"])
    for refusal in plan.refused:
        LOG.warning("bench: camera size %s refused: %s", refusal["requested"], refusal["reason"])
        phases.skipped.append({"phase": f"camera size {refusal['requested']}", "reason": refusal["reason"]})
    for fallback in plan.fallbacks:
        LOG.warning(
            "bench: %s %s refused; using the first benched size %s",
            fallback["option"],
            fallback["requested"],
            fallback["benched"],
        )
    sizes = plan.sizes
    if plan.summary_size is None or plan.batching_size is None or not sizes:
        raise ModelSpecError(
            "no camera size the model's graph accepts: "
            + "; ".join(f"{r['requested']}: {r['reason']}" for r in plan.refused)
        )
    summary_size, batching_size = plan.summary_size, plan.batching_size
    if summary_size not in sizes:
        sizes = [*sizes, summary_size]
    load = [os.getloadavg()[0]]
    measurements, agreement, interleaved = measure_offline(spec, sizes, frames, threads, phases, summary_size)
    load.append(os.getloadavg()[0])
    batching = measure_batching(spec, max(3, frames // 4), threads, phases, batching_size)
    size = f"{summary_size[0]}x{summary_size[1]}"
    message_path = phases.run("message_path", size, partial(measure_message_path, summary_size, frames))
    node = measure_node(spec_path, node_seconds, threads, summary_size) if node_seconds > 0 else {}
    for phase, figures in node.items():
        phases.ran += 1
        if "error" in figures:
            phases.fail(f"node_{phase}", f"{summary_size[0]}x{summary_size[1]}", figures["error"])
    load.append(os.getloadavg()[0])
    noise = noise_reasons(interleaved, tuple(load), os.cpu_count())
    for reason in noise:
        LOG.warning("bench: noisy run: %s", reason)
    return {
        "schema_version": SCHEMA_VERSION,
        "machine": machine(),
        "model": spec.name,
        "backend": "onnxruntime",
        "settings": {
            "frames": frames,
            "node_seconds": node_seconds,
            "threads": threads,
            "sizes": [f"{w}x{h}" for w, h in sizes],
            "summary_size": f"{summary_size[0]}x{summary_size[1]}",
            "batching_size": f"{batching_size[0]}x{batching_size[1]}",
            "sizes_requested": [f"{w}x{h}" for w, h in requested],
            "size_substitutions": plan.substitutions,
            "size_fallbacks": plan.fallbacks,
        },
        "label_agreement_straightforward": agreement,
        "measurements": measurements,
        "multi_camera": batching,
        "message_path": message_path,
        "node": node,
        "interleaved": interleaved,
        "conditions": {"load_average_1min": load, "cores": os.cpu_count()},
        "summary": summarise(measurements, node, summary_size, interleaved, noise),
        "phases_run": phases.ran,
        "failures": phases.failures,
        "skipped": phases.skipped,
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark pure inference, pipeline, baseline and the node over DDS (JSON)")
    p.add_argument("--model", type=Path, default=None, help="model spec (default: the bundled demo model)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG: latency CDF and per-stage bars")
    p.add_argument("--markdown", type=Path, default=None, help="write the README performance section here")
    p.add_argument("--frames", type=number(int, 1), default=100, help="repeats per offline measurement")
    p.add_argument(
        "--sizes",
        type=size_list,
        default=[(640, 480), (1280, 720), (1920, 1080)],
        help="camera sizes, comma-separated WxH",
    )
    p.add_argument(
        "--node-seconds", type=number(float, 0), default=20.0, help="seconds per node phase (0 skips the node)"
    )
    p.add_argument("--threads", type=number(int, 0), default=0, help="inference threads (0: ONNX Runtime default)")
    p.add_argument(
        "--summary-size", type=parse_size, default=SUMMARY_SIZE, help="camera WxH of the summary and node phases"
    )
    p.add_argument(
        "--batching-size", type=parse_size, default=BATCHING_SIZE, help="camera WxH of the multi-camera figures"
    )
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    report = run_bench(
        args.model, args.sizes, args.frames, args.node_seconds, args.threads, args.summary_size, args.batching_size
    )
    writers: list[tuple[Path | None, Callable[[Path], object]]] = [
        (args.json, lambda p: p.write_text(json.dumps(report, indent=2) + "\n")),
        (args.plot, lambda p: plot(report, p)),
        (args.markdown, lambda p: p.write_text(markdown(report))),
    ]
    for path, write in writers:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, write)  # keeps the suffix, which picks matplotlib's format
    LOG.info("%s", json.dumps(report["summary"], indent=2))
    for skipped in report["skipped"]:
        LOG.warning("bench: %s skipped: %s", skipped["phase"], skipped["reason"])
    if report["failures"]:
        LOG.error(
            'bench: %d of %d measurements failed (listed under "failures" in the report): %s',
            len(report["failures"]),
            report["phases_run"],
            "; ".join(f"{f['phase']} {f['size']}: {f['error']}" for f in report["failures"]),
        )
        return 1
    return 0

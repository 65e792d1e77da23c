"""`seg-perception bench`: pure inference, the fused pipeline, a straightforward baseline and the node
over DDS, measured side by side in one run; JSON in a stable schema and a PNG plot.

Schema (schema_version 1):
  {"schema_version": 1, "machine": {...}, "model": str, "backend": str, "settings": {...},
   "measurements": [{"name": str, "size": "WxH", "unit": "ms", "median": float, "p10": float,
                     "p90": float, "repeats": int, "stages_ms": {stage: median}?, ...}],
   "multi_camera": [{"cameras": N, "batched_median", "single_median", "throughput_ratio", "batched_fps"}],
   "node": {"30hz": {...}, "overload": {...}},
   "summary": {"size": "1280x720", "pure_ms", "pipeline_ms", "pipeline_overlay_ms", "straightforward_ms",
               "speedup_vs_straightforward", "node_p50_ms", "node_p99_ms", "overload_p99_ms",
               "dropped_overload", "rss_growth_mb", "targets": {name: bool}}}
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bench.bench_report import markdown, plot, summarise
from seg_perception.bench.node_bench import measure_node
from seg_perception.cli_args import parse_size

LOG = logging.getLogger("seg_perception.bench")
SCHEMA_VERSION = 1
SUMMARY_SIZE = (1280, 720)


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


def measure_offline(
    spec_path: Path | None, sizes: list[tuple[int, int]], frames: int, threads: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Pure inference, pipeline (with and without overlay) and the straightforward baseline."""
    import onnxruntime as ort

    from seg_perception.bench.straightforward import StraightforwardSegmenter
    from seg_perception.core import image_codec
    from seg_perception.core.model_spec import default_spec_path, load_model_spec
    from seg_perception.core.scenes import generate_scene
    from seg_perception.pipeline import OutputSelection, Segmenter

    spec = load_model_spec(spec_path or default_spec_path())
    inp = spec.input
    results: list[dict[str, Any]] = []
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    bare = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
    shape = (1, 3, inp.height, inp.width) if inp.layout == "NCHW" else (1, inp.height, inp.width, 3)
    tensor = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    pure = _time(lambda: bare.run(None, {inp.name: tensor}), frames)
    results.append({"name": "pure_inference", "size": f"{inp.width}x{inp.height}", "unit": "ms", **_stats(pure)})

    baseline = StraightforwardSegmenter(spec, threads)
    info: dict[str, Any] = {"model": spec.name, "agreement": {}}
    with Segmenter(spec, backend="onnxruntime", threads=threads) as seg:
        for width, height in sizes:
            frames_rgb = [generate_scene(s, width, height).image for s in range(4)]
            payloads = [f.tobytes() for f in frames_rgb]
            size = f"{width}x{height}"
            for name, want in (
                ("pipeline", OutputSelection(drivable=True)),
                ("pipeline_overlay", OutputSelection(drivable=True, overlay=True)),
            ):
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
                results.append(
                    {
                        "name": name,
                        "size": size,
                        "unit": "ms",
                        **_stats(samples),
                        "stages_ms": {k: float(np.median(v)) for k, v in stages.items()},
                    }
                )
            payload, w, h = payloads[0], width, height
            straight = _time(lambda: baseline.segment(payload, w, h), frames)  # noqa: B023 - used immediately
            results.append({"name": "straightforward", "size": size, "unit": "ms", **_stats(straight)})
            agree = [
                float((baseline.segment(p, width, height)[0] == seg.segment(f, "RGB").labels).mean())
                for p, f in zip(payloads, frames_rgb, strict=True)
            ]
            info["agreement"][size] = float(np.mean(agree))
    return results, info


def measure_batching(
    spec_path: Path | None, frames: int, threads: int, size: tuple[int, int] = (640, 360)
) -> list[dict[str, Any]]:
    """Multi-camera: one batched call over N cameras' frames vs N single-frame calls, same backend."""
    from seg_perception.core.model_spec import default_spec_path, load_model_spec
    from seg_perception.core.scenes import generate_scene
    from seg_perception.pipeline import Segmenter

    spec = load_model_spec(spec_path or default_spec_path())
    width, height = size
    images = [generate_scene(100 + i, width, height).image for i in range(4)]
    out = []
    with Segmenter(spec, backend="onnxruntime", threads=threads) as seg:
        for n in (1, 2, 4):
            batch = images[:n]
            batched = _time(lambda b=batch: seg.segment_batch(b), frames)  # type: ignore[misc]
            single = _time(lambda b=batch: [seg.segment(f) for f in b], frames)  # type: ignore[misc]
            out.append(
                {
                    "name": "multi_camera",
                    "cameras": n,
                    "size": f"{width}x{height}",
                    "unit": "ms",
                    "batched_median": float(np.median(batched)),
                    "single_median": float(np.median(single)),
                    "throughput_ratio": float(np.median(single) / np.median(batched)),
                    "batched_fps": n * 1e3 / float(np.median(batched)),
                    "repeats": frames,
                }
            )
    return out


def run_bench(
    spec_path: Path | None, sizes: list[tuple[int, int]], frames: int, node_seconds: float, threads: int
) -> dict[str, Any]:
    if SUMMARY_SIZE not in sizes:
        sizes = [*sizes, SUMMARY_SIZE]
    measurements, info = measure_offline(spec_path, sizes, frames, threads)
    batching = measure_batching(spec_path, max(3, frames // 4), threads)
    node = measure_node(spec_path, node_seconds, threads) if node_seconds > 0 else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "machine": machine(),
        "model": info["model"],
        "backend": "onnxruntime",
        "settings": {
            "frames": frames,
            "node_seconds": node_seconds,
            "threads": threads,
            "sizes": [f"{w}x{h}" for w, h in sizes],
        },
        "label_agreement_straightforward": info["agreement"],
        "measurements": measurements,
        "multi_camera": batching,
        "node": node,
        "summary": summarise(measurements, node),
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark pure inference, pipeline, baseline and the node over DDS (JSON)")
    p.add_argument("--model", type=Path, default=None, help="model spec (default: the bundled demo model)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG: latency CDF and per-stage bars")
    p.add_argument("--markdown", type=Path, default=None, help="write the README performance section here")
    p.add_argument("--frames", type=int, default=100, help="repeats per offline measurement")
    p.add_argument("--sizes", default="640x480,1280x720,1920x1080", help="camera sizes, comma-separated WxH")
    p.add_argument("--node-seconds", type=float, default=20.0, help="seconds per node phase (0 skips the node)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: ONNX Runtime default)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    report = run_bench(args.model, sizes, args.frames, args.node_seconds, args.threads)  # type: ignore[arg-type]
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(report, args.plot)
    if args.markdown:
        args.markdown.write_text(markdown(report))
    LOG.info("%s", json.dumps(report["summary"], indent=2))
    return 0

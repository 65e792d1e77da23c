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
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.cli_args import parse_size
from seg_perception.ros.domain_ids import reserve_domain_id

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


def measure_node(spec_path: Path | None, seconds: float, threads: int) -> dict[str, Any]:
    """The node in its own process: 30 Hz, then twice the rate it sustained; latency = arrival - stamp."""
    from seg_perception.bench.process_stats import sample
    from seg_perception.ros.drive_player import DrivePlayer
    from seg_perception.ros.node_process import NodeProcess, apply_to_this_process

    width, height = SUMMARY_SIZE
    domain_id = reserve_domain_id()
    apply_to_this_process(domain_id)
    params: dict[str, Any] = {
        "backend": "onnxruntime",
        "threads": threads,
        "publish_overlay": False,
        "publish_color_mask": False,
        "publish_confidence": False,
    }
    if spec_path:
        params["model"] = str(spec_path)
    node = NodeProcess(domain_id, params)
    out: dict[str, Any] = {}
    try:
        for phase in ("30hz", "overload"):
            # Camera and recorder are separate processes (as in a car), each with its own interpreter.
            player = DrivePlayer(domain_id, "/camera", ("labels", "drivable_mask"))
            try:
                rate = 30.0 if phase == "30hz" else max(2.0 * out["30hz"]["output_fps"], 10.0)
                count = int(seconds * rate)
                camera = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "seg_perception.bench.frame_publisher",
                        "--domain",
                        str(domain_id),
                        "--rate",
                        str(rate),
                        "--count",
                        str(count),
                        "--size",
                        f"{width}x{height}",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                # Resource figures start after the first second of answers: the first frames allocate
                # ONNX Runtime arenas and DDS buffers once, which is not growth.
                # (A very short run may finish first; its failure, if any, is reported below.)
                deadline = time.monotonic() + 120
                while player.answered() < min(int(rate), count - 1) and time.monotonic() < deadline:
                    if camera.poll() is not None:
                        break
                    time.sleep(0.01)
                before, t0 = sample(node.proc.pid), time.monotonic()
                stdout, stderr = camera.communicate(timeout=seconds * 3 + 120)
                if camera.returncode != 0:
                    raise RuntimeError(f"the camera process failed: {stderr}")
                player.settle(quiet_s=0.5)
                wall = time.monotonic() - t0
                after = sample(node.proc.pid)
                count = int(json.loads(stdout.strip().splitlines()[-1])["sent"])
            finally:
                player.close()
            lat = player.log.latencies_ms("labels")
            answered = player.log.outputs["labels"]
            span = (answered[-1].arrived_ns - answered[0].arrived_ns) / 1e9 if len(answered) > 1 else 0.0
            quarters = [float(np.median(q)) for q in np.array_split(lat, 4)] if len(lat) >= 4 else []
            out[phase] = {
                "rate_hz": rate,
                "seconds": seconds,
                "sent": count,
                "answered": len(lat),
                "dropped": count - len(lat),
                "latency_ms": {
                    "p50": float(np.percentile(lat, 50)),
                    "p95": float(np.percentile(lat, 95)),
                    "p99": float(np.percentile(lat, 99)),
                    "max": float(lat.max()),
                },
                # A backlog would make latency climb quarter after quarter. The first quarter starts from
                # an empty buffer, so the trend is last quarter minus second quarter.
                "latency_quarter_medians_ms": quarters,
                "latency_trend_ms": quarters[3] - quarters[1] if quarters else 0.0,
                "output_fps": (len(answered) - 1) / span if span > 0 else 0.0,
                "cpu_percent": 100.0 * (after.cpu_s - before.cpu_s) / wall,
                "rss_mb_start": before.rss_mb,
                "rss_mb_end": after.rss_mb,
                "latencies_ms": [round(float(v), 3) for v in lat],
            }
    finally:
        node.stop()
    return out


def summarise(measurements: list[dict[str, Any]], node: dict[str, Any]) -> dict[str, Any]:
    size = f"{SUMMARY_SIZE[0]}x{SUMMARY_SIZE[1]}"

    def median(name: str, at: str | None = size) -> float:
        return next(m["median"] for m in measurements if m["name"] == name and (at is None or m["size"] == at))

    pure = median("pure_inference", None)
    pipeline, straight = median("pipeline"), median("straightforward")
    s: dict[str, Any] = {
        "size": size,
        "pure_ms": pure,
        "pipeline_ms": pipeline,
        "pipeline_overlay_ms": median("pipeline_overlay"),
        "straightforward_ms": straight,
        "speedup_vs_straightforward": straight / pipeline,
    }
    if node:
        n30, over = node["30hz"], node["overload"]
        s.update(
            node_p50_ms=n30["latency_ms"]["p50"],
            node_p99_ms=n30["latency_ms"]["p99"],
            overload_p99_ms=over["latency_ms"]["p99"],
            dropped_overload=over["dropped"],
            rss_growth_mb=over["rss_mb_end"] - n30["rss_mb_start"],
        )
    targets = {
        "pipeline_le_1.15x_pure_plus_2ms": pipeline <= 1.15 * pure + 2.0,
        "straightforward_over_pipeline_ge_1.5": straight / pipeline >= 1.5,
    }
    if node:
        targets.update(
            {
                "node_p50_le_pipeline_plus_3ms": s["node_p50_ms"] <= pipeline + 3.0,
                "overload_p99_le_2.5x_p50": s["overload_p99_ms"] <= 2.5 * s["node_p50_ms"],
                "overload_no_upward_trend": node["overload"]["latency_trend_ms"]
                <= 0.1 * node["overload"]["latency_ms"]["p50"],
                "rss_growth_lt_10mb": s["rss_growth_mb"] < 10.0,
            }
        )
    s["targets"] = targets
    return s


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for phase, data in report.get("node", {}).items():
        lat = np.sort(np.asarray(data["latencies_ms"]))
        if len(lat):
            ax1.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=f"{phase} ({data['rate_hz']:.0f} Hz)")
    ax1.set_xlabel("end-to-end latency (ms)")
    ax1.set_ylabel("fraction of frames")
    ax1.set_title("Node over DDS, 1280x720")
    ax1.grid(alpha=0.3)
    ax1.legend()
    rows = [m for m in report["measurements"] if m["name"].startswith("pipeline")]
    labels = [f"{m['name'].replace('pipeline', 'pipe')}\n{m['size']}" for m in rows]
    bottom = np.zeros(len(rows))
    for stage in ("decode", "prepare", "inference", "postprocess"):
        vals = np.array([m["stages_ms"].get(stage, 0.0) for m in rows])
        ax2.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    straight = [m for m in report["measurements"] if m["name"] == "straightforward"]
    ax2.scatter(
        [f"pipe\n{m['size']}" for m in straight],
        [m["median"] for m in straight],
        color="k",
        marker="x",
        zorder=3,
        label="straightforward",
    )
    ax2.set_ylabel("median ms per frame")
    ax2.set_title("Per-stage time (pure inference %.1f ms)" % report["summary"]["pure_ms"])  # noqa: UP031
    ax2.tick_params(axis="x", labelsize=7)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def markdown(report: dict[str, Any]) -> str:
    """The README's performance section, generated from one report."""
    m, s = report["machine"], report["summary"]
    lines = [
        f"Measured by `seg-perception bench` on {m['cpu']} ({m['cores']} cores, no GPU), ONNX Runtime "
        f"{m['onnxruntime']}, model `{report['model']}`, {report['settings']['frames']} repeats per offline "
        f"measurement (medians; p10–p90 in brackets), node phases of {report['settings']['node_seconds']:.0f} s.",
        "",
        "| camera size | pipeline (labels + drivable) | + overlay | straightforward | speed-up |",
        "|---|---|---|---|---|",
    ]
    by = {(x["name"], x["size"]): x for x in report["measurements"]}
    for size in report["settings"]["sizes"]:
        pipe, over, base = by[("pipeline", size)], by[("pipeline_overlay", size)], by[("straightforward", size)]
        lines.append(
            f"| {size} | {pipe['median']:.1f} ms ({pipe['p10']:.1f}–{pipe['p90']:.1f}) | {over['median']:.1f} ms "
            f"| {base['median']:.1f} ms | {base['median'] / pipe['median']:.2f}× |"
        )
    pure = next(x for x in report["measurements"] if x["name"] == "pure_inference")
    lines += ["", f"Pure inference (the model alone on a ready tensor, {pure['size']}): {pure['median']:.1f} ms.", ""]
    if report.get("node"):
        n30, over = report["node"]["30hz"], report["node"]["overload"]
        lines += [
            "| node over DDS, 1280x720 | rate in | answered | dropped | p50 | p95 | p99 | max | out fps | CPU | RSS |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, d in (("camera rate", n30), ("overload", over)):
            lat = d["latency_ms"]
            lines.append(
                f"| {name} | {d['rate_hz']:.0f} Hz | {d['answered']} | {d['dropped']} | {lat['p50']:.1f} ms | "
                f"{lat['p95']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | {d['output_fps']:.1f} | "
                f"{d['cpu_percent']:.0f} % | {d['rss_mb_start']:.0f}→{d['rss_mb_end']:.0f} MB |"
            )
        lines.append("")
    if report.get("multi_camera"):
        ratios = ", ".join(f"{x['cameras']} cameras {x['throughput_ratio']:.2f}×" for x in report["multi_camera"])
        lines += [
            f"Multi-camera batching ({report['multi_camera'][0]['size']}), throughput of one batched call "
            f"over N single-frame calls: {ratios}.",
            "",
        ]
    lines += ["| target (1280x720) | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in s["targets"].items()]
    return "\n".join(lines) + "\n"


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

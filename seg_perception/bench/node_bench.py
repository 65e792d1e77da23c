"""The node over DDS in its own process, fed by a camera process and answered to a recorder (bench)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.ros.domain_ids import reserve_domain_id

SUMMARY_SIZE = (1280, 720)


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

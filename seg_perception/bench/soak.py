"""Soak: push many frames through the real node over DDS and report resource growth as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seg_perception.bench.process_stats import sample
from seg_perception.cli_args import number, synthetic_size
from seg_perception.core.scenes import generate_scene
from seg_perception.ros.domain_ids import reserve_domain_id

LOG = logging.getLogger("seg_perception.soak")


def run_soak(frames: int, width: int, height: int, warmup: int, model: str | None) -> dict[str, object]:
    """Closed loop (each frame waits for its answer, at most 1 s) so every frame goes through the node."""
    from seg_perception.ros.drive_player import DrivePlayer
    from seg_perception.ros.node_process import NodeProcess, apply_to_this_process

    domain_id = reserve_domain_id()
    apply_to_this_process(domain_id)
    params: dict[str, object] = {"backend": "onnxruntime", "qos_depth": 1}
    if model:
        params["model"] = model
    node = NodeProcess(domain_id, params)
    player = DrivePlayer(domain_id, "/camera", ("labels", "drivable_mask"))
    scenes = [generate_scene(seed, width, height).image for seed in range(8)]
    timeouts = 0
    try:
        if not player.wait_for_node(timeout=60):
            raise RuntimeError(f"the node did not come up:\n{node.output}")
        start_sample = None
        start = time.monotonic()
        for i in tqdm(range(warmup + frames), desc="soak", unit="frame"):
            if i == warmup:
                start_sample, start = sample(node.proc.pid), time.monotonic()
            before = player.answered()
            player.publish(scenes[i % len(scenes)])
            deadline = time.monotonic() + 1.0
            while player.answered() == before and time.monotonic() < deadline:
                time.sleep(0.0005)
            timeouts += int(player.answered() == before)
        elapsed = time.monotonic() - start
        player.settle(quiet_s=0.5)
        end_sample = sample(node.proc.pid)
        alive = node.proc.poll() is None
    finally:
        player.close()
        took = node.stop()
    if start_sample is None:
        raise RuntimeError("no frames were sent")
    latency = player.log.latencies_ms("labels")[warmup:]
    return {
        "frames": frames,
        "warmup_frames": warmup,
        "frame_size": [width, height],
        "answered": player.answered() - warmup,
        "unanswered_within_1s": timeouts,
        "frames_per_s": frames / elapsed,
        "latency_ms": {
            "p50": float(np.percentile(latency, 50)),
            "p99": float(np.percentile(latency, 99)),
            "max": float(latency.max()),
        }
        if len(latency)
        else {},
        "node_alive_at_end": alive,
        "shutdown_s": took,
        "exit_code": node.proc.returncode,
        "start": start_sample.as_dict(),
        "end": end_sample.as_dict(),
        "rss_growth_mb": end_sample.rss_mb - start_sample.rss_mb,
        "thread_growth": end_sample.threads - start_sample.threads,
        "fd_growth": end_sample.open_fds - start_sample.open_fds,
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="push N frames through the node over DDS; report RSS/thread/fd growth (JSON)")
    p.add_argument("--frames", type=number(int, 1), default=20_000, help="frames measured, at least 1")
    p.add_argument("--warmup", type=number(int, 0), default=500, help="frames before the start sample")
    p.add_argument("--size", type=synthetic_size, default=(320, 180), help="camera WIDTHxHEIGHT")
    p.add_argument("--model", default=None, help="model spec (default: the bundled demo model)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    width, height = args.size
    result = run_soak(args.frames, width, height, args.warmup, args.model)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    LOG.info("%s", text)
    ok = result["node_alive_at_end"] and result["exit_code"] == 0
    return 0 if ok else 1

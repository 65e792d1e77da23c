"""Soak: push many frames through the real node over DDS and report resource growth as JSON.

Closed loop: each frame waits for the answer to its own stamp (at most --answer-timeout), so every
frame goes through the node. The node's RSS, threads and open descriptors are sampled about
TRACE_SAMPLES times through the run, warm-up included, and once after the last answer.

JSON: {"frames", "warmup_frames", "frame_size": [W, H], "answered" (answers to measured frames),
 "answer_timeout_s", "unanswered_within_timeout", "warmup_unanswered_within_timeout", "frames_per_s",
 "latency_ms": {"p50", "p99", "max"}, "node_alive_at_end", "shutdown_s", "exit_code",
 "start", "end": {"rss_mb", "threads", "open_fds", "cpu_s"} (at the first measured frame; after the
 last answer), "rss": memory_figures.rss_figures over the trace (start, after warm-up, end, peak,
 rise, steady slope per minute, growth, one-time step, verdict), "rss_rise_mb" (end - start),
 "rss_growth_mb" (steady growth: the < 5 MB target), "rss_one_time_mb" (the rest of the rise),
 "threads", "open_fds": {"start", "end", "min", "max"} over the measured frames, "thread_growth",
 "fd_growth" (end - start), "targets": {"rss_growth_lt_5mb", "threads_flat", "open_fds_flat"} (flat:
 min == max), "trace": {"columns": ["frame", "t_s", "rss_mb", "threads", "open_fds"], "rows"},
 "at_start": {"thread_names", "fd_targets"}, "count_changes": [{"frame", "threads", "open_fds",
 "thread_names", "fd_targets"}] (the first MAX_NOTED_CHANGES samples where a count differed from the
 start: what moved)}
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from seg_perception.bench.memory_figures import count_figures, rss_figures
from seg_perception.bench.process_stats import ProcessSample, open_fd_targets, sample, thread_names
from seg_perception.cli_args import number, synthetic_size
from seg_perception.core.atomic_files import write_command_output
from seg_perception.ros.domain_ids import reserve_domain_id
from seg_perception.synthetic.scenes import generate_scene

if TYPE_CHECKING:
    from seg_perception.ros.drive_player import DrivePlayer

LOG = logging.getLogger("seg_perception.soak")
RSS_TARGET_MB = 5.0
MAX_NOTED_CHANGES = 20
TRACE_SAMPLES = 1000  # resource samples over the run (warm-up included), evenly spaced by frame


def _answered(player: DrivePlayer, stamp: int) -> bool:
    """Whether the answer to the frame stamped `stamp` has arrived (it is among the newest few)."""
    return any(r.stamp_ns == stamp for r in player.received("labels", last=4))


def run_soak(
    frames: int, width: int, height: int, warmup: int, model: str | None, answer_timeout_s: float = 1.0
) -> dict[str, object]:
    """Closed loop (each frame waits for its own answer, at most `answer_timeout_s`) so every frame goes
    through the node. Warm-up frames (compiling the graph, first allocations) count in no figure."""
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
    timeouts = warmup_timeouts = 0
    every = max(1, (warmup + frames) // TRACE_SAMPLES)
    trace: list[tuple[int, float, ProcessSample]] = []
    changes: list[dict[str, Any]] = []
    start_names: dict[str, list[str]] = {}
    try:
        if not player.wait_for_node(timeout=60):
            raise RuntimeError(f"the node did not come up:\n{node.output}")
        start_sample = None
        t0 = start = time.monotonic()
        for i in tqdm(range(warmup + frames), desc="soak", unit="frame"):
            if i == warmup:
                start_sample, start = sample(node.proc.pid), time.monotonic()
                trace.append((i, start - t0, start_sample))
                start_names = {
                    "thread_names": thread_names(node.proc.pid),
                    "fd_targets": open_fd_targets(node.proc.pid),
                }
            elif i % every == 0:
                trace.append((i, time.monotonic() - t0, sample(node.proc.pid)))
                if start_sample is not None:
                    note_count_change(changes, i, node.proc.pid, trace[-1][2], start_sample)
            stamp = player.publish(scenes[i % len(scenes)])
            deadline = time.monotonic() + answer_timeout_s
            while not _answered(player, stamp) and time.monotonic() < deadline:
                time.sleep(0.0005)
            missed = not _answered(player, stamp)
            if i < warmup:
                warmup_timeouts += missed
            else:
                timeouts += missed
        elapsed = time.monotonic() - start
        player.settle(quiet_s=0.5)
        end_sample = sample(node.proc.pid)
        trace.append((warmup + frames, time.monotonic() - t0, end_sample))
        alive = node.proc.poll() is None
    finally:
        player.close()
        took = node.stop()
    if start_sample is None:
        raise RuntimeError("no frames were sent")
    if player.errors:  # the recorder thread died: the answers it missed would read as the node's drops
        raise RuntimeError("; ".join(player.errors))
    measured = set(player.log.sent_stamps[warmup:])
    answers = [r for r in player.log.outputs["labels"] if r.stamp_ns in measured]
    latency = np.array([(r.arrived_ns - r.stamp_ns) / 1e6 for r in answers], np.float64)
    return {
        "frames": frames,
        "warmup_frames": warmup,
        "frame_size": [width, height],
        "answered": len(answers),
        "answer_timeout_s": answer_timeout_s,
        "unanswered_within_timeout": timeouts,
        "warmup_unanswered_within_timeout": warmup_timeouts,
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
        **resource_figures(trace, start - t0, start + elapsed - t0),
        "at_start": start_names,
        "count_changes": changes,
    }


def note_count_change(
    changes: list[dict[str, Any]], frame: int, pid: int, now: ProcessSample, start: ProcessSample
) -> None:
    """When threads or descriptors differ from the measured start, say which (the first few times), so
    a count that is not flat names its cause."""
    if len(changes) >= MAX_NOTED_CHANGES or (now.threads, now.open_fds) == (start.threads, start.open_fds):
        return
    changes.append(
        {
            "frame": frame,
            "threads": now.threads,
            "open_fds": now.open_fds,
            "thread_names": thread_names(pid),
            "fd_targets": open_fd_targets(pid),
        }
    )


def resource_figures(
    trace: list[tuple[int, float, ProcessSample]], steady_from_s: float, steady_until_s: float
) -> dict[str, Any]:
    """RSS, thread and descriptor figures of the trace (frame, seconds, sample), warm-up included; the
    measured span runs from `steady_from_s` to `steady_until_s` (the last frame answered). Growth and
    one-time step as memory_figures defines them."""
    times = [t for _, t, _ in trace]
    rss = rss_figures(times, [s.rss_mb for _, _, s in trace], steady_from_s, RSS_TARGET_MB, steady_until_s)
    measured = [s for _, t, s in trace if t >= steady_from_s]
    threads = count_figures([s.threads for s in measured])
    fds = count_figures([s.open_fds for s in measured])
    return {
        "rss": rss,
        "rss_rise_mb": rss["rise_mb"],
        "rss_growth_mb": rss["growth_mb"],
        "rss_one_time_mb": rss["one_time_mb"],
        "threads": threads,
        "open_fds": fds,
        "thread_growth": threads["end"] - threads["start"],
        "fd_growth": fds["end"] - fds["start"],
        "targets": {
            f"rss_growth_lt_{RSS_TARGET_MB:g}mb": rss["growth_mb"] < RSS_TARGET_MB,
            "threads_flat": threads["min"] == threads["max"],
            "open_fds_flat": fds["min"] == fds["max"],
        },
        "trace": {
            "columns": ["frame", "t_s", "rss_mb", "threads", "open_fds"],
            "rows": [[i, round(t, 3), round(s.rss_mb, 3), s.threads, s.open_fds] for i, t, s in trace],
        },
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="push N frames through the node over DDS; report RSS/thread/fd growth (JSON)")
    p.add_argument("--frames", type=number(int, 1), default=20_000, help="frames measured, at least 1")
    p.add_argument("--warmup", type=number(int, 0), default=500, help="frames before the start sample")
    p.add_argument("--size", type=synthetic_size, default=(320, 180), help="camera WIDTHxHEIGHT")
    p.add_argument("--model", default=None, help="model spec (default: the bundled demo model)")
    p.add_argument(
        "--json", type=Path, default=None, help="write every figure and the trace here as JSON (stdout gets a summary)"
    )
    p.add_argument(
        "--answer-timeout", type=float, default=1.0, help="seconds each frame waits for its answer (closed loop)"
    )
    p.set_defaults(func=_cmd)


def soak_summary(result: dict[str, Any]) -> str:
    """The soak's figures for a reader (stdout); --json has every figure and the trace."""
    lat, rss, targets = result["latency_ms"], result["rss"], result["targets"]
    width, height = result["frame_size"]

    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    threads, fds = result["threads"], result["open_fds"]
    return (
        f"soak: {result['answered']} of {result['frames']} frames answered ({width}x{height}, "
        f"{result['warmup_frames']} warm-up frames before), {result['frames_per_s']:.1f} frames/s, "
        f"latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms\n"
        f"  RSS {result['start']['rss_mb']:.1f} -> {result['end']['rss_mb']:.1f} MB: steady growth "
        f"{result['rss_growth_mb']:.2f} MB (target < 5 MB: {met(targets['rss_growth_lt_5mb'])}), one-time "
        f"{result['rss_one_time_mb']:.2f} MB, verdict {rss['verdict']}\n"
        f"  threads {threads['start']} -> {threads['end']} (min {threads['min']}, max {threads['max']}; flat: "
        f"{met(targets['threads_flat'])}), open fds {fds['start']} -> {fds['end']} (min {fds['min']}, max "
        f"{fds['max']}; flat: {met(targets['open_fds_flat'])})\n"
        f"  node {'alive' if result['node_alive_at_end'] else 'DEAD'} at the end, exit code {result['exit_code']} "
        f"after {result['shutdown_s']:.2f} s of shutdown\n"
    )


def _cmd(args: argparse.Namespace) -> int:
    width, height = args.size
    result = run_soak(args.frames, width, height, args.warmup, args.model, args.answer_timeout)
    if args.json:
        write_command_output(args.json, json.dumps(result, indent=2) + "\n", "--json")
        LOG.info("wrote %s (every figure and the RSS/thread/fd trace)", args.json)
    sys.stdout.write(soak_summary(result))  # the command's answer; logs stay on stderr
    ok = result["node_alive_at_end"] and result["exit_code"] == 0
    return 0 if ok else 1

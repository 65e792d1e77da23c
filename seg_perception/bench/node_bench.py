"""The node over DDS in its own process, fed by a camera process and answered to a recorder (bench).

Each phase: the recorder subscribes; the camera process sends warm-up frames until the recorder has an
answer on every recorded topic (so the camera -> node and node -> recorder links are both matched and
the node computes its outputs), then is told to start, sends exactly `count` frames at the phase's rate
and prints their stamps. Only answers to those stamps count: sent = answered + dropped, exactly. A phase
that fails (no answers, the camera or node gone) is reported with its error; it never raises.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bench.memory_figures import add_phase_memory
from seg_perception.bench.process_stats import ProcessTrace
from seg_perception.ros.domain_ids import reserve_domain_id

TOPICS = ("labels", "drivable_mask")
CAMERA_RATE_HZ = 30.0
MAX_OVERLOAD_HZ = 120.0  # the camera process cannot send large frames much faster; beyond it is no test
HANDSHAKE_TIMEOUT_S = 120.0  # discovery plus compiling the graph, on a loaded machine
LAST_ANSWER_TIMEOUT_S = 30.0
RSS_TOLERANCE_MB = 5.0  # a phase whose RSS rose or grew by this much is called one_time or growth


def overload_rate(sustained_hz: float, camera_hz: float = CAMERA_RATE_HZ) -> float:
    """Twice the rate the node sustained, never below the camera rate, at most MAX_OVERLOAD_HZ."""
    return min(MAX_OVERLOAD_HZ, max(2.0 * sustained_hz, camera_hz))


def _sustained_hz(stamps: list[int], answered: int) -> float:
    """Answers per second of sending, from the camera's send stamps (not from when answers arrived)."""
    if len(stamps) < 2:
        return 0.0
    period_s = (stamps[-1] - stamps[0]) / 1e9 / (len(stamps) - 1)
    return answered / (period_s * len(stamps)) if period_s > 0 else 0.0


def _answers(player: Any, topic: str, stamps: set[int]) -> list[Any]:
    return [r for r in player.received(topic) if r.stamp_ns in stamps]


class StageTimesRecorder:
    """The node's per-frame time points (its segmentation/stage_times debug topic), by input stamp."""

    def __init__(self, player: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from seg_perception.ros.stage_times import STAGE_TIMES_TOPIC

        self.points: dict[int, dict[str, int]] = {}
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        player.subscribe(DiagnosticArray, STAGE_TIMES_TOPIC, self._record, qos)

    def _record(self, msg: Any) -> None:
        from seg_perception.ros.stage_times import points_from_message

        self.points[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = points_from_message(msg)


def stage_budget(points: dict[int, dict[str, int]], answers: list[Any]) -> dict[str, dict[str, float]]:
    """p50 and p95 of each stage over the answered frames whose time points arrived, in ms."""
    from seg_perception.ros.stage_times import stage_durations_ms

    per_stage: dict[str, list[float]] = {}
    for answer in answers:
        found = points.get(answer.stamp_ns)
        if found is None:
            continue
        recorder = {"recorder_dds_ns": answer.dds_received_ns, "recorder_ns": answer.arrived_ns}
        for name, ms in stage_durations_ms(found | recorder).items():
            per_stage.setdefault(name, []).append(ms)
    return {
        name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)), "frames": len(v)}
        for name, v in per_stage.items()
    }


def _camera_command(domain_id: int, rate: float, count: int, size: tuple[int, int]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "seg_perception.bench.frame_publisher",
        *("--domain", str(domain_id), "--rate", str(rate), "--count", str(count)),
        *("--size", f"{size[0]}x{size[1]}", "--wait-for-go"),
    ]


def _handshake(player: Any, camera: subprocess.Popen[str], node: Any) -> None:
    """Until the recorder has an answer on every topic; raises RuntimeError with the reason."""
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
    while not all(player.answered(t) > 0 for t in TOPICS):
        if camera.poll() is not None:
            raise RuntimeError(f"the camera process exited ({camera.returncode}) before the node answered")
        if node.proc.poll() is not None:
            raise RuntimeError(f"the node exited ({node.proc.returncode}): {node.output[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer on every topic to warm-up frames within {HANDSHAKE_TIMEOUT_S:.0f} s")
        time.sleep(0.02)


def run_phase(node: Any, domain_id: int, rate: float, seconds: float, size: tuple[int, int]) -> dict[str, Any]:
    """One phase at `rate`; the figures, or {"error": ...} with whatever counts exist."""
    from seg_perception.bench.process_stats import sample
    from seg_perception.ros.drive_player import DrivePlayer

    count = max(2, int(seconds * rate))
    out: dict[str, Any] = {"rate_hz": rate, "seconds": seconds, "sent": 0, "answered": 0, "dropped": 0}
    player = DrivePlayer(domain_id, "/camera", TOPICS)
    stage_times = StageTimesRecorder(player)
    camera = subprocess.Popen(
        _camera_command(domain_id, rate, count, size),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            _handshake(player, camera, node)
            before, t0 = sample(node.proc.pid), time.monotonic()
            stdout, stderr = camera.communicate("go\n", timeout=seconds * 3 + HANDSHAKE_TIMEOUT_S)
            sent_by = time.monotonic()
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            camera.kill()
            _, stderr = camera.communicate()
            out["error"] = f"{exc}; camera: {stderr.strip()[-500:]}"
            return out
        if camera.returncode != 0:
            out["error"] = f"the camera process failed ({camera.returncode}): {stderr.strip()[-500:]}"
            return out
        stamps = [int(s) for s in json.loads(stdout.strip().splitlines()[-1])["stamps"]]
        measured = set(stamps)
        deadline = time.monotonic() + LAST_ANSWER_TIMEOUT_S  # the newest frame is always processed
        while all(r.stamp_ns != stamps[-1] for r in player.received("labels", last=4)) and time.monotonic() < deadline:
            time.sleep(0.01)
        player.settle(quiet_s=0.5)
        wall = time.monotonic() - t0
        after = sample(node.proc.pid)
    finally:
        player.close()
        if camera.poll() is None:
            camera.kill()
            camera.communicate()
    if player.errors:
        out["error"] = "; ".join(player.errors)
        return out
    answers = _answers(player, "labels", measured)
    lat = np.array([(r.arrived_ns - r.stamp_ns) / 1e6 for r in answers], np.float64)
    out.update(
        sent=len(stamps),
        answered=len(answers),
        dropped=len(stamps) - len(answers),
        answered_by_topic={t: len(_answers(player, t, measured)) for t in TOPICS},
        send_rate_hz=(len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9) if stamps[-1] > stamps[0] else 0.0,
        sustained_hz=_sustained_hz(stamps, len(answers)),
        cpu_percent=100.0 * (after.cpu_s - before.cpu_s) / wall,
        rss_mb_start=before.rss_mb,
        rss_mb_end=after.rss_mb,
        measured_monotonic_s=[t0, sent_by],  # sending began and ended, for the "rss" figures (memory_figures)
    )
    if not answers:
        out["error"] = f"none of the {len(stamps)} frames sent was answered"
        return out
    span = (answers[-1].arrived_ns - answers[0].arrived_ns) / 1e9
    quarters = [float(np.median(q)) for q in np.array_split(lat, 4)] if len(lat) >= 4 else []
    out.update(
        latency_ms={
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        },
        # A backlog would make latency climb quarter after quarter. The first quarter starts from
        # an empty buffer, so the trend is last quarter minus second quarter.
        latency_quarter_medians_ms=quarters,
        latency_trend_ms=quarters[3] - quarters[1] if quarters else 0.0,
        output_fps=(len(answers) - 1) / span if span > 0 else 0.0,
        latencies_ms=[round(float(v), 3) for v in lat],
        stages_ms=stage_budget(stage_times.points, answers),
    )
    return out


def measure_node(
    spec_path: Path | None,
    seconds: float,
    threads: int,
    size: tuple[int, int],
    camera_hz: float = CAMERA_RATE_HZ,
) -> dict[str, Any]:
    """The node in its own process: `camera_hz`, then overload_rate(what it sustained)."""
    from seg_perception.ros.node_process import NodeProcess, apply_to_this_process

    domain_id = reserve_domain_id()
    apply_to_this_process(domain_id)
    params: dict[str, Any] = {
        "backend": "onnxruntime",
        "threads": threads,
        "publish_overlay": False,
        "publish_color_mask": False,
        "publish_confidence": False,
        "publish_stage_times": True,
    }
    if spec_path:
        params["model"] = str(spec_path)
    node = NodeProcess(domain_id, params)
    trace = ProcessTrace(node.proc.pid).start()
    out: dict[str, Any] = {}
    try:
        since = trace.take()
        out["30hz"] = run_phase(node, domain_id, camera_hz, seconds, size)
        add_phase_memory(out["30hz"], trace, since, RSS_TOLERANCE_MB)
        sustained = float(out["30hz"].get("sustained_hz", 0.0))
        since = trace.take()
        out["overload"] = run_phase(node, domain_id, overload_rate(sustained, camera_hz), seconds, size)
        add_phase_memory(out["overload"], trace, since, RSS_TOLERANCE_MB)
    finally:
        trace.stop()
        node.stop()
    try:
        out["dds_floor"] = measure_dds_floor(domain_id, camera_hz, seconds, size)
    except Exception as exc:  # noqa: BLE001 - a failed floor must not lose the node's phases
        out["dds_floor"] = {"rate_hz": camera_hz, "sent": 0, "answered": 0, "dropped": 0, "error": f"{exc}"}
    return out


def measure_dds_floor(domain_id: int, rate: float, seconds: float, size: tuple[int, int]) -> dict[str, Any]:
    """The same phase with bench/echo_node.py in the node's place: it answers each frame at once with zero
    outputs of the camera's size under its header, no model and no worker thread. Its latency is the
    floor of camera write + DDS + takes + publishes that the node's p50 stands on, on this machine."""
    from seg_perception.ros.node_process import NodeProcess

    echo = NodeProcess(domain_id, {}, executable=(sys.executable, "-m", "seg_perception.bench.echo_node"))
    try:
        phase = run_phase(echo, domain_id, rate, seconds, size)
    finally:
        echo.stop()
    if echo.proc.returncode not in (0, None) and "error" not in phase:
        phase["error"] = f"the echo process failed ({echo.proc.returncode}): {echo.last_error()}"
    phase.pop("stages_ms", None)  # the echo publishes no stage times
    phase.pop("measured_monotonic_s", None)  # for the node's memory figures only
    return phase

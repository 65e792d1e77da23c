"""Perception health over real DDS: a generated drive into the node, then a frozen stream, black frames,
saturated frames, a covered lens and fog. Each is flagged in /diagnostics with its reason after exactly
flag_frames frames and cleared after exactly clear_frames good frames; the good drive raises no flag, and a
camera that stops sending is reported stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from ros_harness import NodeProcess, Probe, image_msg, stamp_ns, unique_domain_id
from test_health_on_generated_drives import CONDITIONS

from seg_perception.core.health import FAILED_REASONS, REASONS, HealthThresholds
from seg_perception.synthetic.scenes import generate_drive

W, H = 160, 96
FLAG, CLEAR = HealthThresholds().flag_frames, HealthThresholds().clear_frames
GOOD_FRAMES = 40  # more than baseline_frames: both baselines are learned before the first bad frame


def test_conditions_are_flagged_and_cleared_over_dds(spec_path: Path) -> None:
    domain = unique_domain_id()
    probe = Probe(domain, outputs=("labels",))
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "diagnostics_period": 0.2,
        "health_stale_s": 2.0,
        "health_compute_confidence": True,
    }
    node = NodeProcess(domain, params)
    drive = iter(s.image for s in generate_drive(400, W, H, seed=31))
    sent = 0

    def send(frame: np.ndarray) -> None:
        nonlocal sent
        stamp = 1_000_000_000 + sent * 66_666_666
        sent += 1
        probe.image_pub.publish(image_msg(frame, "rgb8", stamp))
        probe.wait_until(lambda: any(stamp_ns(m) == stamp for m in probe.messages("labels")), 15, f"labels {stamp}")

    def status() -> DiagnosticStatus:
        """The camera's status once /diagnostics has counted every frame sent (health is checked first)."""
        probe.wait_until(lambda: probe.counter("frames_processed") == sent, 15, f"diagnostics of {sent} frames")
        return probe.messages("diagnostics")[-1].status[0]

    def flagged(reason: str) -> bool:
        values = {kv.key: kv.value for kv in status().values}
        return reason in status().message.split(": ")[-1].split(", ") and values["health"] != "ok"

    try:
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        for _ in range(GOOD_FRAMES):
            send(next(drive))
        good = status()
        values = {kv.key: kv.value for kv in good.values}
        assert good.level == DiagnosticStatus.OK and good.message == "segmenting", good.message
        assert values["health"] == "ok" and {f"health.{r}" for r in REASONS} <= set(values)
        assert values["health.frozen"] == "0" and values["health.low_confidence"] != "n/a"
        assert values["health_baseline.low_confidence"] != "n/a"
        # No flag in any status published while the good drive ran (before its first frame the camera may be
        # stale: the node started more than health_stale_s before the probe sent anything).
        during = [{kv.key: kv.value for kv in m.status[0].values} for m in probe.messages("diagnostics")]
        during = [v for v in during if int(v["frames_processed"]) > 0]
        assert during and all(v["health"] == "ok" for v in during), [v["health"] for v in during]

        still = next(drive)
        cases = [("frozen", "frozen", lambda _img: still)] + [(c, *CONDITIONS[c]) for c in sorted(CONDITIONS)]
        for name, reason, make in cases:
            if name == "frozen":
                send(still)  # the first of the frozen frames is no repeat yet
            for _ in range(FLAG - 1):
                send(make(next(drive)))
            assert not flagged(reason), f"{name}: flagged before {FLAG} bad frames"
            send(make(next(drive)))
            assert flagged(reason), f"{name}: not flagged as {reason} after {FLAG} frames: {status().message}"
            now = status()
            health = {kv.key: kv.value for kv in now.values}["health"]
            assert health == "failed" or (reason not in FAILED_REASONS and health == "degraded"), (name, now.message)
            assert now.level == (DiagnosticStatus.ERROR if health == "failed" else DiagnosticStatus.WARN), now.message
            for _ in range(CLEAR - 1):
                send(next(drive))
            assert flagged(reason), f"{name}: cleared before {CLEAR} good frames"
            send(next(drive))
            assert not flagged(reason), f"{name}: still flagged after {CLEAR} good frames: {status().message}"
        for _ in range(CLEAR):
            send(next(drive))
        assert status().message == "segmenting"

        # The camera stops: stale after health_stale_s.
        probe.wait_until(lambda: probe.messages("diagnostics")[-1].status[0].message == "no input frames", 10, "stale")
        last = {kv.key: kv.value for kv in probe.messages("diagnostics")[-1].status[0].values}
        assert last["health"] == "degraded" and float(last["health.stale"]) >= 2.0  # shown to 0.01 s
    finally:
        node.stop()
        probe.close()
    assert node.proc.returncode == 0, node.output

"""`seg-perception replay` into the real node over Fast DDS on an isolated localhost domain."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_harness import NodeProcess, Probe, stamp_ns, unique_domain_id
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from seg_perception.bag.synthetic_drive import START_NS, write_synthetic_drive
from seg_perception.ros.node_process import isolated_ros_environment

W, H = 320, 180
FRAMES = 40
BAG_HZ = 10.0
RATE = 2.0  # so the node sees 20 frames/s
NAMESPACE = "/camera/front"


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "drive"
    return write_synthetic_drive(out, FRAMES, width=W, height=H, rate_hz=BAG_HZ, storage="mcap").path


class _Arrivals:
    """Arrival times and input stamps of the node's labels, recorded in the probe's executor."""

    def __init__(self, probe: Probe) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[float, int]] = []
        probe.node.create_subscription(Image, f"{NAMESPACE}/segmentation/labels", self._on_labels, 200)

    def _on_labels(self, msg: Image) -> None:
        with self.lock:
            self.items.append((time.monotonic(), stamp_ns(msg)))

    def snapshot(self) -> list[tuple[float, int]]:
        with self.lock:
            return list(self.items)


@pytest.fixture(scope="module")
def running_node(spec_path: Path) -> Iterator[tuple[int, Probe, _Arrivals]]:
    domain = unique_domain_id(4)
    probe = Probe(domain, namespace=NAMESPACE)
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "publish_overlay": False,
        "publish_color_mask": False,
        "publish_confidence": False,
    }
    # As `ros2 launch` would start it for a camera driver publishing <ns>/image_raw.
    node = NodeProcess(domain, params, namespace=NAMESPACE, extra_ros_args=["-r", "image:=image_raw"])
    try:
        arrivals = _Arrivals(probe)
        node.wait_for_log(f"waiting for a publisher on {NAMESPACE}/image_raw")
        probe.wait_until(
            lambda: probe.node.count_publishers(f"{NAMESPACE}/segmentation/labels") > 0, 20, "the node's labels"
        )
        yield domain, probe, arrivals
    finally:
        node.stop()
        probe.close()


def _replay(bag: Path, domain: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "seg_perception.cli", "replay", str(bag), *args]
    return subprocess.run(
        cmd, env=isolated_ros_environment(domain), capture_output=True, text=True, timeout=60, check=False
    )


def test_replay_feeds_every_frame_to_the_node_at_the_requested_rate(
    drive: Path, running_node: tuple[int, Probe, _Arrivals]
) -> None:
    domain, probe, arrivals = running_node
    done = _replay(drive, domain, "--rate", str(RATE), "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    probe.wait_until(lambda: len(arrivals.snapshot()) >= FRAMES, 10, f"{FRAMES} labels")
    time.sleep(0.3)  # anything extra would arrive now
    got = arrivals.snapshot()
    expected_stamps = [START_NS + round(i * 1e9 / BAG_HZ) for i in range(FRAMES)]
    assert [s for _, s in got] == expected_stamps  # every frame answered once, in order, with its stamp

    requested_hz = BAG_HZ * RATE
    measured_hz = (len(got) - 1) / (got[-1][0] - got[0][0])
    assert abs(measured_hz / requested_hz - 1) < 0.10, f"node answered at {measured_hz:.2f} Hz"
    summary = re.search(r"published (\d+) messages on 2 topics .* at ([\d.]+)x \(requested ([\d.]+)x\)", done.stderr)
    assert summary is not None, done.stderr
    assert int(summary.group(1)) == 2 * FRAMES  # images and camera_info
    assert abs(float(summary.group(2)) / RATE - 1) < 0.10, summary.group(0)


def test_clock_publishes_bag_time(drive: Path, running_node: tuple[int, Probe, _Arrivals]) -> None:
    domain, probe, _ = running_node
    lock = threading.Lock()
    clocks: list[int] = []

    def on_clock(msg: Clock) -> None:
        with lock:
            clocks.append(int(msg.clock.sec) * 1_000_000_000 + int(msg.clock.nanosec))

    probe.node.create_subscription(Clock, "/clock", on_clock, 100)
    topic = f"{NAMESPACE}/camera_info"
    done = _replay(drive, domain, "--topics", topic, "--rate", "4", "--clock", "50", "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    assert re.search(r"/clock \d+ messages", done.stderr), done.stderr
    probe.wait_until(lambda: len(clocks) >= 20, 5, "/clock messages")
    with lock:
        seen = list(clocks)
    bag_start = START_NS - 1_000  # camera_info is recorded 1 us before its frame
    bag_end = START_NS + round((FRAMES - 1) * 1e9 / BAG_HZ)
    assert seen == sorted(seen)
    assert bag_start <= seen[0] and seen[-1] <= bag_end + 500_000_000  # a tick may land just past the end
    # 50 Hz of wall time at 4x covers the bag's 3.9 s in about 1 s: some 50 ticks.
    assert len(seen) >= 30, len(seen)

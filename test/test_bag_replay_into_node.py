"""`seg-perception replay` into the real node over Fast DDS on an isolated localhost domain.

Timing is judged from the publisher's own DDS source timestamps against the bag's recorded times (never
early; within a generous bound), not from when callbacks ran; payloads are compared byte for byte with
the bag."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from child_signals import foreground_sigint
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, stamp_ns, unique_domain_id
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.bag.bag_io import bag_writer, open_bag, read_messages
from seg_perception.bag.replay import HANDSHAKE_TIMEOUT_S
from seg_perception.ros.node_process import isolated_ros_environment
from seg_perception.synthetic.drive_bag import INFO_LEAD_NS, START_NS, write_synthetic_drive

W, H = 320, 180
FRAMES = 40
BAG_HZ = 10.0
RATE = 2.0  # so the node sees 20 frames/s
NAMESPACE = "/camera/front"
IMAGE_TOPIC = f"{NAMESPACE}/image_raw"
INFO_TOPIC = f"{NAMESPACE}/camera_info"


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "drive"
    return write_synthetic_drive(out, FRAMES, width=W, height=H, rate_hz=BAG_HZ, storage="mcap").path


def _recorded(bag: Path) -> dict[str, list[tuple[int, bytes]]]:
    """(bag time, raw CDR) per topic, as stored."""
    out: dict[str, list[tuple[int, bytes]]] = {}
    with open_bag(bag) as reader:
        for conn, timestamp, data in read_messages(reader):
            out.setdefault(conn.topic, []).append((timestamp, bytes(data)))
    return out


# A reader can miss a writer's first samples: --wait-for-subscribers returns once the writer has matched
# the reader, which may not yet have matched the writer (discovery is not symmetric). Only there.
MAX_MISSED_AT_START = 3


def _same_payload(wire: bytes, recorded: bytes) -> bool:
    """The recorded CDR bytes unchanged; Fast DDS pads a serialized payload with up to 3 zero bytes to a
    4-byte boundary (CDR alignment), everything before is compared exactly."""
    return wire[: len(recorded)] == recorded and len(wire) - len(recorded) < 4 and not any(wire[len(recorded) :])


def _missed_at_start(wire: list[tuple[int, bytes]], recorded: list[bytes]) -> int:
    """How many of the first recorded messages the wire lacks, given that it then carries every other one
    unchanged and in order; fails otherwise."""
    got = [data for _, data in wire]
    missed = len(recorded) - len(got)
    assert 0 <= missed <= MAX_MISSED_AT_START, f"{len(got)} messages on the wire, {len(recorded)} recorded"
    bad = [i for i, (g, r) in enumerate(zip(got, recorded[missed:], strict=True)) if not _same_payload(g, r)]
    assert not bad, f"wire messages {bad} differ from the recorded bytes (after {missed} missed at the start)"
    return missed


def _wait_for_last(probe: Probe, wire: _RawRecorder, topic: str, last: bytes) -> None:
    probe.wait_until(lambda: any(_same_payload(d, last) for _, d in wire.get(topic)), 10, f"the last {topic}")


class _RawRecorder:
    """The serialized bytes and DDS source timestamp (publish time) of every message on some topics."""

    def __init__(self, probe: Probe, topics: dict[str, Any]) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, list[tuple[int, bytes]]] = {t: [] for t in topics}
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=500, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msg_type in topics.items():
            probe.node.create_subscription(msg_type, topic, self._recorder(topic), qos, raw=True)

    def _recorder(self, topic: str) -> Any:
        def record(data: bytes, info: Any) -> None:
            with self.lock:
                self.items[topic].append((int(info["source_timestamp"]), bytes(data)))

        return record

    def get(self, topic: str) -> list[tuple[int, bytes]]:
        with self.lock:
            return list(self.items[topic])


@pytest.fixture(scope="module")
def running_node(spec_path: Path) -> Iterator[tuple[int, Probe, NodeProcess]]:
    domain = unique_domain_id(4)
    probe = Probe(domain, namespace=NAMESPACE, outputs=("labels",))
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "publish_overlay": False,
        "publish_color_mask": False,
        "publish_confidence": False,
        "diagnostics_period": 0.2,
    }
    # As `ros2 launch` would start it for a camera driver publishing <ns>/image_raw.
    node = NodeProcess(domain, params, namespace=NAMESPACE, extra_ros_args=["-r", "image:=image_raw"])
    try:
        node.wait_for_log(f"waiting for a publisher on {IMAGE_TOPIC}")
        probe.wait_until(
            lambda: probe.node.count_publishers(f"{NAMESPACE}/segmentation/labels") > 0, 20, "the node's labels"
        )
        yield domain, probe, node
    finally:
        node.stop()
        probe.close()


def _replay(bag: Path, domain: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "seg_perception.cli", "replay", str(bag), *args]
    return subprocess.run(
        cmd, env=isolated_ros_environment(domain), capture_output=True, text=True, timeout=60, check=False
    )


def test_replay_feeds_every_frame_to_the_node(drive: Path, running_node: tuple[int, Probe, NodeProcess]) -> None:
    domain, probe, _ = running_node
    done = _replay(drive, domain, "--rate", str(RATE), "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    summary = re.search(r"published (\d+) messages on 2 topics .* at ([\d.]+)x \(requested ([\d.]+)x\)", done.stderr)
    assert summary is not None, done.stderr
    assert int(summary.group(1)) == 2 * FRAMES  # images and camera_info
    assert 0 < float(summary.group(2)) <= RATE * 1.01, summary.group(0)  # never faster than requested

    # Each frame the node received is either answered (with its stamp, in order) or replaced in its buffer
    # by a newer one (when this machine is slower than 20 frames/s); none goes missing uncounted.
    expected_stamps = [START_NS + round(i * 1e9 / BAG_HZ) for i in range(FRAMES)]

    def settled() -> bool:
        v = probe.diagnostics()
        received = int(v.get("frames_received", 0))
        reached = received + int(v.get("frames_lost_in_transport", 0))
        return FRAMES - MAX_MISSED_AT_START <= reached <= FRAMES and (
            int(v["frames_processed"]) + int(v["frames_replaced"]) == received
        )

    last = expected_stamps[-1]  # the newest frame is never replaced: once it is answered, all were received
    probe.wait_until(lambda: any(stamp_ns(m) == last for m in probe.messages("labels")), 10, "the last frame")
    probe.wait_until(settled, 10, "the node's diagnostics accounting for every frame")
    processed = probe.counter("frames_processed")
    probe.wait_until(lambda: len(probe.messages("labels")) == processed, 10, f"{processed} labels")
    answered = [stamp_ns(m) for m in probe.messages("labels")]
    assert answered[-1] == expected_stamps[-1]
    assert answered == sorted(answered) and set(answered) <= set(expected_stamps)


def test_clock_publishes_bag_time(drive: Path, running_node: tuple[int, Probe, NodeProcess]) -> None:
    domain, probe, _ = running_node
    lock = threading.Lock()
    clocks: list[int] = []

    def on_clock(msg: Clock) -> None:
        with lock:
            clocks.append(int(msg.clock.sec) * 1_000_000_000 + int(msg.clock.nanosec))

    probe.node.create_subscription(Clock, "/clock", on_clock, 100)
    done = _replay(
        drive, domain, "--topics", INFO_TOPIC, "--rate", "4", "--clock", "50", "--wait-for-subscribers", "20"
    )
    assert done.returncode == 0, done.stderr
    ticks = re.search(r"/clock (\d+) messages", done.stderr)
    assert ticks is not None, done.stderr
    probe.wait_until(lambda: len(clocks) >= int(ticks.group(1)), 5, "every /clock message")
    with lock:
        seen = list(clocks)
    bag_start = START_NS - INFO_LEAD_NS  # camera_info is recorded 1 us before its frame
    bag_end = START_NS + round((FRAMES - 1) * 1e9 / BAG_HZ)
    assert seen == sorted(seen)
    assert bag_start <= seen[0] and seen[-1] <= bag_end + 500_000_000  # a tick may land just past the end
    # 50 Hz of wall time at 4x covers the bag's 3.9 s in about 1 s: some 50 ticks.
    assert len(seen) >= 30, len(seen)


@pytest.fixture
def listener() -> Iterator[tuple[int, Probe, _RawRecorder]]:
    """A probe recording the camera topics on a domain of its own (no node): the only subscriber, so
    --wait-for-subscribers guarantees it sees every message."""
    domain = unique_domain_id(5)
    probe = Probe(domain, namespace=NAMESPACE, outputs=())
    try:
        yield domain, probe, _RawRecorder(probe, {IMAGE_TOPIC: Image, INFO_TOPIC: CameraInfo})
    finally:
        probe.close()


def test_replay_publishes_the_recorded_bytes_on_the_bag_schedule(
    drive: Path, listener: tuple[int, Probe, _RawRecorder]
) -> None:
    domain, probe, wire = listener
    done = _replay(drive, domain, "--rate", str(RATE), "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    recorded = _recorded(drive)
    missed = {}
    for topic in (IMAGE_TOPIC, INFO_TOPIC):  # every message, in order, byte for byte as recorded
        _wait_for_last(probe, wire, topic, recorded[topic][-1][1])
        missed[topic] = _missed_at_start(wire.get(topic), [data for _, data in recorded[topic]])
    # The schedule, from the publisher's own DDS source timestamps: each message is published no earlier
    # than its bag offset / rate (the player never runs ahead), and the whole bag within a generous bound.
    sent = [t for t, _ in wire.get(IMAGE_TOPIC)]
    bag = [t for t, _ in recorded[IMAGE_TOPIC]][missed[IMAGE_TOPIC] :]
    # lag = wall time - bag offset / rate. The player's clock starts at or before its first publish, which
    # can itself be late (the first deserialize), so the reference is the most punctual of the first five.
    lag = [sent[i] - (bag[i] - bag[0]) / RATE for i in range(len(sent))]
    reference = min(lag[:5])
    early = [i for i in range(len(sent)) if lag[i] - reference < -5_000_000]
    assert not early, f"frames {early} were published before their time"
    span_s, due_s = (sent[-1] - sent[0]) / 1e9, (bag[-1] - bag[0]) / 1e9 / RATE
    slack_s = max(5.0, 0.5 * due_s)  # never early (above); late only within what a loaded machine adds
    assert span_s < due_s + slack_s, f"{len(sent)} frames took {span_s:.2f} s of wall time, due in {due_s:.2f} s"


def test_start_offset_skips_the_start_of_the_bag(drive: Path, listener: tuple[int, Probe, _RawRecorder]) -> None:
    domain, probe, wire = listener
    done = _replay(drive, domain, "--start-offset", "2.0", "--rate", "4", "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    recorded = _recorded(drive)
    offset_ns = recorded[INFO_TOPIC][0][0] + 2_000_000_000  # from the bag's first message on
    for topic in (IMAGE_TOPIC, INFO_TOPIC):
        want = [data for t, data in recorded[topic] if t >= offset_ns]
        assert len(want) == FRAMES // 2  # the bag's second half: frames 20..39
        _wait_for_last(probe, wire, topic, want[-1])
        _missed_at_start(wire.get(topic), want)  # nothing from before the offset, then every later message
    assert f"published {FRAMES} messages on 2 topics" in done.stderr


def test_a_ros1_bag_replays_the_messages_of_the_same_drive_in_rosbag2(
    drive: Path, tmp_path: Path, listener: tuple[int, Probe, _RawRecorder]
) -> None:
    """A ROS 1 .bag of the drive (ROS 1 serialization, headers with seq) is published as the rosbag2 bag's
    own CDR messages, every one, in order; its topic of a type ROS 2 has not is skipped with a warning."""
    from bag_formats import write_ros1

    ros1 = write_ros1(drive, tmp_path / "drive.bag")
    domain, probe, wire = listener
    done = _replay(ros1, domain, "--rate", "4", "--wait-for-subscribers", "20")
    assert done.returncode == 0, done.stderr
    recorded = _recorded(drive)
    for topic in (IMAGE_TOPIC, INFO_TOPIC):
        _wait_for_last(probe, wire, topic, recorded[topic][-1][1])
        _missed_at_start(wire.get(topic), [data for _, data in recorded[topic]])
    assert f"published {2 * FRAMES} messages on 2 topics" in done.stderr
    assert "/radar" in done.stderr


def test_loop_plays_the_bag_again_until_interrupted(tmp_path: Path, listener: tuple[int, Probe, _RawRecorder]) -> None:
    domain, probe, wire = listener
    frames = 5
    bag = write_synthetic_drive(tmp_path / "short", frames, width=64, height=48, rate_hz=50.0).path
    recorded = [data for _, data in _recorded(bag)[IMAGE_TOPIC]]
    cmd = [sys.executable, "-m", "seg_perception.cli", "replay", str(bag), "--loop", "--wait-for-subscribers", "20"]
    env = dict(isolated_ros_environment(domain), PYTHONFAULTHANDLER="1")  # SIGABRT dumps every thread's stack
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=foreground_sigint
    )
    try:
        # Start-up is not playback: interpreter and imports (11 s at a load of 8, 31 s with four more busy
        # loops on this 2-core machine), discovery, and the first message of each of the two reliable topics
        # waiting for its acknowledgement (up to HANDSHAKE_TIMEOUT_S each; ~3 s, one heartbeat, measured).
        # One 30 s deadline over all of it failed under load; the three passes then take 0.3 s of bag time.
        startup_s = 30.0 + 20.0 + 2 * HANDSHAKE_TIMEOUT_S  # process, --wait-for-subscribers, two handshakes
        probe.wait_until(
            lambda: len(wire.get(IMAGE_TOPIC)) >= 1 or proc.poll() is not None, startup_s, "the first frame"
        )
        probe.wait_until(lambda: len(wire.get(IMAGE_TOPIC)) >= 3 * frames, 30, "three passes over the bag")
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # where it hangs, from faulthandler, instead of a bare timeout
            _, stderr = proc.communicate(timeout=20)
            pytest.fail(f"replay did not exit within 20 s of SIGINT; its stderr ends:\n{stderr[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr  # interrupted, as the summary line says
    assert "interrupted after" in stderr and "Traceback" not in stderr
    got = [data for _, data in wire.get(IMAGE_TOPIC)]
    first = next(i for i, r in enumerate(recorded) if _same_payload(got[0], r))
    assert first <= MAX_MISSED_AT_START
    # The recorded bytes, pass after pass: after the last frame comes the first again.
    bad = [k for k, g in enumerate(got) if not _same_payload(g, recorded[(first + k) % frames])]
    assert not bad, f"messages {bad} are not the bag's frames in a loop"


def test_a_topic_whose_type_is_not_installed_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("int32 value", "seg_test_msgs/msg/Reading"))
    bag = tmp_path / "mixed"
    with bag_writer(bag, "mcap") as writer:
        unknown = writer.add_connection("/sensor/reading", "seg_test_msgs/msg/Reading", typestore=store)
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(3):
            reading = store.types["seg_test_msgs/msg/Reading"](value=i)
            writer.write(unknown, START_NS + i, store.serialize_cdr(reading, "seg_test_msgs/msg/Reading"))
            text = store.types["std_msgs/msg/String"](data=f"hello {i}")
            writer.write(chatter, START_NS + i, store.serialize_cdr(text, "std_msgs/msg/String"))
    done = _replay(bag, unique_domain_id(6))
    assert done.returncode == 0, done.stderr
    assert "skipping /sensor/reading: message type seg_test_msgs/msg/Reading is not installed" in done.stderr
    assert "published 3 messages on 1 topic " in done.stderr and "skipped /sensor/reading" in done.stderr

"""Video camera topics as node input over real DDS (parameter video_input, topic image/video).

A subprocess publishes H.264 with B-frames, one access unit per message in decode order, as
foxglove_msgs/CompressedVideo or ffmpeg_image_transport_msgs/FFMPEGPacket (both built from their definitions,
test/interface_packages.py). The stream starts mid-GOP and carries one garbage unit. Every output must carry the
stamp and frame_id of the message whose picture it is (each picture has its own frame_id here), and its labels
must equal the labels of that picture as PyAV decodes the same units directly (not through the package).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from child_signals import foreground_sigint
from interface_packages import interface_env
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from ros_harness import NodeProcess, Probe, image_msg, stamp_ns, unique_domain_id

from seg_perception.core.video_stream import decoder_for, is_keyframe
from seg_perception.pipeline import ALL_OUTPUTS, Segmenter
from seg_perception.ros.diagnostics_keys import expected_keys
from seg_perception.ros.node_process import isolated_ros_environment
from seg_perception.synthetic.scenes import generate_drive
from seg_perception.synthetic.video_drive import VideoSettings, encode_frames

W, H, FRAMES, START, PERIOD = 160, 96, 20, 1_700_000_000_000_000_000, 100_000_000
FIRST_SENT = 2  # the publisher starts at the third unit: mid-GOP
GARBAGE_AT = 9  # this unit's bytes are replaced by noise the decoder refuses
PUBLISHER = Path(__file__).parent / "video_publisher.py"
TYPES = {
    "compressedvideo": ("foxglove_msgs/msg/CompressedVideo", "h264"),
    "ffmpegpacket": ("ffmpeg_image_transport_msgs/msg/FFMPEGPacket", "h264;yuv420p;rgb8;rgb8"),
}
# Seconds between units: at camera pace (every picture is segmented), and in one burst (units queue up faster
# than they are decoded and pictures faster than they are segmented: every unit must still be decoded).
PACE = {"compressedvideo": 0.1, "ffmpegpacket": 0.0}


def _env() -> dict[str, str]:
    return interface_env("foxglove_msgs", "ffmpeg_image_transport_msgs")


def _stream(first: int = FIRST_SENT, garbage: int | None = GARBAGE_AT) -> list[tuple[int, str, bytes, bool]]:
    """(stamp, frame_id, access unit, keyframe) in decode order, from unit `first` on, unit `garbage` noise."""
    pictures = [scene.image for scene in generate_drive(FRAMES, W, H, 0, fps=10.0)]
    units = encode_frames(pictures, VideoSettings("libx264", gop=6, bframes=2), 10.0)
    noise = np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes()
    out = []
    for k, (shown, data) in enumerate(units[first:], first):
        unit = noise if k == garbage else data
        out.append((START + shown * PERIOD, f"cam_{shown}", unit, is_keyframe("h264", unit)))
    return out


def _reference(stream: list[tuple[int, str, bytes, bool]]) -> dict[int, np.ndarray]:
    """stamp -> picture as PyAV decodes the units from the first keyframe on, live (no flush at the end)."""
    import av

    decoder = av.CodecContext.create(decoder_for("h264"), "r")
    first = next(i for i, u in enumerate(stream) if u[3])
    pictures = {}
    for i, (_, _, data, _) in enumerate(stream[first:], first):
        packet = av.Packet(data)
        packet.pts = i
        try:
            frames = decoder.decode(packet)
        except av.error.FFmpegError:
            continue
        for frame in frames:
            if not frame.is_corrupt:
                pictures[stream[frame.pts][0]] = frame.to_ndarray(format="rgb24")
    return pictures


def _publish(
    tmp_path: Path, env: dict[str, str], domain: int, kind: str, stream: list[Any], repeat_s: float = 0
) -> subprocess.Popen[str]:
    msgtype, fmt = TYPES[kind]
    job = tmp_path / "units.pkl"
    units = [(s, f, fmt, d, k) for s, f, d, k in stream]
    job.write_bytes(
        pickle.dumps(
            {"topic": "image/video", "type": msgtype, "period_s": PACE[kind], "repeat_s": repeat_s, "units": units}
        )
    )
    return subprocess.Popen(
        [sys.executable, str(PUBLISHER), str(job)],
        env=isolated_ros_environment(domain, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _intake_topics(probe: Probe) -> set[str]:
    """Topics the node's camera intake subscribes to (ros/camera_intake.py), as the DDS graph shows them."""
    try:
        found = probe.node.get_subscriber_names_and_types_by_node("seg_perception_camera_intake", "/camera")
    except _rclpy.NodeNameNonExistentError:  # not discovered yet
        return set()
    return {name for name, _ in found}


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_each_output_carries_the_header_of_the_message_whose_picture_it_is(
    tmp_path: Path, spec_path: Path, segmenter: Segmenter, kind: str
) -> None:
    stream = _stream()
    shown = [s for s, _, _, _ in stream]
    assert shown != sorted(shown), "B-frames: the units are in decode order"
    skipped = next(i for i, u in enumerate(stream) if u[3])
    assert skipped > 0 and not stream[0][3], "the stream starts mid-GOP"
    reference = _reference(stream)
    env = _env()
    domain = unique_domain_id()
    params = {"model": str(spec_path), "backend": "onnxruntime", "video_input": True, "diagnostics_period": 0.2}
    probe = Probe(domain, outputs=("labels",))
    node = NodeProcess(domain, params, base_env=env)
    publisher = None
    try:
        node.wait_for_log("subscribed to /camera/image", timeout=90)  # start-up on a loaded machine
        probe.wait_for_node_outputs()
        publisher = _publish(tmp_path, env, domain, kind, stream)
        node.wait_for_log(f"subscribed to /camera/image/video ({TYPES[kind][0]}, reliable, depth 64)")
        probe.wait_until(lambda: "/camera/image/video" in _intake_topics(probe), 20, "the intake's video subscription")
        assert publisher.wait(timeout=60) == 0, publisher.stdout.read() if publisher.stdout else ""

        def settled() -> bool:
            d = probe.diagnostics()
            done = int(d.get("frames_processed", 0)) + int(d.get("frames_replaced", 0))
            return d.get("video_units_received") == str(len(stream)) and done == len(reference)

        probe.wait_until(settled, 30, "every decoded picture segmented or replaced")
        d = probe.diagnostics()
        labels = probe.messages("labels")
        assert d["video_input"] == f"{TYPES[kind][0]} on /camera/image/video"
        assert d["video_skipped_before_keyframe"] == str(skipped)
        assert d["bad_frames.undecodable_access_unit"] == "1"
        assert d["bad_frames"] == "1"
        # the keys, in order, are those of the generated /diagnostics reference (ros/diagnostics_keys.py)
        assert list(d) == expected_keys(met=["undecodable_access_unit"], enabled=["video_input"])
        assert d["video_pictures_decoded"] == d["frames_received"] == str(len(reference))
        assert len(labels) == int(d["frames_processed"]) >= (len(reference) - 3 if PACE[kind] else 1)
        frame_ids = {s: f for s, f, _, _ in stream}
        for msg in labels:
            stamp = stamp_ns(msg)
            assert msg.header.frame_id == frame_ids[stamp]
            expected = segmenter.segment(reference[stamp], "RGB", ALL_OUTPUTS).labels
            assert np.array_equal(np.asarray(msg.data, np.uint8).reshape(H, W), expected)
        assert node.proc.poll() is None
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        node.stop()
        probe.close()


HIDDEN = "No module named 'foxglove_msgs' (hidden by the test)"


def test_without_the_message_package_the_node_says_so_once_and_images_keep_running(
    tmp_path: Path, spec_path: Path
) -> None:
    env = _env()
    shadow = tmp_path / "hide" / "foxglove_msgs"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ModuleNotFoundError({HIDDEN!r}, name='foxglove_msgs')\n")
    node_env = dict(env, PYTHONPATH=os.pathsep.join((str(shadow.parent), env["PYTHONPATH"])))
    domain = unique_domain_id()
    params = {"model": str(spec_path), "backend": "onnxruntime", "video_input": True, "diagnostics_period": 0.2}
    probe = Probe(domain, outputs=("labels",))
    node = NodeProcess(domain, params, base_env=node_env)
    publisher = None
    line = (
        "video input /camera/image/video (foxglove_msgs/msg/CompressedVideo) is off: foxglove_msgs is not "
        f"importable ({HIDDEN}); install ros-<distro>-foxglove-msgs; the image inputs keep running"
    )
    try:
        node.wait_for_log("subscribed to /camera/image", timeout=90)  # start-up on a loaded machine
        probe.wait_for_subscribers(probe.image_pub)
        probe.wait_for_node_outputs()
        publisher = _publish(tmp_path, env, domain, "compressedvideo", _stream()[:8], repeat_s=30)
        node.wait_for_log(line)
        frame = np.full((H, W, 3), 90, np.uint8)
        probe.image_pub.publish(image_msg(frame, "rgb8", START, "front"))
        probe.wait_until(lambda: len(probe.messages("labels")) == 1, 20, "labels of the image input")
        assert probe.messages("labels")[0].header.frame_id == "front"
        probe.wait_until(lambda: "video_input" in probe.diagnostics(), 10, "diagnostics")
        assert probe.diagnostics()["video_input"] == line.split(" is ", 1)[1].rsplit("; the image", 1)[0]
        time.sleep(1.0)  # five subscription retry periods: the line is not repeated
        assert node.output.count("is off: foxglove_msgs") == 1
        assert node.proc.poll() is None
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        node.stop()
        probe.close()


def test_deactivate_stops_the_video_input_and_activate_starts_it_again(tmp_path: Path, spec_path: Path) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    env = _env()
    domain = unique_domain_id()
    params = {"model": str(spec_path), "backend": "onnxruntime", "video_input": True, "diagnostics_period": 0.2}
    probe = Probe(domain, outputs=("labels",))
    node = NodeProcess(domain, params, base_env=env)
    change = probe.node.create_client(ChangeState, "/camera/seg_perception/change_state")
    publisher = None
    stream = _stream(first=0, garbage=None)  # whole GOPs, played in a loop
    frame_ids = {s: f for s, f, _, _ in stream}

    def transition(kind: int) -> None:
        request = ChangeState.Request()
        request.transition.id = kind
        future = change.call_async(request)
        probe.wait_until(future.done, 10, "the lifecycle service")
        assert future.result().success

    def video_subscribers() -> int:
        return probe.node.count_subscribers("/camera/image/video")

    try:
        node.wait_for_log("subscribed to /camera/image", timeout=90)  # start-up on a loaded machine
        probe.wait_for_node_outputs()
        publisher = _publish(tmp_path, env, domain, "compressedvideo", stream, repeat_s=60)
        probe.wait_until(lambda: len(probe.messages("labels")) >= 3, 30, "labels of the video")
        transition(Transition.TRANSITION_DEACTIVATE)
        probe.wait_until(lambda: video_subscribers() == 0, 10, "the video subscription to go")
        time.sleep(0.5)  # outputs already on the way
        quiet = len(probe.messages("labels"))
        time.sleep(1.0)
        assert len(probe.messages("labels")) == quiet, "an inactive node published"
        transition(Transition.TRANSITION_ACTIVATE)
        probe.wait_until(lambda: video_subscribers() == 1, 10, "the video subscription again")
        probe.wait_until(lambda: len(probe.messages("labels")) >= quiet + 3, 30, "labels after re-activation")
        assert node.output.count("subscribed to /camera/image/video") == 2
        assert all(m.header.frame_id == frame_ids[stamp_ns(m)] for m in probe.messages("labels"))
        assert node.proc.poll() is None
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        node.stop()
        probe.close()


def test_sigint_while_video_flows_exits_cleanly(tmp_path: Path, spec_path: Path) -> None:
    """Ctrl-C while units stream in and the decoder thread is busy: exit status 0, no traceback."""
    env = _env()
    domain = unique_domain_id()
    params = {"model": str(spec_path), "backend": "onnxruntime", "video_input": True, "diagnostics_period": 0.2}
    probe = Probe(domain, outputs=("labels",))
    # SIGINT's default disposition, as a command run in a terminal has (not inherited SIG_IGN: child_signals.py)
    node = NodeProcess(domain, params, base_env=env, preexec_fn=foreground_sigint)
    publisher = None
    try:
        node.wait_for_log("subscribed to /camera/image", timeout=90)  # start-up on a loaded machine
        probe.wait_for_node_outputs()
        publisher = _publish(tmp_path, env, domain, "compressedvideo", _stream(first=0, garbage=None), repeat_s=60)
        probe.wait_until(lambda: len(probe.messages("labels")) >= 3, 30, "labels of the video")
        units = probe.counter("video_units_received")
        probe.wait_until(lambda: probe.counter("video_units_received") > units, 10, "units still arriving")
        node.proc.send_signal(signal.SIGINT)
        node.proc.wait(timeout=20)
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        node.stop(timeout=5)  # kills it if it did not stop
        probe.close()
    assert node.proc.returncode == 0, node.output
    assert "Traceback" not in node.output and "KeyboardInterrupt" not in node.output, node.output

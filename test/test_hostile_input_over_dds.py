"""Malformed frames never take the node down: each is counted and warned about (rate-limited), and the
good frames around them are answered normally. Shutdown is clean while frames are flowing."""

from __future__ import annotations

import array
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from ros_harness import NodeProcess, Probe, image_msg, node_with_probe, stamp_ns, unique_domain_id
from sensor_msgs.msg import CompressedImage, Image
from tiny_models import smooth_image

from seg_perception.core.compressed_codec import encode_compressed
from seg_perception.ros.segmentation_node import WARN_PERIOD_S

W, H = 96, 64
ROUNDS = 8  # paced: every malformed kind reaches the decoder this many times
MALFORMED_PER_GOOD = 10
GOOD_FRAMES = 100  # unpaced stress: 1,000 malformed messages as fast as they can be published


def _raw(encoding: str, height: int, width: int, step: int, data: bytes, bigendian: int = 0) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=bigendian)
    buf = array.array("B")
    buf.frombytes(data)
    msg.data = buf
    return msg


def malformed_images() -> list[tuple[str, Image]]:
    """One of each kind of broken Image a bad driver or a corrupted recording produces, with the reason
    the node must count it under (`bad_frames.<reason>` in /diagnostics)."""
    ok = bytes(W * H * 3)
    return [
        ("zero_size", _raw("rgb8", 0, W, W * 3, b"")),
        ("zero_size", _raw("rgb8", H, 0, 0, b"")),
        ("step_too_small", _raw("rgb8", H, W, W * 3 - 1, ok)),
        ("data_short", _raw("rgb8", H, W, W * 3, ok[:-7])),
        ("data_long", _raw("rgb8", H, W, W * 3, ok + b"\0" * 5)),
        ("unknown_encoding", _raw("rgb9", H, W, W * 3, ok)),
        ("empty_encoding", _raw("", H, W, W * 3, ok)),
        ("odd_size", _raw("yuv422", H, W + 1, (W + 1) * 2, bytes((W + 1) * 2 * H))),  # odd width for 4:2:2
        ("odd_size", _raw("yuyv", H, W - 1, (W - 1) * 2, bytes((W - 1) * 2 * H))),  # (Bayer takes any size)
        ("data_short", _raw("mono16", H, W, W * 2, bytes(W * 2 * H - 1))),  # 16-bit, one byte short
        ("too_many_pixels", _raw("rgb8", 100_000, 100_000, 300_000, ok)),  # refused before reading data
        ("too_many_pixels", _raw("rgb8", 1, 2**31 - 1, 2**32 - 1, b"\0" * 16)),  # overflow bait
    ]


def malformed_serialized() -> list[tuple[str, bytes]]:
    """Broken serialized Images (a raw publisher, a corrupted recording replayed as bytes): the node takes
    frames serialized, so these reach its reader; each must count as bad_serialization."""
    good = serialize_message(image_msg(np.zeros((H, W, 3), np.uint8), "rgb8", 5))
    count_at = len(good) - W * H * 3 - 4  # data's element count sits just before the pixels
    too_many = good[:count_at] + (W * H * 3 + 1).to_bytes(4, "little") + good[count_at + 4 :]
    return [
        ("bad_serialization", good[:3]),  # shorter than the encapsulation header
        ("bad_serialization", b"\x12\x34" + good[2:]),  # no CDR encapsulation we know
        ("bad_serialization", good[:30]),  # cut inside the fixed fields
        # Pixels missing. (Not fewer than 4: between processes DDS pads a sample to a multiple of 4 bytes,
        # so a buffer cut by 1-3 bytes arrives whole again, padded; rmw writers never cut one.)
        ("bad_serialization", good[:-100]),
        ("bad_serialization", too_many),  # the data's count claims one byte more than follows
    ]


def _with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its start-of-frame header claiming another size (the entropy data unchanged)."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9 :]


def malformed_compressed(jpeg: bytes) -> list[tuple[str, CompressedImage]]:
    """Each kind of broken CompressedImage, with the reason the node must count it under."""
    return [
        ("data_empty", CompressedImage(format="jpeg", data=b"")),
        ("truncated", CompressedImage(format="jpeg", data=jpeg[: len(jpeg) // 2])),
        ("truncated", CompressedImage(format="png", data=b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)),
        ("bad_signature", CompressedImage(format="jpeg", data=b"definitely not an image")),
        ("unknown_format", CompressedImage(format="webp", data=jpeg)),
        ("unknown_format", CompressedImage(format="rgb8; tiff compressed rgb8", data=jpeg)),
        ("undecodable", CompressedImage(format="jpeg", data=jpeg[:20] + bytes(200) + jpeg[-2:])),
        ("zero_size", CompressedImage(format="jpeg", data=_with_jpeg_size(jpeg, 0, H))),
        ("too_many_pixels", CompressedImage(format="jpeg", data=_with_jpeg_size(jpeg, 65_535, 65_535))),
    ]


def good_images(stamp: int) -> Image:
    """Valid frames in rotating encodings, 16-bit big- and little-endian and 16-bit Bayer included."""
    rgb = smooth_image(H, W, seed=stamp % 1000)
    kind = stamp % 5
    if kind == 0:
        return image_msg(rgb, "rgb8", stamp)
    if kind == 1:
        return image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", stamp, step=W * 3 + 4)
    gray16 = rgb[..., 1].astype(np.uint16) * 257
    if kind == 2:
        return _big_endian_16("mono16", gray16, stamp)
    if kind == 4:  # a big-endian 16-bit Bayer mosaic, grbg (G R / B G)
        mosaic = gray16.copy()
        mosaic[0::2, 1::2] = rgb[0::2, 1::2, 0].astype(np.uint16) * 257
        mosaic[1::2, 0::2] = rgb[1::2, 0::2, 2].astype(np.uint16) * 257
        return _big_endian_16("bayer_grbg16", mosaic, stamp)
    return image_msg(np.ascontiguousarray(rgb.astype(np.uint16) * 257).view(np.uint8).reshape(H, W * 6), "rgb16", stamp)


def _big_endian_16(encoding: str, plane: np.ndarray, stamp: int) -> Image:
    msg = _raw(encoding, H, W, W * 2, plane.astype(">u2").tobytes(), bigendian=1)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = "camera_front"
    return msg


def _bad_by_reason(probe: Probe) -> Counter[str]:
    prefix = "bad_frames."
    return Counter({k[len(prefix) :]: int(v) for k, v in probe.diagnostics().items() if k.startswith(prefix)})


def _each_to_the_decoder(
    probe: Probe, publish: Callable[[Any], None], kinds: list[tuple[str, Any]], good: Callable[[int], Any]
) -> Counter[str]:
    """Publish every kind ROUNDS times, one message at a time, each only once the node has counted the
    previous one (acknowledged by /diagnostics), so none is lost in DDS or replaced in the node's buffer;
    after each round a good frame must be answered. Returns the counts per reason."""
    expected: Counter[str] = Counter()
    for r in range(ROUNDS):
        for i, (reason, msg) in enumerate(kinds):
            publish(msg)
            expected[reason] += 1
            total = expected.total()
            probe.wait_until(lambda t=total: probe.counter("bad_frames") == t, 10, f"kind {i} ({reason}) counted")
            assert _bad_by_reason(probe) == expected, f"kind {i} ({reason}) counted under another reason"
        stamp = 1_800_000_000_000_000_000 + r * 1_000_000
        publish(good(stamp))
        probe.wait_until(lambda s=stamp: any(stamp_ns(m) == s for m in probe.messages("labels")), 10, f"good {r}")
    probe.wait_until(lambda: probe.counter("frames_processed") == ROUNDS, 10, "diagnostics of the good frames")
    values = probe.diagnostics()
    assert int(values["frames_replaced"]) == int(values["frames_lost_in_transport"]) == 0
    assert int(values["frames_received"]) == expected.total() + ROUNDS  # every message reached the node
    return expected


@pytest.fixture
def node_and_probe(spec_path: Path) -> Iterator[tuple[NodeProcess, Probe]]:
    params = {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.1}
    with node_with_probe(unique_domain_id(7), params) as pair:
        yield pair


def test_every_malformed_image_kind_reaches_the_decoder_and_is_counted(
    node_and_probe: tuple[NodeProcess, Probe],
) -> None:
    node, probe = node_and_probe
    start = time.monotonic()
    counted = _each_to_the_decoder(probe, probe.image_pub.publish, malformed_images(), good_images)
    took = time.monotonic() - start
    assert counted.total() == ROUNDS * len(malformed_images())
    assert set(counted) == {reason for reason, _ in malformed_images()}
    assert node.proc.poll() is None, node.output
    labels = probe.messages("labels")[-1]
    assert (labels.height, labels.width, labels.encoding) == (H, W, "mono8")
    warnings = [line for line in node.output.splitlines() if "dropping a bad frame" in line]
    assert 1 <= len(warnings) <= took / WARN_PERIOD_S + 2, "warnings must be rate-limited"
    assert "Traceback" not in node.output


def test_broken_serialized_frames_are_counted_as_bad_serialization(
    node_and_probe: tuple[NodeProcess, Probe],
) -> None:
    node, probe = node_and_probe
    counted = _each_to_the_decoder(probe, probe.image_pub.publish, malformed_serialized(), good_images)
    assert counted == Counter({"bad_serialization": ROUNDS * len(malformed_serialized())})
    assert node.proc.poll() is None and "Traceback" not in node.output


def test_thousand_malformed_images_as_fast_as_they_come(node_and_probe: tuple[NodeProcess, Probe]) -> None:
    """Stress, unpaced: 1,000 malformed Images published back to back, a good frame after every ten. The
    node answers every good frame and accounts exactly for every malformed one: decoded and counted as
    bad, replaced in its buffer by a newer message, or lost in DDS history before reaching it."""
    node, probe = node_and_probe
    bad = [msg for _, msg in malformed_images()]
    first = 1_799_000_000_000_000_000  # the node learns our sequence numbers, so every later loss is counted
    probe.image_pub.publish(good_images(first))
    probe.wait_until(lambda: any(stamp_ns(m) == first for m in probe.messages("labels")), 10, "the first frame")
    sent_bad = 0
    for g in range(GOOD_FRAMES):
        for _ in range(MALFORMED_PER_GOOD):
            probe.image_pub.publish(bad[sent_bad % len(bad)])
            sent_bad += 1
        stamp = 1_800_000_000_000_000_000 + g * 1_000_000
        # The good frame goes last, so no malformed message can displace it from the node's one-slot buffer.
        probe.image_pub.publish(good_images(stamp))
        probe.wait_until(
            lambda s=stamp: any(stamp_ns(m) == s for m in probe.messages("labels")), 10, f"the answer to good frame {g}"
        )
    assert node.proc.poll() is None, node.output
    assert {stamp_ns(m) for m in probe.messages("labels")} >= {first}
    assert len({stamp_ns(m) for m in probe.messages("labels")}) == GOOD_FRAMES + 1

    def accounted() -> bool:
        v = probe.diagnostics()
        parts = ("bad_frames", "frames_replaced", "frames_lost_in_transport")
        return int(v.get("frames_processed", 0)) == GOOD_FRAMES + 1 and sum(int(v.get(k, 0)) for k in parts) == sent_bad

    try:
        probe.wait_until(accounted, 10, "diagnostics")
    except AssertionError as exc:
        raise AssertionError(f"diagnostics miss some of {sent_bad} malformed frames: {probe.diagnostics()}") from exc
    values = probe.diagnostics()
    assert int(values["bad_frames"]) == sum(_bad_by_reason(probe).values())
    assert int(values["frames_dropped"]) == int(values["frames_replaced"]) + int(values["frames_lost_in_transport"])
    assert "Traceback" not in node.output


def test_every_malformed_compressed_kind_reaches_the_decoder_and_is_counted(spec_path: Path) -> None:
    domain = unique_domain_id(8)
    probe = Probe(domain)
    node = NodeProcess(
        domain,
        {"model": str(spec_path), "backend": "onnxruntime", "input_transport": "compressed", "diagnostics_period": 0.1},
    )
    try:
        node.wait_for_log("subscribed to /camera/image/compressed")
        probe.wait_for_subscribers(probe.compressed_pub)
        probe.wait_for_node_outputs()
        fmt, jpeg = encode_compressed(smooth_image(H, W, seed=3), "RGB", "jpeg")

        def good(stamp: int) -> CompressedImage:
            msg = CompressedImage(format=fmt, data=jpeg)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            return msg

        kinds = malformed_compressed(jpeg)
        counted = _each_to_the_decoder(probe, probe.compressed_pub.publish, kinds, good)
        assert counted.total() == ROUNDS * len(kinds)
        assert set(counted) == {reason for reason, _ in kinds}
        assert node.proc.poll() is None
        assert "Traceback" not in node.output
    finally:
        node.stop()
        probe.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_clean_shutdown_while_frames_flow(node_and_probe: tuple[NodeProcess, Probe], sig: int) -> None:
    node, probe = node_and_probe
    stop = threading.Event()
    frame = smooth_image(H, W, seed=1)

    def stream() -> None:
        i = 0
        while not stop.is_set():
            probe.image_pub.publish(image_msg(frame, "rgb8", 1_900_000_000_000_000_000 + i))
            i += 1
            time.sleep(1 / 60)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        probe.wait_until(lambda: len(probe.messages("labels")) >= 10, 15, "frames flowing")
        node.stop(sig, timeout=10)  # killed (exit -9) if it does not stop by itself
    finally:
        stop.set()
        sender.join(timeout=2)
    assert node.proc.returncode == 0, node.output  # the time it takes is a soak/benchmark figure
    assert "Traceback" not in node.output

"""Malformed frames never take the node down: each is counted and warned about (rate-limited), and the
good frames around them are answered normally. Shutdown is clean while frames are flowing."""

from __future__ import annotations

import array
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros_harness import NodeProcess, Probe, image_msg, node_with_probe, stamp_ns, unique_domain_id
from sensor_msgs.msg import CompressedImage, Image
from tiny_models import smooth_image

from seg_perception.core.image_codec import encode_compressed

W, H = 96, 64
MALFORMED_PER_GOOD = 10
GOOD_FRAMES = 100  # -> 1,000 malformed messages


def _raw(encoding: str, height: int, width: int, step: int, data: bytes, bigendian: int = 0) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=bigendian)
    buf = array.array("B")
    buf.frombytes(data)
    msg.data = buf
    return msg


def malformed_images() -> list[Image]:
    """One of each kind of broken Image a bad driver or a corrupted recording produces."""
    ok = bytes(W * H * 3)
    return [
        _raw("rgb8", 0, W, W * 3, b""),
        _raw("rgb8", H, 0, 0, b""),
        _raw("rgb8", H, W, W * 3 - 1, ok),  # step smaller than a row
        _raw("rgb8", H, W, W * 3, ok[:-7]),  # data short
        _raw("rgb8", H, W, W * 3, ok + b"\0" * 5),  # data long
        _raw("rgb9", H, W, W * 3, ok),  # unknown encoding
        _raw("", H, W, W * 3, ok),  # empty encoding
        _raw("yuv422", H, W + 1, (W + 1) * 2, bytes((W + 1) * 2 * H)),  # odd width for 4:2:2
        _raw("bayer_rggb8", H + 1, W, W, bytes(W * (H + 1))),  # odd height for bayer
        _raw("mono16", H, W, W * 2, bytes(W * 2 * H - 1)),  # 16-bit, one byte short
        _raw("rgb8", 100_000, 100_000, 300_000, ok),  # absurd size: refused before reading data
        _raw("rgb8", 1, 2**31 - 1, 2**32 - 1, b"\0" * 16),  # overflow bait
    ]


def good_images(stamp: int) -> Image:
    """Valid frames in rotating encodings, 16-bit big- and little-endian included."""
    rgb = smooth_image(H, W, seed=stamp % 1000)
    kind = stamp % 4
    if kind == 0:
        return image_msg(rgb, "rgb8", stamp)
    if kind == 1:
        return image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", stamp, step=W * 3 + 4)
    gray16 = rgb[..., 1].astype(np.uint16) * 257
    if kind == 2:
        return _be_mono16(gray16, stamp)
    return image_msg(np.ascontiguousarray(rgb.astype(np.uint16) * 257).view(np.uint8).reshape(H, W * 6), "rgb16", stamp)


def _be_mono16(gray16: np.ndarray, stamp: int) -> Image:
    msg = _raw("mono16", H, W, W * 2, gray16.astype(">u2").tobytes(), bigendian=1)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = "camera_front"
    return msg


def _diag_values(probe: Probe) -> dict[str, str]:
    diags = probe.messages("diagnostics")
    return {kv.key: kv.value for kv in diags[-1].status[0].values} if diags else {}


@pytest.fixture
def node_and_probe(spec_path: Path) -> Iterator[tuple[NodeProcess, Probe]]:
    params = {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.2}
    with node_with_probe(unique_domain_id(7), params) as pair:
        yield pair


def test_thousand_malformed_frames_interleaved_with_good_ones(node_and_probe: tuple[NodeProcess, Probe]) -> None:
    node, probe = node_and_probe
    bad = malformed_images()
    # One good frame first: the node learns our publication sequence numbers, so every later loss is counted.
    first = 1_799_000_000_000_000_000
    probe.image_pub.publish(good_images(first))
    probe.wait_until(lambda: any(stamp_ns(m) == first for m in probe.messages("labels")), 10, "the first frame")
    start = time.monotonic()
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
    took = time.monotonic() - start
    assert node.proc.poll() is None, node.output
    answered = {stamp_ns(m) for m in probe.messages("labels")}
    assert len(answered) == GOOD_FRAMES + 1
    labels = probe.messages("labels")[-1]
    assert (labels.height, labels.width, labels.encoding) == (H, W, "mono8")

    def counted() -> bool:
        v = _diag_values(probe)
        return int(v.get("bad_frames", 0)) + int(v.get("frames_dropped", 0)) == sent_bad

    try:
        probe.wait_until(counted, 5, "diagnostics")
    except AssertionError as exc:
        raise AssertionError(f"diagnostics miss some of {sent_bad} malformed frames: {_diag_values(probe)}") from exc
    values = _diag_values(probe)
    assert int(values["bad_frames"]) > 0
    assert int(values["frames_processed"]) == GOOD_FRAMES + 1
    warnings = [line for line in node.output.splitlines() if "dropping a bad frame" in line]
    assert 1 <= len(warnings) <= took / 5.0 + 2, "warnings must be rate-limited"
    assert "Traceback" not in node.output


def test_malformed_compressed_frames(spec_path: Path) -> None:
    domain = unique_domain_id(8)
    probe = Probe(domain)
    node = NodeProcess(
        domain,
        {"model": str(spec_path), "backend": "onnxruntime", "input_transport": "compressed", "diagnostics_period": 0.2},
    )
    try:
        node.wait_for_log("subscribed to /camera/image/compressed")
        probe.wait_for_subscribers(probe.compressed_pub)
        probe.wait_for_node_outputs()
        fmt, jpeg = encode_compressed(smooth_image(H, W, seed=3), "RGB", "jpeg")
        bad = [
            CompressedImage(format="jpeg", data=b""),
            CompressedImage(format="jpeg", data=jpeg[: len(jpeg) // 2]),
            CompressedImage(format="png", data=b"\x89PNG\r\n\x1a\n" + b"garbage" * 10),
            CompressedImage(format="jpeg", data=b"definitely not an image"),
            CompressedImage(format="webp", data=jpeg),
            CompressedImage(format="rgb8; tiff compressed rgb8", data=jpeg),
        ]
        for g in range(20):
            for msg in bad:
                probe.compressed_pub.publish(msg)
            good = CompressedImage(format=fmt, data=jpeg)
            stamp = 1_800_000_100_000_000_000 + g
            good.header.stamp.sec, good.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            probe.compressed_pub.publish(good)
            probe.wait_until(
                lambda s=stamp: any(stamp_ns(m) == s for m in probe.messages("labels")),
                10,
                f"the answer to good frame {g}",
            )
        assert node.proc.poll() is None
        probe.wait_until(lambda: int(_diag_values(probe).get("bad_frames", 0)) > 0, 5, "bad frames counted")
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
        took = node.stop(sig, timeout=10)
    finally:
        stop.set()
        sender.join(timeout=2)
    assert node.proc.returncode == 0, node.output
    assert took < 2.0, f"shutdown took {took:.2f} s"
    assert "Traceback" not in node.output

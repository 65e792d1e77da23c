"""Lossless PNG label outputs: `segmentation/labels/compressed` and `.../drivable_mask/compressed`.

Checked against image_transport's format string, decoded back to the exact labels over DDS and from a
processed bag, and published only to somebody listening.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ros_harness import image_msg, node_with_probe, stamp_ns, unique_domain_id
from sensor_msgs.msg import CompressedImage
from tiny_models import smooth_image

from seg_perception import cli
from seg_perception.bag.bag_io import typestore
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.image_cdr import frame_header, parse_compressed_image
from seg_perception.core.label_png import PNG_MONO8_FORMAT, decode_label_png, encode_label_png
from seg_perception.pipeline import ALL_OUTPUTS, OutputSelection, Segmenter, SegResult
from seg_perception.ros.camera_channel import CameraChannel
from seg_perception.ros.stage_times import FrameTimes

W, H = 320, 180


def test_format_string_is_image_transports_for_mono8_png() -> None:
    # compressed_image_transport appends "; png compressed " to the encoding, and nothing more for mono.
    assert PNG_MONO8_FORMAT == "mono8; png compressed "


def test_png_round_trips_every_label_value() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 256, (37, 53), dtype=np.uint8)  # odd size, noise, 255 (unlabelled) included
    labels[0, 0] = 255
    data = encode_label_png(labels)
    assert bytes(data[:8]) == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_label_png(data.tobytes()), labels)


def test_a_colour_image_is_refused() -> None:
    with pytest.raises(SegPerceptionError, match="2-D uint8"):
        encode_label_png(np.zeros((4, 4, 3), np.uint8))


class _Pub:
    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.sent: list[Any] = []

    def get_subscription_count(self) -> int:
        return self.subscribers

    def publish(self, msg: Any) -> None:
        self.sent.append(msg)


def test_png_is_encoded_only_for_a_subscriber() -> None:
    ch = CameraChannel("front", "")
    ch.publishers = {"labels": _Pub(1), "labels/compressed": _Pub(0), "drivable_mask/compressed": _Pub(1)}
    assert ch.wanted().drivable  # a drivable_mask/compressed subscriber needs the drivable mask computed
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    ch.publish(frame_header(0, 5, "cam"), SegResult(labels=labels, drivable=labels * 0 + 255), FrameTimes())
    assert ch.publishers["labels/compressed"].sent == []
    (sent,) = ch.publishers["drivable_mask/compressed"].sent  # serialized, as the node publishes it
    msg = parse_compressed_image(sent)
    assert (msg.format, msg.header.frame_id, msg.header.stamp_ns) == (PNG_MONO8_FORMAT, "cam", 5)
    assert np.array_equal(decode_label_png(bytes(msg.data)), np.full((3, 4), 255, np.uint8))


def test_compressed_labels_over_dds_decode_to_the_exact_labels(spec_path: Path, segmenter: Segmenter) -> None:
    params = {"model": str(spec_path), "backend": "onnxruntime"}
    with node_with_probe(unique_domain_id(7), params) as (_, probe):
        probe.record(CompressedImage, "segmentation/labels/compressed", "labels_png")
        probe.record(CompressedImage, "segmentation/drivable_mask/compressed", "drivable_png")
        for topic in ("labels/compressed", "drivable_mask/compressed"):
            full = f"/camera/segmentation/{topic}"
            probe.wait_until(lambda t=full: probe.node.count_publishers(t) > 0, 20.0, f"a publisher on {full}")
        rgb = smooth_image(H, W, seed=21)
        expected = segmenter.segment(np.ascontiguousarray(rgb), "RGB", ALL_OUTPUTS)
        assert expected.drivable is not None
        stamp = 1_700_000_050_000_000_001
        found: dict[str, Any] = {}
        polls = [0]

        def arrived() -> bool:  # our subscriptions may match the node after a first frame: resend until they do
            for name in ("labels_png", "drivable_png"):
                mine = [m for m in probe.messages(name) if stamp_ns(m) == stamp]
                if mine:
                    found[name] = mine[0]
            if len(found) < 2 and polls[0] % 25 == 0:  # every 25th poll (~0.5 s), not a flood
                probe.image_pub.publish(image_msg(rgb, "rgb8", stamp, "cam_png"))
            polls[0] += 1
            return len(found) == 2

        probe.wait_until(arrived, 30.0, "both PNG outputs")
        for name, want in (("labels_png", expected.labels), ("drivable_png", expected.drivable)):
            msg = found[name]
            assert msg.format == "mono8; png compressed ", name
            assert msg.header.frame_id == "cam_png", name
            assert np.array_equal(decode_label_png(bytes(msg.data)), want), name


def test_process_writes_png_outputs(tmp_path: Path, spec_path: Path, segmenter: Segmenter) -> None:
    from rosbags.rosbag2 import Reader

    in_bag, out_bag = tmp_path / "in", tmp_path / "out"
    assert cli.main(["synth", "--bag", str(in_bag), "--frames", "3", "--size", "160x96", "--rate", "10"]) == 0
    outputs = "labels/compressed,drivable_mask/compressed"
    args = ["process", str(in_bag), str(out_bag), "--model", str(spec_path), "--backend", "onnxruntime"]
    assert cli.main([*args, "--outputs", outputs, "--copy-inputs"]) == 0  # the frames are compared below
    store = typestore()
    by_topic: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    with Reader(out_bag) as reader:
        for conn, _, raw in reader.messages():
            by_topic[conn.topic].append((conn.msgtype, store.deserialize_cdr(bytes(raw), conn.msgtype)))
    frames = by_topic["/camera/front/image_raw"]
    assert len(frames) == 3
    for topic, attr in (("labels/compressed", "labels"), ("drivable_mask/compressed", "drivable")):
        written = by_topic[f"/camera/front/segmentation/{topic}"]
        assert len(written) == len(frames), topic
        for (_, src), (msgtype, out) in zip(frames, written, strict=True):
            assert msgtype == "sensor_msgs/msg/CompressedImage"
            assert out.format == PNG_MONO8_FORMAT and out.header == src.header
            pixels = np.asarray(src.data, np.uint8).reshape(src.height, src.step)[:, : src.width * 3]
            frame = pixels.reshape(src.height, src.width, 3)
            order = "BGR" if src.encoding == "bgr8" else "RGB"
            want = getattr(segmenter.segment(np.ascontiguousarray(frame), order, OutputSelection(drivable=True)), attr)
            assert np.array_equal(decode_label_png(out.data), want), topic

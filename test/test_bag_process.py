"""`seg-perception process`: a bag in, the same bag plus the node's outputs out, all or nothing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from seg_perception import cli
from seg_perception.bag.bag_io import SEGMENTATION_OUTPUTS, typestore
from seg_perception.bag.offline_processing import OUTPUTS, output_namespace
from seg_perception.core import compressed_codec, image_codec
from seg_perception.pipeline import ALL_OUTPUTS, Segmenter
from seg_perception.synthetic.drive_bag import START_NS, SyntheticCamera, write_synthetic_drive

W, H = 160, 96
FRONT = "/camera/front/image_raw"
ALL = ",".join(SEGMENTATION_OUTPUTS)


def _process(spec_path: Path, in_bag: Path, out_bag: Path, *extra: str) -> int:
    return cli.main(
        ["process", str(in_bag), str(out_bag), "--model", str(spec_path), "--backend", "onnxruntime", *extra]
    )


def _read(bag: Path) -> dict[str, list[tuple[int, bytes, str]]]:
    """Every message of a bag by topic: (record timestamp, raw CDR, type)."""
    from rosbags.rosbag2 import Reader

    out: dict[str, list[tuple[int, bytes, str]]] = defaultdict(list)
    with Reader(bag) as reader:
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, bytes(raw), conn.msgtype))
    return dict(out)


def _msg(item: tuple[int, bytes, str]) -> Any:
    return typestore().deserialize_cdr(item[1], item[2])


def _pixels(msg: Any) -> np.ndarray:
    channels = {"mono8": 1, "rgb8": 3}[msg.encoding]
    rows = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    return rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows


def _decode(msg: Any, msgtype: str) -> tuple[np.ndarray, str]:
    if msgtype.endswith("CompressedImage"):
        return compressed_codec.compressed_to_inference_frame(msg.format, msg.data)
    return image_codec.to_inference_frame(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def _check_outputs(
    bag: dict[str, list[tuple[int, bytes, str]]], camera_topic: str, outputs: tuple[str, ...], segmenter: Segmenter
) -> None:
    """One output per input frame per output topic, with the input's timestamp and header, equal to the
    Segmenter's result on the same decoded frame."""
    ns = output_namespace(camera_topic, bag[camera_topic][0][2])
    frames = bag[camera_topic]
    for name in outputs:
        got = bag[f"{ns}/segmentation/{name}"]
        assert len(got) == len(frames), name
        for src, out in zip(frames, got, strict=True):
            assert out[0] == src[0], f"{name}: record timestamp"
            src_msg, out_msg = _msg(src), _msg(out)
            assert out_msg.header == src_msg.header, name
            frame, order = _decode(src_msg, src[2])
            expected = getattr(segmenter.segment(frame, order, ALL_OUTPUTS), OUTPUTS[name][0])
            assert out_msg.encoding == OUTPUTS[name][1]
            assert np.array_equal(_pixels(out_msg), expected), f"{name} differs from the Segmenter's"
    infos = bag[f"{ns}/segmentation/camera_info"]
    assert [i[0] for i in infos] == [f[0] for f in frames]
    assert [_msg(i).header for i in infos] == [_msg(f).header for f in frames]


def _metadata_counts(bag: Path) -> dict[str, int]:
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    assert info["message_count"] == sum(counts.values())
    assert info["files"][0]["message_count"] == info["message_count"]
    return counts


def test_output_topics_are_named_as_the_node_names_them() -> None:
    image, compressed = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"
    assert output_namespace("/camera/front/image_raw", image) == "/camera/front"
    assert output_namespace("/camera/front/image_raw/compressed", compressed) == "/camera/front"
    assert output_namespace("/cam/image", image) == "/cam"
    assert output_namespace("/image", image) == ""


@pytest.mark.parametrize(("in_storage", "out_storage"), [("mcap", "sqlite3"), ("sqlite3", "mcap")])
def test_process_adds_one_output_per_frame_with_the_input_header(
    tmp_path: Path, spec_path: Path, segmenter: Segmenter, in_storage: str, out_storage: str
) -> None:
    in_bag, out_bag = tmp_path / "in", tmp_path / "out"
    args = ["--frames", "4", "--size", f"{W}x{H}", "--rate", "10", "--storage", in_storage]
    assert cli.main(["synth", "--bag", str(in_bag), *args]) == 0
    copy = "--copy-inputs"  # the camera images too (the default writes every other topic and the outputs)
    assert _process(spec_path, in_bag, out_bag, "--outputs", ALL, "--storage", out_storage, copy) == 0

    for bag, storage in ((in_bag, in_storage), (out_bag, out_storage)):
        meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        assert meta["storage_identifier"] == storage
    source, result = _read(in_bag), _read(out_bag)
    assert [t for t, _, _ in source[FRONT]] == [START_NS + i * 100_000_000 for i in range(4)]
    for topic, messages in source.items():
        assert result[topic] == messages, f"{topic} was not copied unchanged"
    _check_outputs(result, FRONT, SEGMENTATION_OUTPUTS, segmenter)
    assert _metadata_counts(out_bag) == {topic: len(m) for topic, m in result.items()}
    assert set(result) == set(source) | {
        f"/camera/front/segmentation/{n}" for n in (*SEGMENTATION_OUTPUTS, "camera_info")
    }


def test_process_leaves_the_camera_images_out_unless_asked(
    tmp_path: Path, spec_path: Path, segmenter: Segmenter, caplog: pytest.LogCaptureFixture
) -> None:
    in_bag = tmp_path / "in"
    assert cli.main(["synth", "--bag", str(in_bag), "--frames", "3", "--size", f"{W}x{H}", "--rate", "10"]) == 0
    with caplog.at_level(logging.INFO, logger="seg_perception"):
        assert _process(spec_path, in_bag, tmp_path / "out", "--outputs", "labels") == 0
    assert "(camera images left out: they stay in the input bag; --copy-inputs copies them)" in caplog.text
    source, result = _read(in_bag), _read(tmp_path / "out")
    assert FRONT not in result  # the images stay in the input bag
    assert set(result) == (set(source) - {FRONT}) | {
        "/camera/front/segmentation/labels",
        "/camera/front/segmentation/camera_info",
    }
    assert result["/camera/front/camera_info"] == source["/camera/front/camera_info"]
    assert [t for t, _, _ in result["/camera/front/segmentation/labels"]] == [t for t, _, _ in source[FRONT]]
    assert _process(spec_path, in_bag, tmp_path / "copied", "--outputs", "labels", "--copy-inputs") == 0
    assert _read(tmp_path / "copied")[FRONT] == source[FRONT]


def test_compressed_inputs_and_several_cameras(tmp_path: Path, spec_path: Path, segmenter: Segmenter) -> None:
    in_bag = tmp_path / "in"
    left = SyntheticCamera("/camera/left/image_raw", compressed=True)
    write_synthetic_drive(in_bag, 3, [SyntheticCamera(FRONT), left], W, H, rate_hz=10, storage="mcap")
    assert _process(spec_path, in_bag, tmp_path / "both", "--outputs", "labels,overlay", "--copy-inputs") == 0
    both = _read(tmp_path / "both")
    _check_outputs(both, FRONT, ("labels", "overlay"), segmenter)
    _check_outputs(both, left.image_topic, ("labels", "overlay"), segmenter)

    # --topics picks cameras; everything else is still copied.
    assert _process(spec_path, in_bag, tmp_path / "left", "--topics", left.image_topic, "--copy-inputs") == 0
    only_left = _read(tmp_path / "left")
    assert not any(t.startswith("/camera/front/segmentation") for t in only_left)
    assert only_left[FRONT] == both[FRONT]
    _check_outputs(only_left, left.image_topic, ("labels", "drivable_mask"), segmenter)


def test_unknown_topic_is_refused_naming_the_camera_topics(
    tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_synthetic_drive(tmp_path / "in", 1, width=W, height=H)
    assert _process(spec_path, tmp_path / "in", tmp_path / "out", "--topics", "/camera/rear/image_raw") == 2
    assert f"camera topics: {FRONT}" in caplog.text
    assert not (tmp_path / "out").exists()


def test_existing_out_bag_is_kept_unless_force(
    tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    in_bag, out_bag = tmp_path / "in", tmp_path / "out"
    write_synthetic_drive(in_bag, 2, width=W, height=H, storage="sqlite3")
    assert _process(spec_path, in_bag, out_bag, "--outputs", "labels") == 0
    before = _metadata_counts(out_bag)
    assert _process(spec_path, in_bag, out_bag, "--outputs", "labels,overlay") == 2
    assert "exists; pass --force" in caplog.text
    assert _metadata_counts(out_bag) == before
    assert _process(spec_path, in_bag, out_bag, "--outputs", "labels,overlay", "--force") == 0
    assert _metadata_counts(out_bag)["/camera/front/segmentation/overlay"] == 2
    assert _process(spec_path, in_bag, in_bag, "--force") == 2  # never over its own input
    assert "would overwrite the input bag" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_no_out_bag(
    tmp_path: Path, spec_path: Path, monkeypatch: pytest.MonkeyPatch, interruption: type[BaseException]
) -> None:
    in_bag, out_bag = tmp_path / "in", tmp_path / "out"
    write_synthetic_drive(in_bag, 5, width=W, height=H)
    real_segment = Segmenter.segment
    calls = []

    def segment_then_stop(self: Segmenter, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise interruption("stop here")
        return real_segment(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", segment_then_stop)
    if interruption is KeyboardInterrupt:
        assert _process(spec_path, in_bag, out_bag) == 130
    else:
        with pytest.raises(RuntimeError, match="stop here"):
            _process(spec_path, in_bag, out_bag)
    assert len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no OUT_BAG, no staging directory


def _damage(bag: Path, how: str) -> Path:
    storage_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    if how == "truncated":
        os.truncate(storage_file, storage_file.stat().st_size // 2)
    elif how == "garbage":
        storage_file.write_bytes(b"not a bag at all " * 64)
    elif how == "no_metadata":
        (bag / "metadata.yaml").unlink()
    elif how == "bad_metadata":
        (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9\n")
    return bag


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("how", ["truncated", "garbage", "bad_metadata"])
def test_corrupt_bag_is_one_clear_error(
    tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture, storage: str, how: str
) -> None:
    bag = _damage(write_synthetic_drive(tmp_path / "in", 3, width=W, height=H, storage=storage).path, how)
    assert _process(spec_path, bag, tmp_path / "out") == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith(f"error: cannot read bag {bag}"), errors[0]
    assert not (tmp_path / "out").exists()


def test_truncated_bag_from_the_command_line_exits_nonzero_without_traceback(tmp_path: Path, spec_path: Path) -> None:
    bag = _damage(write_synthetic_drive(tmp_path / "in", 2, width=W, height=H).path, "truncated")
    cmd = [
        sys.executable,
        "-m",
        "seg_perception.cli",
        "process",
        str(bag),
        str(tmp_path / "out"),
        "--model",
        str(spec_path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot read bag") and "truncated" in lines[0], done.stderr


def test_bad_frames_are_skipped_counted_and_fail_the_run(
    tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cut-off JPEG is a bad frame, not a bad bag: the others are segmented, and the exit status says 1."""
    from rosbags.rosbag2 import Writer

    src = _read(write_synthetic_drive(tmp_path / "in", 3, [SyntheticCamera(FRONT, compressed=True)], W, H).path)
    topic = f"{FRONT}/compressed"
    store = typestore()
    with Writer(tmp_path / "damaged", version=9) as writer:
        conn = writer.add_connection(topic, "sensor_msgs/msg/CompressedImage", typestore=store)
        for i, (t, raw, msgtype) in enumerate(src[topic]):
            if i == 1:
                msg = store.deserialize_cdr(raw, msgtype)
                msg.data = msg.data[: len(msg.data) // 2]
                raw = bytes(store.serialize_cdr(msg, msgtype))
            writer.write(conn, t, raw)
    assert _process(spec_path, tmp_path / "damaged", tmp_path / "out") == 1
    assert "skipping a bad frame on /camera/front/image_raw/compressed" in caplog.text
    out = _read(tmp_path / "out")
    assert [t for t, _, _ in out["/camera/front/segmentation/labels"]] == [src[topic][i][0] for i in (0, 2)]

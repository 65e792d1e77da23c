"""`seg-perception replay` of a bag whose camera is H.264 video (CompressedVideo, B-frames) into the node.

The replay publishes the recorded CDR unchanged with foxglove_msgs' real class (the stand-in built from its
definition, test/interface_packages.py); the node (video_input, image/video remapped onto the bag's topic)
decodes and segments it live. Each live output must equal `process`'s output for the same message: the same
stamp, frame_id and labels.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from fleet_bags import process, read_bag
from interface_packages import interface_env
from ros_harness import NodeProcess, Probe, stamp_ns, unique_domain_id

from seg_perception.bag.bag_io import COMPRESSED_VIDEO, typestore
from seg_perception.ros.node_process import isolated_ros_environment
from seg_perception.synthetic.video_drive import VideoSettings, write_video_drive

W, H, FRAMES = 160, 96, 14
NAMESPACE = "/camera/front"
LABELS = f"{NAMESPACE}/segmentation/labels"


def test_replay_of_a_video_bag_gives_the_labels_process_gives(tmp_path: Path, spec_path: Path) -> None:
    bag = tmp_path / "drive"
    settings = VideoSettings("libx264", gop=5, bframes=2)
    write_video_drive(bag, FRAMES, W, H, settings, COMPRESSED_VIDEO, f"{NAMESPACE}/video", 10.0, storage="mcap")
    assert process(spec_path, str(bag), str(tmp_path / "offline"), "--outputs", "labels") == 0
    store = typestore()
    offline = {}
    for _, raw, kind in read_bag(tmp_path / "offline")[LABELS]:
        msg = store.deserialize_cdr(raw, kind)
        offline[stamp_ns(msg)] = (msg.header.frame_id, np.asarray(msg.data, np.uint8).reshape(H, W))
    assert len(offline) == FRAMES

    env = interface_env("foxglove_msgs")
    domain = unique_domain_id()
    params = {"model": str(spec_path), "backend": "onnxruntime", "video_input": True, "diagnostics_period": 0.2}
    probe = Probe(domain, namespace=NAMESPACE, outputs=("labels",))
    node = NodeProcess(domain, params, namespace=NAMESPACE, extra_ros_args=["-r", "image/video:=video"], base_env=env)
    try:
        # Up and configured (a loaded machine): whether it then waits for the probe's image publisher or sees it
        # at once is discovery's race, so neither line is waited for.
        node.wait_for_log("warm-up on onnxruntime", timeout=90)
        probe.wait_for_node_outputs()
        cmd = [sys.executable, "-m", "seg_perception.cli", "replay", str(bag), "--wait-for-subscribers", "20"]
        done = subprocess.run(
            cmd, env=isolated_ros_environment(domain, env), capture_output=True, text=True, timeout=90, check=False
        )
        assert done.returncode == 0, done.stderr
        assert f"published {2 * FRAMES} messages on 2 topics" in done.stderr
        node.wait_for_log(f"subscribed to {NAMESPACE}/video ({COMPRESSED_VIDEO}, reliable, depth 64)")

        def settled() -> bool:
            d = probe.diagnostics()
            done = int(d.get("frames_processed", 0)) + int(d.get("frames_replaced", 0))
            return d.get("video_units_received") == str(FRAMES) and done == int(d.get("frames_received", -1))

        probe.wait_until(settled, 30, "every unit decoded and each picture segmented or replaced")
        d = probe.diagnostics()
        # Live, nothing flushes the decoder: the last pictures wait in its reordering delay (2 B-frames).
        assert FRAMES - 2 <= int(d["video_pictures_decoded"]) <= FRAMES
        assert (d["bad_frames"], d["video_skipped_before_keyframe"]) == ("0", "0")
        labels = probe.messages("labels")
        assert len(labels) == int(d["frames_processed"]) >= FRAMES - 5
        for msg in labels:
            frame_id, expected = offline[stamp_ns(msg)]
            assert msg.header.frame_id == frame_id == "camera_front"
            assert np.array_equal(np.asarray(msg.data, np.uint8).reshape(H, W), expected)
    finally:
        node.stop()
        probe.close()

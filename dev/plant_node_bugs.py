# ruff: noqa: E501, T201 - planted snippets must match the source lines exactly; this script reports by printing
"""Dev-only: plant one node/DDS/replay bug at a time in a scratch copy of the repository and run the
tests that must catch it (the real test files, importing the planted copy through PYTHONPATH).

    .venv/bin/python dev/plant_node_bugs.py [PLANT ...]      # all plants when none is named

Prints CAUGHT or NOT CAUGHT per plant with the failing tests. Never touches the repository itself.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
PY = SRC / ".venv/bin/python"
PLANTS = {
    "queueing_buffer": (
        "seg_perception/ros/camera_channel.py",
        [
            (
                "        self.pending: PendingFrame | None = None\n",
                "        self.pending: PendingFrame | None = None\n        import collections\n        self._queue: collections.deque[PendingFrame] = collections.deque()\n",
            ),
            (
                "            replaced = self.pending is not None\n            self.pending = pending\n",
                "            replaced = False\n            if self.pending is None:\n                self.pending = pending\n            else:\n                self._queue.append(pending)\n",
            ),
            (
                "        pending, self.pending = self.pending, None\n",
                "        pending, self.pending = self.pending, (self._queue.popleft() if self._queue else None)\n",
            ),
        ],
        [
            "test/test_camera_channel_keeps_newest_frame.py",
            "test/test_node_over_dds.py",
            "-k",
            "burst or newest or idle or gaps",
        ],
    ),
    "camera_info_frame_id_dropped": (
        "seg_perception/ros/messages.py",
        [
            (
                "    out = CameraInfo()\n    out.header = header\n",
                "    out = CameraInfo()\n    out.header.stamp = header.stamp\n",
            ),
        ],
        ["test/test_node_over_dds.py", "-k", "camera_info"],
    ),
    "backend_auto_reason_not_logged": (
        "seg_perception/ros/segmentation_node.py",
        [
            (
                'f"backend {self.segmenter.backend_name}: {self.segmenter.backend_reason}"',
                'f"backend {self.segmenter.backend_name}"',
            ),
        ],
        ["test/test_node_diagnostics_over_dds.py", "-k", "auto"],
    ),
    "backend_auto_reason_not_in_diagnostics": (
        "seg_perception/ros/segmentation_node.py",
        [
            ('"backend_reason": self.segmenter.backend_reason,', '"backend_reason": "",'),
        ],
        ["test/test_node_diagnostics_over_dds.py", "-k", "auto"],
    ),
    "replay_reencodes_images": (
        "seg_perception/bag/replay.py",
        [
            (
                "        self.publishers[(conn.topic, conn.msgtype)].publish(data if isinstance(data, bytes) else bytes(data))\n",
                "        from rclpy.serialization import deserialize_message\n"
                "        pub = self.publishers[(conn.topic, conn.msgtype)]\n"
                "        msg = deserialize_message(bytes(data), pub.msg_type)\n"
                "        if conn.msgtype == 'sensor_msgs/msg/Image':\n"
                "            import array, numpy as np\n"
                "            px = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)[..., ::-1]\n"
                "            buf = array.array('B'); buf.frombytes(np.ascontiguousarray(px).tobytes()); msg.data = buf\n"
                "            msg.encoding = 'bgr8'\n"
                "        pub.publish(msg)\n",
            ),
        ],
        ["test/test_bag_replay_into_node.py", "-k", "bytes or loop or offset"],
    ),
    # An equivalent mutant, kept as a control: rclpy re-serializes a deserialized message to the very same
    # CDR bytes, so nothing observable changes and NOT CAUGHT is the expected result.
    "equivalent_replay_reserializes_messages": (
        "seg_perception/bag/replay.py",
        [
            (
                "        self.publishers[(conn.topic, conn.msgtype)].publish(data if isinstance(data, bytes) else bytes(data))\n",
                "        from rclpy.serialization import deserialize_message\n"
                "        pub = self.publishers[(conn.topic, conn.msgtype)]\n"
                "        pub.publish(deserialize_message(bytes(data), pub.msg_type))\n",
            ),
        ],
        ["test/test_bag_replay_into_node.py", "-k", "bytes"],
    ),
    "replay_ignores_start_offset": (
        "seg_perception/bag/replay.py",
        [
            (
                "        start_ns = reader.start_time + int(options.start_offset_s * 1e9)\n",
                "        start_ns = reader.start_time\n",
            ),
        ],
        ["test/test_bag_replay_into_node.py", "-k", "offset"],
    ),
    "replay_ignores_loop": (
        "seg_perception/bag/replay.py",
        [
            ("                    if not options.loop:\n", "                    if True:\n"),
        ],
        ["test/test_bag_replay_into_node.py", "-k", "loop"],
    ),
    "replay_skips_silently": (
        "seg_perception/bag/replay.py",
        [
            (
                '                    LOG.warning("skipping %s: message type %s is not installed", conn.topic, conn.msgtype)\n',
                "",
            ),
        ],
        ["test/test_bag_replay_into_node.py", "-k", "skipped"],
    ),
    "all_outputs_always_computed": (
        "seg_perception/ros/camera_channel.py",
        [
            (
                "            return pub is not None and pub.get_subscription_count() > 0\n",
                "            return pub is not None\n",
            ),
        ],
        ["test/test_node_diagnostics_over_dds.py", "-k", "outputs"],
    ),
    "grid_computed_unsubscribed": (
        "seg_perception/ros/segmentation_node.py",
        [
            (
                "want_grid = lut is not None and self._grid_pub is not None and self._grid_pub.get_subscription_count() > 0",
                "want_grid = lut is not None and self._grid_pub is not None",
            ),
        ],
        ["test/test_node_diagnostics_over_dds.py", "-k", "outputs"],
    ),
    "incompatible_qos_not_logged": (
        "seg_perception/ros/segmentation_node.py",
        [
            (
                "            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible, ch)),\n",
                "",
            ),
        ],
        ["test/test_node_diagnostics_over_dds.py", "-k", "auto"],
    ),
    "bad_frame_reason_lost": (
        "seg_perception/ros/segmentation_node.py",
        [
            ("ch.stats.on_bad_frame(exc.reason)", "ch.stats.on_bad_frame()"),
        ],
        ["test/test_hostile_input_over_dds.py", "-k", "kind"],
    ),
    "one_malformed_kind_not_counted": (
        "seg_perception/ros/segmentation_node.py",
        [
            (
                "                ch.stats.on_bad_frame(exc.reason)\n",
                "                if exc.reason != 'odd_size':\n                    ch.stats.on_bad_frame(exc.reason)\n",
            ),
        ],
        ["test/test_hostile_input_over_dds.py", "-k", "image_kind"],
    ),
    "silent_cameras_stay_live": (
        "seg_perception/ros/camera_channel.py",
        [
            ("        return now - self.last_input < LIVE_FOR_S\n", "        return True\n"),
        ],
        ["test/test_lifecycle_and_multicamera.py", "-k", "batched"],
    ),
}


def main(names):
    for name in names or PLANTS:
        path, subs, tests = PLANTS[name]
        work = Path(tempfile.gettempdir()) / "seg_perception_plants" / name
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(SRC, work, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
        f = work / path
        text = f.read_text()
        for a, b in subs:
            if text.count(a) != 1:
                raise SystemExit(f"{name}: the code to plant into has changed ({a.strip()[:60]!r})")
            text = text.replace(a, b)
        f.write_text(text)
        env = dict(os.environ, PYTHONPATH=str(work))
        r = subprocess.run(
            ["timeout", "600", str(PY), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        summary = [
            line
            for line in r.stdout.splitlines()
            if line.startswith("FAILED") or " passed" in line or " failed" in line
        ]
        summary += [line[:200] for line in r.stdout.splitlines() if line.startswith("E  ")][:3]
        print(f"== {name}: {'CAUGHT' if r.returncode else 'NOT CAUGHT'}", *summary, sep="\n   ", flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""segmentation/label_info: vision_msgs/LabelInfo of the spec's classes, reliable + transient local.

vision_msgs is built here from its published definitions (test/vision_msgs_build.py); a subscriber that
joins after the node published receives it (latched) with every class id and name. Where vision_msgs does
not import, the node says so once at start and in /diagnostics (Nav2's layer needs label_info).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ros_harness import NodeProcess, Probe, unique_domain_id
from vision_msgs_build import build_vision_msgs, vision_msgs_env

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.ros.messages import LABEL_INFO_NEEDED_BY
from seg_perception.ros.node_process import isolated_ros_environment

# RIHS01 type hashes of the real vision_msgs (ros-perception/vision_msgs, ros2 branch), as its generated
# C code records them (label_info__description.c, vision_class hash referenced there).
REAL_HASHES = {
    "LabelInfo": "RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783",
    "VisionClass": "RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a",
}

SUBSCRIBER = """
import json, sys, rclpy
from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy, HistoryPolicy
from vision_msgs.msg import LabelInfo
rclpy.init()
node = rclpy.create_node("label_info_probe", namespace="/camera")
got = []
qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
node.create_subscription(LabelInfo, "segmentation/label_info", got.append, qos)
deadline = node.get_clock().now().nanoseconds + 60 * 10**9
while not got and node.get_clock().now().nanoseconds < deadline:
    rclpy.spin_once(node, timeout_sec=0.2)
if got:
    m = got[0]
    print(json.dumps({"ids": [c.class_id for c in m.class_map], "names": [c.class_name for c in m.class_map],
                      "threshold": m.threshold}))
sys.exit(0 if got else 3)
"""


def test_built_type_hashes_equal_the_real_vision_msgs() -> None:
    share = build_vision_msgs() / "vision_msgs" / "share" / "vision_msgs" / "msg"
    for name, expected in REAL_HASHES.items():
        hashes = json.loads((share / f"{name}.json").read_text())["type_hashes"]
        assert hashes[0] == {"type_name": f"vision_msgs/msg/{name}", "hash_string": expected}


def test_label_info_is_latched_with_the_spec_classes(spec_path: Path) -> None:
    env = vision_msgs_env(build_vision_msgs())
    domain = unique_domain_id(11)
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime"}, base_env=env)
    try:
        assert node.wait_for_log("waiting for a publisher on /camera/image", 60)  # configured: label_info is out
        probe = subprocess.run(  # joins after the node published: only transient local delivers it
            [sys.executable, "-c", SUBSCRIBER],
            env=isolated_ros_environment(domain, env),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        node.stop()
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "label_info is not published" not in node.output
    got = json.loads(probe.stdout.strip().splitlines()[-1])
    classes = load_model_spec(spec_path).classes
    assert got["ids"] == list(range(len(classes)))
    assert got["names"] == [c.name for c in classes]
    assert got["threshold"] == 0.0


HIDDEN = "No module named 'vision_msgs' (hidden by the test)"
WARNING = (
    f"segmentation/label_info is not published: vision_msgs is not importable ({HIDDEN}); "
    "Nav2's semantic segmentation layer needs it: install ros-<distro>-vision-msgs"
)


def _hidden_vision_msgs_env(tmp_path: Path) -> dict[str, str]:
    """The built vision_msgs' environment with a package first on PYTHONPATH that refuses to import."""
    env = vision_msgs_env(build_vision_msgs())
    shadow = tmp_path / "hide" / "vision_msgs"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ModuleNotFoundError({HIDDEN!r}, name='vision_msgs')\n")
    env["PYTHONPATH"] = f"{shadow.parent}:{env['PYTHONPATH']}"
    check = "import vision_msgs.msg"
    assert subprocess.run([sys.executable, "-c", check], env=vision_msgs_env(build_vision_msgs())).returncode == 0
    assert subprocess.run([sys.executable, "-c", check], env=env, capture_output=True).returncode == 1
    return env


def test_without_vision_msgs_the_node_warns_once_and_diagnostics_say_why(spec_path: Path, tmp_path: Path) -> None:
    env = _hidden_vision_msgs_env(tmp_path)
    domain = unique_domain_id(12)
    probe = Probe(domain)
    node = NodeProcess(
        domain, {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.2}, base_env=env
    )
    try:
        probe.wait_until(lambda: len(probe.messages("diagnostics")) >= 3, 60, "three /diagnostics messages")
        values = probe.diagnostics()
        topics = {name for name, _ in probe.node.get_topic_names_and_types()}
    finally:
        node.stop()
        probe.close()
    assert values["label_info"] == f"off: vision_msgs is not importable ({HIDDEN}); {LABEL_INFO_NEEDED_BY}"
    assert "/camera/segmentation/label_info" not in topics
    assert "/camera/segmentation/legend" in topics  # the node did configure: only label_info is off
    assert node.output.count("label_info is not published") == 1, node.output
    (line,) = [line for line in node.output.splitlines() if "label_info is not published" in line]
    assert line.startswith("[WARN]") and line.endswith(WARNING), line


def test_with_vision_msgs_diagnostics_say_label_info_is_published(spec_path: Path) -> None:
    domain = unique_domain_id(13)
    probe = Probe(domain)
    node = NodeProcess(
        domain,
        {"model": str(spec_path), "backend": "onnxruntime", "diagnostics_period": 0.2},
        base_env=vision_msgs_env(build_vision_msgs()),
    )
    try:
        probe.wait_until(lambda: bool(probe.diagnostics()), 60, "/diagnostics")
        values = probe.diagnostics()
    finally:
        node.stop()
        probe.close()
    assert values["label_info"] == "published"
    assert "label_info is not published" not in node.output

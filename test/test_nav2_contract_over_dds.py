"""Nav2's semantic segmentation layer, subscribing exactly as it does, gets mask, confidence and label_info.

The consumer, read at its source (kiwicampus/semantic_segmentation_layer, src/semantic_segmentation_layer.cpp,
SemanticSegmentationLayer::onInitialize, and src/segmentation_buffer.cpp):
  * `segmentation_topic` and `confidence_topic`: sensor_msgs/Image, `rmw_qos_profile_sensor_data` with depth 50
    (best effort, volatile, keep last 50), joined with the point cloud by message_filters::TimeSynchronizer,
    i.e. only messages with identical header stamps are used together;
  * the buffer reads both as one byte per pixel at `data[v * width + u]` (step is not consulted, so rows must
    be packed), the confidence on 0-255 (its no-confidence fallback fills 255), class ids as uint8;
  * `labels_topic`: vision_msgs/LabelInfo, reliable, transient local, keep last 5: the class map it needs
    before it buffers any mask ("Class map is empty because a labelinfo message has not been received").
The stand-in below subscribes with those QoS profiles, written out here rather than imported from the code
under test, to the topics named in the shipped config/nav2_semantic_segmentation_layer.yaml; it joins after
the node has published label_info, so only transient local can deliver it. The pairing by exact stamp is
what TimeSynchronizer does (message_filters has no wheel here).
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from ros_harness import NodeProcess, Probe, image_msg, unique_domain_id
from vision_msgs_build import build_vision_msgs, vision_msgs_env

from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import ALL_OUTPUTS, Segmenter
from seg_perception.ros.node_process import isolated_ros_environment
from seg_perception.ros.parameters import validate_parameters
from seg_perception.synthetic.scenes import generate_scene

ROOT = Path(__file__).resolve().parents[1]
LAYER_PARAMS = ROOT / "config" / "nav2_semantic_segmentation_layer.yaml"
NODE_PARAMS = ROOT / "config" / "seg_perception_nav2.yaml"
W, H = 1280, 720
FRAME_ID = "camera_color_optical_frame"
FIRST_STAMP_NS = 1_700_000_000_000_000_000
PERIOD_NS = 33_333_333

LAYER_STAND_IN = r"""
import base64, json, sys, time, rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import LabelInfo

topics = json.loads(sys.argv[1])
rclpy.init()
node = rclpy.create_node("semantic_segmentation_layer_stand_in")
# rmw_qos_profile_sensor_data with depth = 50, as the layer sets it
sensor = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.BEST_EFFORT,
                    durability=DurabilityPolicy.VOLATILE)
# rmw_qos_profile_default with depth 5, reliable, transient local, as the layer sets it
latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
masks, confidences, infos = {}, {}, []
stamp = lambda m: m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
node.create_subscription(Image, topics["segmentation_topic"], lambda m: masks.setdefault(stamp(m), m), sensor)
node.create_subscription(Image, topics["confidence_topic"], lambda m: confidences.setdefault(stamp(m), m), sensor)
node.create_subscription(LabelInfo, topics["labels_topic"], infos.append, latched)
deadline = time.monotonic() + 90
while time.monotonic() < deadline and not (infos and len(masks.keys() & confidences.keys()) >= 2):
    rclpy.spin_once(node, timeout_sec=0.1)

def image(m, with_data):
    out = {"stamp": stamp(m), "frame_id": m.header.frame_id, "encoding": m.encoding, "width": m.width,
           "height": m.height, "step": m.step, "is_bigendian": m.is_bigendian, "bytes": len(m.data)}
    if with_data:
        out["data"] = base64.b64encode(bytes(m.data)).decode()
    return out

paired = sorted(masks.keys() & confidences.keys())
report = {
    "masks": len(masks), "confidences": len(confidences), "seconds": round(time.monotonic() - deadline + 90, 1),
    "pairs": [{"mask": image(masks[s], s == paired[0]), "confidence": image(confidences[s], s == paired[0])}
              for s in paired],
    "label_info": [{"ids": [c.class_id for c in m.class_map], "names": [c.class_name for c in m.class_map],
                    "threshold": m.threshold, "frame_id": m.header.frame_id, "stamp": stamp(m)} for m in infos],
}
with open(sys.argv[2], "w") as out:  # a file, not stdout: a full pipe would keep this process from exiting
    json.dump(report, out)
sys.exit(0 if infos and paired else 3)
"""


def _layer_source() -> dict[str, Any]:
    """The shipped Nav2 params' one observation source of the semantic segmentation layer."""
    layer = yaml.safe_load(LAYER_PARAMS.read_text())["local_costmap"]["local_costmap"]["ros__parameters"]
    plugin = layer["semantic_segmentation_layer"]
    assert plugin["plugin"] == "semantic_segmentation_layer::SemanticSegmentationLayer"
    (source,) = plugin["observation_sources"].split()
    camera: dict[str, Any] = plugin[source]
    return camera


@pytest.fixture(scope="module")
def vision_env() -> dict[str, str]:
    return vision_msgs_env(build_vision_msgs())


@pytest.fixture(scope="module")
def reference() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A 1280x720 driving scene and the demo model's labels and confidence for it."""
    rgb = np.ascontiguousarray(generate_scene(3, W, H).image)
    with Segmenter(load_model_spec(default_spec_path()), backend="onnxruntime") as seg:
        result = seg.segment(rgb, "RGB", ALL_OUTPUTS)
        assert result.confidence is not None
        yield rgb, result.labels.copy(), result.confidence.copy()


def _serve_the_layer(
    env: dict[str, str], rgb: np.ndarray, extra_ros_args: list[str], report: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], set[int]]:
    """Start the node (demo model) and the layer stand-in, feed frames until the stand-in is done.

    Returns the stand-in's exit, the QoS the node's three publishers offer (as seen over DDS) and the stamps
    sent; the stand-in writes what it received to `report`.
    """
    source = _layer_source()
    topics = {k: source[k] for k in ("segmentation_topic", "confidence_topic", "labels_topic")}
    domain = unique_domain_id()
    probe = Probe(domain, outputs=(), record_camera_info=False)  # only the camera: the stand-in is the reader
    node = NodeProcess(domain, {"backend": "onnxruntime"}, extra_ros_args=extra_ros_args, base_env=env)
    layer: subprocess.Popen[str] | None = None
    sent: set[int] = set()
    try:
        node.wait_for_log("subscribed to /camera/image", 90)  # configured: label_info is already out
        probe.wait_for_subscribers(probe.image_pub, 60)
        layer = subprocess.Popen(
            [sys.executable, "-c", LAYER_STAND_IN, json.dumps(topics), str(report)],
            env=isolated_ros_environment(domain, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Best effort keeps nothing for a reader that has not matched yet: send frames until it is served.
        deadline = time.monotonic() + 150
        while layer.poll() is None and time.monotonic() < deadline:
            stamp = FIRST_STAMP_NS + len(sent) * PERIOD_NS
            probe.image_pub.publish(image_msg(rgb, "rgb8", stamp, FRAME_ID))
            sent.add(stamp)
            with contextlib.suppress(subprocess.TimeoutExpired):  # paces the frames; the stand-in decides
                layer.wait(timeout=0.3)
        stdout, stderr = layer.communicate(timeout=30)
        offered = {}
        for key, topic in topics.items():
            infos = probe.node.get_publishers_info_by_topic(topic)
            assert len(infos) == 1, f"{topic}: {len(infos)} publishers"
            offered[key] = infos[0].qos_profile
        result = subprocess.CompletedProcess(layer.args, layer.returncode, stdout, stderr)
    finally:
        if layer is not None and layer.poll() is None:
            layer.kill()
            layer.wait()
        node.stop()
        probe.close()
    return result, offered, sent


CONFIGS = {
    # The shipped Nav2 parameters: the layer's own best-effort profile on mask and confidence.
    "nav2_params_file": (["--params-file", str(NODE_PARAMS)], ReliabilityPolicy.BEST_EFFORT),
    # The defaults: reliable, which serves the layer's best-effort reader as well.
    "defaults": ([], ReliabilityPolicy.RELIABLE),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_layer_receives_mask_confidence_and_label_info(
    config: str,
    vision_env: dict[str, str],
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    ros_args, reliability = CONFIGS[config]
    rgb, labels, confidence = reference
    report = tmp_path / "layer.json"
    result, offered, sent = _serve_the_layer(vision_env, rgb, ros_args, report)
    got = json.loads(report.read_text()) if report.is_file() else {}
    summary = {k: got.get(k) for k in ("masks", "confidences", "seconds")}
    assert result.returncode == 0, f"{summary} {len(got.get('label_info', []))} label_info\n{result.stderr[-4000:]}"

    # What the node offers, seen over DDS.
    for key in ("segmentation_topic", "confidence_topic"):
        assert offered[key].reliability == reliability, key
        assert offered[key].durability == DurabilityPolicy.VOLATILE, key
    assert offered["labels_topic"].reliability == ReliabilityPolicy.RELIABLE
    assert offered["labels_topic"].durability == DurabilityPolicy.TRANSIENT_LOCAL

    # Every exact-time pair: one input frame's header on both, packed mono8 at camera resolution.
    assert got["pairs"], "no mask and confidence with the same stamp"
    for pair in got["pairs"]:
        mask, conf = pair["mask"], pair["confidence"]
        assert mask["stamp"] in sent and mask["stamp"] == conf["stamp"]
        assert mask["frame_id"] == conf["frame_id"] == FRAME_ID
        for image in (mask, conf):
            assert image["encoding"] == "mono8"
            assert (image["width"], image["height"], image["step"]) == (W, H, W)  # the layer indexes v*width+u
            assert image["is_bigendian"] == 0 and image["bytes"] == W * H
    first = got["pairs"][0]
    mask_pixels = np.frombuffer(base64.b64decode(first["mask"]["data"]), np.uint8).reshape(H, W)
    conf_pixels = np.frombuffer(base64.b64decode(first["confidence"]["data"]), np.uint8).reshape(H, W)
    np.testing.assert_array_equal(mask_pixels, labels)
    np.testing.assert_array_equal(conf_pixels, confidence)

    # Confidence on the layer's 0-255 scale: the top class's probability is at least 1/C of 255.
    spec = load_model_spec(default_spec_path())
    assert int(conf_pixels.min()) >= 255 // spec.num_classes
    assert int(conf_pixels.max()) > 200, "confidence looks like a 0-1 or 0-100 scale, not 0-255"

    # label_info: delivered to a reader that joined after it was published, with the spec's ids and names.
    (info,) = got["label_info"]
    assert info["ids"] == list(range(spec.num_classes))
    assert info["names"] == [c.name for c in spec.classes]
    assert info["threshold"] == 0.0
    assert info["frame_id"] == "" and info["stamp"] > 0  # stamped at configure, in no frame


def test_shipped_nav2_params_name_every_class_the_node_announces() -> None:
    """The layer logs a CRITICAL ERROR for a LabelInfo class its parameters do not cost, and ignores it."""
    source = _layer_source()
    costed = [name for kind in source["class_types"] for name in source[kind]["classes"]]
    assert len(costed) == len(set(costed)), "a class is costed twice"
    assert sorted(costed) == sorted(c.name for c in load_model_spec(default_spec_path()).classes)
    for kind in source["class_types"]:
        assert 0 <= source[kind]["mark_confidence"] <= 255, f"{kind}: mark_confidence is on the 0-255 scale"


def test_shipped_node_params_for_nav2_are_valid() -> None:
    document = yaml.safe_load(NODE_PARAMS.read_text())
    assert list(document) == ["/**"]
    values = document["/**"]["ros__parameters"]
    config = validate_parameters(values)
    assert config.output_resolution == "input"  # the layer pairs mask pixels 1:1 with the point cloud
    assert config.publish_confidence


def _nested_items(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _nested_items(value, (*path, str(key)))
    else:
        yield path, tree


def test_readme_nav2_snippet_is_the_shipped_params() -> None:
    """The docs' Nav2 YAML snippet is config/nav2_semantic_segmentation_layer.yaml, whole: it works pasted alone."""
    text = (ROOT / "docs" / "node.md").read_text()
    marker = "local_costmap:\n  local_costmap:\n"
    start = text.index(marker)
    snippet = yaml.safe_load(text[start : text.index("```", start)])
    shipped = dict(_nested_items(yaml.safe_load(LAYER_PARAMS.read_text())))
    items = dict(_nested_items(snippet))
    assert len(items) >= 10
    for path, value in items.items():
        assert path in shipped, f"docs snippet key {'.'.join(path)} is not in {LAYER_PARAMS.name}"
        assert shipped[path] == value, f"docs snippet {'.'.join(path)}: {value!r} != {shipped[path]!r}"
    missing = sorted(".".join(path) for path in set(shipped) - set(items))
    assert not missing, f"the docs snippet leaves out {missing}"
    source = snippet["local_costmap"]["local_costmap"]["ros__parameters"]["semantic_segmentation_layer"]["camera"]
    undefined = [kind for kind in source["class_types"] if kind not in source]
    assert not undefined, f"the docs snippet names class types it never defines: {undefined}"


@pytest.mark.parametrize("name", ["labels_qos_reliability", "confidence_qos_reliability"])
def test_an_output_qos_the_node_cannot_offer_is_refused_at_start_up(name: str) -> None:
    node = NodeProcess(unique_domain_id(), {"backend": "onnxruntime", name: "sensor_data"})
    try:
        node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert node.proc.returncode == 2, node.output
    assert f"parameter '{name}' = 'sensor_data': allowed values are reliable, best_effort" in node.output
    assert "Traceback" not in node.output
    assert len([line for line in node.output.splitlines() if "[FATAL]" in line]) == 1, node.output

"""The package's layers, lowest first: a module may import its own layer and any layer listed before it.

This table is the architecture's source of truth: `test/test_import_layers.py` checks every import of the
package against it, and `docs/architecture.md`'s layer table is generated from it. Data only, no imports.
"""

from __future__ import annotations

# (layer, its modules or folders under seg_perception/, what it does). Order is the rule.
LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("core", ("core", "cli_args", "layers"), "pure numpy/cv2/onnx: spec, graph compiler, codecs, metrics"),
    ("backends", ("backends",), "the inference interface: ONNX Runtime, TensorRT and its engine cache"),
    ("pipeline", ("pipeline",), "Segmenter: camera frame in, labels, masks, confidence out"),
    ("bag", ("bag",), "rosbag2 reading, writing, offline processing and replay"),
    ("synthetic", ("synthetic",), "generated road scenes and drives (tests, demo, calibration)"),
    ("ros", ("ros",), "everything that imports rclpy and message types: the node, QoS, messages"),
    ("evaluation", ("evaluation",), "ground-truth matching, accuracy runners and the HTML report"),
    ("fleet", ("fleet",), "many bags and evaluations on Ray, and the commands that can use it"),
    ("bench", ("bench",), "benchmarks, soak and the node bench"),
    (
        "entry",
        ("cli", "node", "demo", "engine_commands", "int8_flow", "train_demo_model", "__init__"),
        "entry points: parse, validate, wire, log",
    ),
)

# Third-party imports that may appear only in these places (module or folder names under seg_perception/).
CONFINED_IMPORTS: dict[str, tuple[str, ...]] = {
    "rclpy": ("ros", "bag/replay", "bench", "node"),
    "*_msgs": ("ros", "bag/replay", "bench", "node"),
    "tensorrt": ("backends",),
    "pycuda": ("backends",),
    "ray": ("fleet",),
    "torch": ("train_demo_model",),
}

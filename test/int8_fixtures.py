"""Zoo-style fixture nets for the INT8 tests, built with onnx.helper so INT8 is non-trivial.

Both nets are a few small convolutions over the normalised image, like the early layers of a real
segmentation net. Each has one *outlier channel*: a feature map scaled up by ``OUTLIER`` whose consumer's
weights are scaled down by the same factor. In fp32 that is an exact reparametrisation (the function does
not change), but a per-tensor INT8 scale on that feature map is set by the outlier, so every other channel
loses most of its resolution: full INT8 fails the accuracy gate, and keeping just that one layer in fp32
(mixed precision) repairs it. Real nets have such channels (unnormalised skip branches, large BN gains).

* ``multiclass_net``: the 8 scene classes; conv3x3 -> ReLU -> conv1x1 (outlier input) -> ReLU -> conv1x1
  logits. Random convolutions have logits in near-ties everywhere, which no INT8 survives, so the last
  conv is *trained*: fitted by ridge regression to generated scenes' labels (a linear probe), as a real
  head is trained on its features.
* ``two_head_net``: a shared conv3x3 trunk; a drivable head (1 conv) and a lane head (2 convs, the outlier
  inside it), both heads fitted the same way, merged by the spec into background / drivable / lane.
* ``narrow_range_net``: a tensor that stays within a few float32 steps of 1.0 feeds a conv (a gate): the
  input on which ONNX Runtime's default percentile calibration crashed ("Too many bins").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tiny_models import spec_dict, write_spec

OUTLIER = 400.0
MULTICLASS = ["road", "lane_marking", "sidewalk", "terrain", "building", "sky", "vehicle", "pedestrian"]
TWO_HEAD_CLASSES = ["background", "drivable", "lane"]
MODEL_W, MODEL_H = 64, 48
TRAIN_SEED = 50_000  # generated scenes the heads are fitted on (calibration uses 20_000+, tests 30_000+)
TRAIN_FRAMES = 12
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _w(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, shape).astype(np.float32)


def _inits(**arrays: np.ndarray) -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(a, n) for n, a in arrays.items()]


def _graph(nodes: list[onnx.NodeProto], outputs: dict[str, int], inits: dict[str, np.ndarray]) -> onnx.GraphProto:
    return helper.make_graph(
        nodes,
        "fixture",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, MODEL_H, MODEL_W])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, MODEL_H, MODEL_W]) for n, c in outputs.items()],
        _inits(**inits),
    )


def _training_set() -> tuple[np.ndarray, np.ndarray]:
    """Normalised NCHW model inputs and scene class ids of generated scenes, at the model's size."""
    from seg_perception.synthetic.scenes import generate_scene

    images, labels = [], []
    for i in range(TRAIN_FRAMES):
        scene = generate_scene(TRAIN_SEED + i, 2 * MODEL_W, 2 * MODEL_H)
        rgb = cv2.resize(scene.image, (MODEL_W, MODEL_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        images.append(((rgb / 255.0 - MEAN) / STD).transpose(2, 0, 1))
        labels.append(cv2.resize(scene.labels, (MODEL_W, MODEL_H), interpolation=cv2.INTER_NEAREST))
    return np.stack(images), np.stack(labels)


def _features(
    nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], name: str, channels: int, images: np.ndarray
) -> np.ndarray:
    """A feature map of the partial net, [pixels, channels + 1] (a ones column for the bias)."""
    import onnxruntime as ort

    partial = helper.make_model(_graph(nodes, {name: channels}, inits), opset_imports=[helper.make_opsetid("", 17)])
    partial.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the partial net leaves later layers' initializers unused
    session = ort.InferenceSession(partial.SerializeToString(), options, providers=["CPUExecutionProvider"])
    maps = np.concatenate([session.run([name], {"input": x[np.newaxis]})[0] for x in images])
    flat = maps.transpose(0, 2, 3, 1).reshape(-1, channels)
    return np.hstack([flat, np.ones((flat.shape[0], 1), np.float32)])


def _fit(features: np.ndarray, targets: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1x1 conv (weights, bias) fitted by ridge regression of one-hot targets: a trained linear head."""
    onehot = np.eye(classes, dtype=np.float32)[targets.ravel()] * 4.0 - 2.0
    gram = features.T @ features + 1e-2 * np.eye(features.shape[1], dtype=np.float32)
    solution = np.linalg.solve(gram, features.T @ onehot)  # [channels + 1, classes]
    return solution[:-1].T.reshape(classes, -1, 1, 1).astype(np.float32), solution[-1].astype(np.float32)


def multiclass_net(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    inits = {"w1": _w(rng, (16, 3, 3, 3), 0.5), "b1": _w(rng, (16,), 0.2)}
    inits |= {"w2": _w(rng, (16, 16, 1, 1), 0.4), "b2": _w(rng, (16,), 0.2)}
    inits["w1"][7] *= OUTLIER  # channel 7 of the first feature map is huge ...
    inits["b1"][7] *= OUTLIER
    inits["w2"][:, 7] /= OUTLIER  # ... and its consumer scales it back: the same function in fp32
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["f1"], pads=[1, 1, 1, 1], name="stem"),
        helper.make_node("Relu", ["f1"], ["f1r"], name="stem_relu"),
        helper.make_node("Conv", ["f1r", "w2", "b2"], ["f2"], name="mix"),
        helper.make_node("Relu", ["f2"], ["f2r"], name="mix_relu"),
    ]
    images, labels = _training_set()
    inits["w3"], inits["b3"] = _fit(_features(nodes, inits, "f2r", 16, images), labels, len(MULTICLASS))
    nodes.append(helper.make_node("Conv", ["f2r", "w3", "b3"], ["logits"], name="classifier"))
    return _save(_graph(nodes, {"logits": len(MULTICLASS)}, inits), path)


def two_head_net(path: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    inits = {"wt": _w(rng, (16, 3, 3, 3), 0.5), "bt": _w(rng, (16,), 0.2)}
    inits |= {"wl1": _w(rng, (8, 16, 1, 1), 0.4), "bl1": _w(rng, (8,), 0.2)}
    inits["wl1"][3] *= OUTLIER
    inits["bl1"][3] *= OUTLIER
    trunk = [
        helper.make_node("Conv", ["input", "wt", "bt"], ["t"], pads=[1, 1, 1, 1], name="trunk"),
        helper.make_node("Relu", ["t"], ["tr"], name="trunk_relu"),
    ]
    neck = [
        helper.make_node("Conv", ["tr", "wl1", "bl1"], ["l1"], name="lane_neck"),
        helper.make_node("Relu", ["l1"], ["l1r"], name="lane_relu"),
    ]
    images, labels = _training_set()
    drivable = np.isin(labels, [MULTICLASS.index("road"), MULTICLASS.index("lane_marking")]).astype(np.intp)
    lane = (labels == MULTICLASS.index("lane_marking")).astype(np.intp)
    inits["wd"], inits["bd"] = _fit(_features(trunk, inits, "tr", 16, images), drivable, 2)
    neck_features = _features(trunk + neck, inits, "l1r", 8, images)
    inits["wl2"], inits["bl2"] = _fit(neck_features, lane, 2)
    # Fitted with the outlier channel's own scale; its consumer's weights carry the inverse factor.
    heads = [
        helper.make_node("Conv", ["tr", "wd", "bd"], ["drivable"], name="drivable_head"),
        helper.make_node("Conv", ["l1r", "wl2", "bl2"], ["lane"], name="lane_head"),
    ]
    return _save(_graph(trunk + neck + heads, {"drivable": 2, "lane": 2}, inits), path)


def narrow_range_net(path: Path, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    w1, w2 = _w(rng, (4, 3, 1, 1), 1.0), _w(rng, (4, 3, 1, 1), 1.0)
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["feat"], name="features"),
        helper.make_node("Mul", ["input", "tiny"], ["small"], name="shrink"),
        helper.make_node("Add", ["small", "one"], ["near_one"], name="near_one"),  # 1.0 +- a few ulps
        helper.make_node("Conv", ["near_one", "w2"], ["gate"], name="gate"),
        helper.make_node("Mul", ["feat", "gate"], ["logits"], name="gated"),
    ]
    graph = helper.make_graph(
        nodes,
        "narrow_range",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, MODEL_H, MODEL_W])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, MODEL_H, MODEL_W])],
        _inits(w1=w1, w2=w2, tiny=np.array(1e-7, np.float32), one=np.array(1.0, np.float32)),
    )
    return _save(graph, path)


def multiclass_spec(directory: Path) -> Path:
    multiclass_net(directory / "multiclass.onnx")
    return write_spec(directory / "multiclass.yaml", spec_dict("multiclass.onnx", MULTICLASS))


def two_head_spec(directory: Path) -> Path:
    two_head_net(directory / "two_head.onnx")
    d: dict[str, Any] = spec_dict("two_head.onnx", TWO_HEAD_CLASSES)
    d["outputs"] = [
        {"name": "drivable", "kind": "logits", "channel_axis": 1, "classes": ["background", "drivable"]},
        {"name": "lane", "kind": "logits", "channel_axis": 1, "classes": [None, "lane"]},
    ]
    d["classes"][1]["drivable"] = True
    d["classes"][0]["drivable"] = False
    return write_spec(directory / "two_head.yaml", d)


def narrow_range_spec(directory: Path) -> Path:
    narrow_range_net(directory / "narrow.onnx")
    return write_spec(directory / "narrow.yaml", spec_dict("narrow.onnx", ["a", "b", "c", "d"]))

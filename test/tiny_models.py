"""Tiny ONNX segmentation models and specs built in code, for tests that must run in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TINY_CLASSES = ["road", "sidewalk", "building", "car", "person"]  # the shared fixture model's classes


def _save(model: onnx.GraphProto, path: Path, opset: int = OPSET) -> Path:
    m = helper.make_model(model, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def _conv_weights(classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2.0, (classes, 3, 1, 1)).astype(np.float32), rng.normal(0, 0.5, classes).astype(np.float32)


def conv_logits_model(
    path: Path, classes: int, height: int, width: int, seed: int = 0, stride: int = 1, batch: int | str = "N"
) -> Path:
    """NCHW float input 'input' -> 1x1 conv -> NCHW logits 'logits' (optionally strided: a coarser head)."""
    w, b = _conv_weights(classes, seed)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[1, 1], strides=[stride, stride])],
        "conv_logits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, height, width])],
        [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, [batch, classes, (height - 1) // stride + 1, (width - 1) // stride + 1]
            )
        ],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return _save(graph, path)


def nhwc_probabilities_model(path: Path, classes: int, height: int, width: int, seed: int = 1) -> Path:
    """NHWC float input -> per-pixel matmul -> softmax over the last axis: NHWC probabilities."""
    w, b = _conv_weights(classes, seed)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["zb"]),
            helper.make_node("Softmax", ["zb"], ["probs"], axis=-1),
        ],
        "nhwc_probs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", height, width, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", height, width, classes])],
        [numpy_helper.from_array(w[:, :, 0, 0].T.copy(), "w"), numpy_helper.from_array(b, "b")],
    )
    return _save(graph, path)


def labels_model(path: Path, classes: int, height: int, width: int, seed: int = 2) -> Path:
    """A model that already outputs int64 labels [N, H, W]."""
    w, b = _conv_weights(classes, seed)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[1, 1]),
            helper.make_node("ArgMax", ["logits"], ["labels"], axis=1, keepdims=0),
        ],
        "labels_out",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("labels", TensorProto.INT64, [1, height, width])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return _save(graph, path)


def red_channel_labels_model(path: Path, height: int, width: int) -> Path:
    """NCHW float input -> its first channel as int64 [1, 1, H, W] labels: with a spec of pixel_range 255,
    mean 0 and std 1 at the camera's size, the prediction is exactly the red channel of the image."""
    graph = helper.make_graph(
        [
            helper.make_node("Slice", ["input", "zero", "one", "axis"], ["red"]),
            helper.make_node("Cast", ["red"], ["labels"], to=TensorProto.INT64),
        ],
        "red_channel_labels",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 1, height, width])],
        [
            helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        ],
    )
    return _save(graph, path)


def red_channel_spec(onnx_name: str, classes: list[str], height: int, width: int) -> dict[str, Any]:
    """The spec of red_channel_labels_model: model input = pixel value, one labels head over `classes`."""
    spec = spec_dict(onnx_name, classes, width=width, height=height, pixel_range=255.0, mean=[0.0] * 3, std=[1.0] * 3)
    spec["outputs"] = [{"name": "labels", "kind": "labels", "classes": list(classes)}]
    return spec


def two_head_model(path: Path, height: int, width: int, seed: int = 3) -> Path:
    """A multi-task driving net: a 2-class drivable head and a 2-class lane head."""
    w1, b1 = _conv_weights(2, seed)
    w2, b2 = _conv_weights(2, seed + 1)
    b2 = b2 - np.array([0.0, 1.5], np.float32)  # lanes are rarer than drivable area
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w1", "b1"], ["drivable"], kernel_shape=[1, 1]),
            helper.make_node("Conv", ["input", "w2", "b2"], ["lane"], kernel_shape=[1, 1]),
        ],
        "two_heads",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [
            helper.make_tensor_value_info("drivable", TensorProto.FLOAT, [1, 2, height, width]),
            helper.make_tensor_value_info("lane", TensorProto.FLOAT, [1, 2, height, width]),
        ],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    return _save(graph, path)


PALETTE = [
    [128, 64, 128],
    [244, 35, 232],
    [70, 70, 70],
    [107, 142, 35],
    [70, 130, 180],
    [0, 0, 142],
    [220, 20, 60],
    [255, 255, 255],
]


def spec_dict(onnx_name: str, classes: list[str], **input_overrides: Any) -> dict[str, Any]:
    """A valid spec for a single-head logits model; tests edit it to cover other cases."""
    inp: dict[str, Any] = {
        "name": "input",
        "layout": "NCHW",
        "width": 64,
        "height": 48,
        "channel_order": "RGB",
        "pixel_range": 1.0,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    inp.update(input_overrides)
    return {
        "spec_version": 1,
        "name": Path(onnx_name).stem,
        "onnx": onnx_name,
        "input": inp,
        "outputs": [{"name": "logits", "kind": "logits", "channel_axis": 1, "classes": list(classes)}],
        "classes": [
            {"name": c, "color": PALETTE[i % len(PALETTE)], "drivable": i == 0, "obstacle": i == len(classes) - 1}
            for i, c in enumerate(classes)
        ],
        "ignore_id": 255,
    }


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random uint8 RGB image: upsampled noise, so resizing matters but is well defined."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def tiny_spec(directory: Path, classes: list[str], height: int = 48, width: int = 64) -> Path:
    """A 1x1-conv logits model and its spec in `directory`; returns the spec path."""
    conv_logits_model(directory / "m.onnx", len(classes), height, width)
    return write_spec(directory / "m.yaml", spec_dict("m.onnx", classes))


MULTI_TASK_CLASSES = ["background", "drivable", "lane"]


def multi_task_spec(directory: Path, height: int = 48, width: int = 64) -> Path:
    """two_head_model with lane painted over drivable, and a mask per head (drivable, lane)."""
    two_head_model(directory / "two_heads.onnx", height, width)
    spec = spec_dict("two_heads.onnx", MULTI_TASK_CLASSES, width=width, height=height)
    spec["outputs"] = [
        {"name": "drivable", "kind": "logits", "channel_axis": 1, "classes": ["background", "drivable"]},
        {"name": "lane", "kind": "logits", "channel_axis": 1, "classes": [None, "lane"]},
    ]
    for cls in spec["classes"]:
        cls["drivable"], cls["obstacle"] = cls["name"] == "drivable", False
    spec["masks"] = {
        "drivable": {"head": "drivable", "classes": ["drivable"]},
        "lane": {"head": "lane", "classes": ["lane"]},
    }
    return write_spec(directory / "two_heads.yaml", spec)


def static_batch_spec(directory: Path, classes: list[str], batch: int = 1) -> Path:
    """The 1x1-conv logits model exported with a fixed batch dimension (as most real exports are)."""
    conv_logits_model(directory / f"static{batch}.onnx", len(classes), 48, 64, batch=batch)
    return write_spec(directory / f"static{batch}.yaml", spec_dict(f"static{batch}.onnx", classes))


def model_input(frame: np.ndarray, width: int, height: int, mean: Any, std: Any) -> np.ndarray:
    """An RGB uint8 frame as the NCHW float input of a pixel_range 1.0 spec (bilinear, half-pixel)."""
    import cv2

    x = cv2.resize(frame.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[np.newaxis], np.float32)


def segformer_like_model(path: Path, classes: int, height: int, width: int, traced: bool = True, seed: int = 5) -> Path:
    """A Hugging Face SegFormer-shaped export: 'pixel_values' [batch_size, 3, H, W] -> stride-4 patch
    embedding -> tokens [B, h*w, C] -> layer norm -> back to a [B, C, h, w] grid -> 1x1 classifier ->
    'logits' [batch_size, classes, H/4, W/4], the batch symbolic in the declared input and output as
    `dynamic_axes` makes it. With `traced`, the two reshapes hold constant shapes with batch 1, as
    torch.onnx traces `x.reshape(batch_size, ...)` from a batch-1 example; without, they read the batch
    from Shape (as an export of `x.reshape(x.shape[0], ...)` does)."""
    rng = np.random.default_rng(seed)
    chans, h, w = 8, height // 4, width // 4
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (chans, 3, 4, 4)).astype(np.float32), "patch_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, chans).astype(np.float32), "patch_b"),
        numpy_helper.from_array(np.ones(chans, np.float32), "ln_scale"),
        numpy_helper.from_array(np.zeros(chans, np.float32), "ln_bias"),
        numpy_helper.from_array(rng.normal(0, 2.0, (classes, chans, 1, 1)).astype(np.float32), "cls_w"),
        numpy_helper.from_array(rng.normal(0, 0.5, classes).astype(np.float32), "cls_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "patch_w", "patch_b"], ["embed"], kernel_shape=[4, 4], strides=[4, 4])
    ]
    if traced:
        inits += [
            numpy_helper.from_array(np.array([1, chans, h * w], np.int64), "tokens_shape"),
            numpy_helper.from_array(np.array([1, h, w, chans], np.int64), "grid_shape"),
        ]
    else:
        inits += [
            numpy_helper.from_array(np.array([0], np.int64), "zero"),
            numpy_helper.from_array(np.array([chans, h * w], np.int64), "tokens_tail"),
            numpy_helper.from_array(np.array([h, w, chans], np.int64), "grid_tail"),
        ]
        nodes += [
            helper.make_node("Shape", ["pixel_values"], ["in_shape"]),
            helper.make_node("Gather", ["in_shape", "zero"], ["batch"], axis=0),
            helper.make_node("Concat", ["batch", "tokens_tail"], ["tokens_shape"], axis=0),
            helper.make_node("Concat", ["batch", "grid_tail"], ["grid_shape"], axis=0),
        ]
    nodes += [
        helper.make_node("Reshape", ["embed", "tokens_shape"], ["tokens_cf"]),
        helper.make_node("Transpose", ["tokens_cf"], ["tokens"], perm=[0, 2, 1]),
        helper.make_node("LayerNormalization", ["tokens", "ln_scale", "ln_bias"], ["normed"], axis=-1),
        helper.make_node("Reshape", ["normed", "grid_shape"], ["grid"]),
        helper.make_node("Transpose", ["grid"], ["features"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["features", "cls_w", "cls_b"], ["logits"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "segformer_like",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch_size", 3, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", classes, h, w])],
        inits,
    )
    return _save(graph, path)


def segformer_like_spec(directory: Path, classes: list[str], traced: bool = True) -> Path:
    """segformer_like_model (64x48 input, logits at 16x12) and its spec."""
    name = "segformer_traced" if traced else "segformer_dynamic"
    segformer_like_model(directory / f"{name}.onnx", len(classes), 48, 64, traced=traced)
    spec = spec_dict(f"{name}.onnx", classes, name="pixel_values")
    return write_spec(directory / f"{name}.yaml", spec)


def any_size_model(path: Path, classes: int, stride: int = 1, seed: int = 6) -> Path:
    """A fully convolutional net taking any height and width: 'input' [N, 3, H, W] -> a stride x stride
    patch conv -> logits [N, classes, H/stride, W/stride] (H and W must be multiples of the stride)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 2.0 / stride, (classes, 3, stride, stride)).astype(np.float32)
    b = rng.normal(0, 0.5, classes).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[stride] * 2, strides=[stride] * 2)],
        "any_size",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes, "h", "w"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return _save(graph, path)

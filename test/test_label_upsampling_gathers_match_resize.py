"""The fused graph upsamples labels, confidence and masks to the camera with constant-index Gathers
(graph_postprocess._nearest) instead of an ONNX nearest Resize: the same numbers, bit for bit, as the
Resize it replaced, for odd, upscaled, downscaled and unchanged sizes, with letterbox crops and the
bottom-right padding of native models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from tiny_models import TINY_CLASSES, conv_logits_model, spec_dict, write_spec

from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.graph_postprocess import _nearest, nearest_indices
from seg_perception.core.onnx_builder import GraphBuilder
from seg_perception.core.spec_loader import load_model_spec

# (h, w) -> (H, W): the demo's 1280x720, odd camera sizes, a downscale on one axis, an unchanged axis,
# and sizes where ONNX Runtime's float32 coordinate rule and the exact o * h // H disagree (14 -> 8, 14 -> 64).
SIZES = [
    ((192, 320), (720, 1280)),
    ((192, 320), (719, 1279)),
    ((192, 320), (1080, 1920)),
    ((7, 5), (1000, 999)),
    ((14, 14), (8, 64)),
    ((48, 64), (48, 333)),
    ((45, 80), (97, 80)),
    ((100, 30), (37, 23)),
]


def _session(b: GraphBuilder, out: str, h: int, w: int) -> ort.InferenceSession:
    b.op("Identity", [out], out="y")
    model = b.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        8,
    )
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _resize_nearest(h: int, w: int, height: int, width: int) -> ort.InferenceSession:
    """The op the Gathers replaced: a rank-4 nearest Resize (asymmetric, floor)."""
    b = GraphBuilder("r/", 17)
    four = b.resize(b.op("Unsqueeze", ["x", b.const([1], "axes")]), height, width, "nearest")
    return _session(b, b.op("Squeeze", [four, b.const([1], "axes")]), h, w)


def _gathers(h: int, w: int, out_hw: tuple[int, int], keep_hw: tuple[int, int] | None = None) -> ort.InferenceSession:
    b = GraphBuilder("g/", 17)
    return _session(b, _nearest(b, "x", (h, w), out_hw, keep_hw), h, w)


@pytest.mark.parametrize(("head", "camera"), SIZES)
def test_gathers_equal_the_nearest_resize_bit_for_bit(head: tuple[int, int], camera: tuple[int, int]) -> None:
    (h, w), (height, width) = head, camera
    x = np.random.default_rng(h * w).uniform(0, 255, (2, h, w)).astype(np.float32)  # batch 2: dynamic N
    expected = _resize_nearest(h, w, height, width).run(None, {"x": x})[0]
    got = _gathers(h, w, (height, width)).run(None, {"x": x})[0]
    assert got.shape == (2, height, width)
    assert np.array_equal(got, expected)


def test_the_cut_equals_resize_then_slice() -> None:
    """Native models' bottom-right padding: resize to the padded input, keep its top-left part."""
    h, w, x = 8, 13, np.random.default_rng(1).uniform(0, 255, (1, 8, 13)).astype(np.float32)
    expected = _resize_nearest(h, w, 64, 104).run(None, {"x": x})[0][:, :60, :100]
    assert np.array_equal(_gathers(h, w, (64, 104), (60, 100)).run(None, {"x": x})[0], expected)


def test_indices_follow_onnx_runtime_float_rule_not_exact_division() -> None:
    """14 -> 64: output 32 is exactly source 7 (32 * 14 / 64), but 32 / float32(64 / 14) is 6.9999995 in
    float32 and ONNX Runtime's Resize reads source 6; the Gathers must read what the Resize read."""
    assert nearest_indices(14, 64)[32] == 6 and 32 * 14 // 64 == 7
    probe = np.arange(14, dtype=np.float32).reshape(1, 1, 14)
    read = _resize_nearest(1, 14, 1, 64).run(None, {"x": probe})[0][0, 0].astype(np.int64)
    assert np.array_equal(read, nearest_indices(14, 64))


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize(("width", "height"), [(160, 90), (161, 97), (33, 200), (640, 480)])
def test_fused_labels_at_the_camera_are_the_resized_model_resolution_labels(
    tmp_path: Path, resize: str, width: int, height: int
) -> None:
    """End to end: labels and confidence at camera size are a nearest Resize of those at model resolution."""
    conv_logits_model(tmp_path / "m.onnx", len(TINY_CLASSES), 48, 64)
    spec = load_model_spec(write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", TINY_CLASSES, resize=resize)))
    frame = np.random.default_rng(width).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    outs = {}
    for resolution in ("model", "input"):
        graph = compile_fused_graph(spec, width, height, output_resolution=resolution)  # type: ignore[arg-type]
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        outs[resolution] = session.run(None, {"image": frame})
    for small, big in zip(outs["model"], outs["input"], strict=True):
        h, w = small.shape[1:]
        expected = _resize_nearest(h, w, height, width).run(None, {"x": small.astype(np.float32)})[0]
        assert np.array_equal(big, expected.astype(np.uint8))

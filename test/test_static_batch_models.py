"""Static-batch exports (most real ones) and symbolic-batch exports whose traced reshapes fix the batch:
frames run in chunks of the fixed batch; truly dynamic ones batch."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tiny_models import TINY_CLASSES, segformer_like_spec, smooth_image, static_batch_spec, tiny_spec

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.onnx_checks import BatchMode, batch_mode, fixed_batch_size, traced_batch
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import ALL_OUTPUTS, OutputSelection, Segmenter

FRAMES = [smooth_image(90, 160, seed=s) for s in range(3)]


@pytest.mark.parametrize("fixed", [1, 2])
def test_segment_batch_on_a_fixed_batch_model_equals_single_calls(tmp_path: Path, fixed: int) -> None:
    spec = load_model_spec(static_batch_spec(tmp_path, TINY_CLASSES, batch=fixed))
    with Segmenter(spec, backend="onnxruntime") as seg:
        assert seg.fixed_batch == fixed and seg.batch_mode == f"fixed {fixed}"
        single = [
            {k: v.copy() for k, v in vars(seg.segment(f, "RGB", ALL_OUTPUTS)).items() if isinstance(v, np.ndarray)}
            for f in FRAMES
        ]
        batch = seg.segment_batch(FRAMES, "RGB", [ALL_OUTPUTS] * 3)  # 3 frames: chunks of `fixed`, one partial
        assert len(batch) == 3
        for i, (one, r) in enumerate(zip(single, batch, strict=True)):
            for name, expected in one.items():
                assert np.array_equal(getattr(r, name), expected), f"frame {i} {name}"
        assert len({id(r.labels) for r in batch}) == 3  # each frame keeps its own labels
        assert seg.backend_for(160, 90, "RGB").input_shape[0] == fixed


def test_dynamic_batch_model_runs_all_frames_in_one_call(tmp_path: Path) -> None:
    spec = load_model_spec(tiny_spec(tmp_path, TINY_CLASSES))
    with Segmenter(spec, backend="onnxruntime") as seg:
        assert seg.fixed_batch is None and seg.batch_mode == "dynamic"
        backend = seg.backend_for(160, 90, "RGB")
        shapes: list[tuple[int, ...]] = []
        infer = backend.infer
        backend.infer = lambda batch: shapes.append(batch.shape) or infer(batch)  # type: ignore[method-assign]
        seg.segment_batch(FRAMES, "RGB", [OutputSelection(drivable=False)] * 3)
        assert shapes == [(3, 90, 160, 3)]


def test_a_symbolic_batch_that_traced_reshapes_fix_is_found_at_load_and_run_in_chunks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = load_model_spec(segformer_like_spec(tmp_path, TINY_CLASSES, traced=True))
    # The export is what HF SegFormer with dynamic_axes gives: two frames in one call fail inside the model.
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="Reshape"):
        session.run(None, {"pixel_values": np.zeros((2, 3, 48, 64), np.float32)})
    assert batch_mode(spec) == BatchMode(1, traced=True)
    with pytest.raises(ModelSpecError, match="fixed at 1 by its reshapes"):
        compile_fused_graph(spec, 160, 90, batch=2)
    with caplog.at_level(logging.WARNING, logger="seg_perception.pipeline"), Segmenter(spec, "onnxruntime") as seg:
        assert seg.fixed_batch == 1
        assert seg.batch_mode == "fixed 1 (the input batch is symbolic but the graph's reshapes fix 1)"
        assert any("frames run 1 at a time" in r.getMessage() for r in caplog.records)
        single = [seg.segment(f).labels.copy() for f in FRAMES]
        batch = seg.segment_batch(FRAMES)
        for i, (one, r) in enumerate(zip(single, batch, strict=True)):
            assert np.array_equal(r.labels, one), f"frame {i}"
        assert seg.backend_for(160, 90, "RGB").input_shape[0] == 1


def test_a_symbolic_batch_that_the_graph_follows_stays_dynamic(tmp_path: Path) -> None:
    spec = load_model_spec(segformer_like_spec(tmp_path, TINY_CLASSES, traced=False))
    assert batch_mode(spec) == BatchMode(None)
    with Segmenter(spec, backend="onnxruntime") as seg:
        assert seg.batch_mode == "dynamic"
        backend = seg.backend_for(160, 90, "RGB")
        shapes: list[tuple[int, ...]] = []
        infer = backend.infer
        backend.infer = lambda batch: shapes.append(batch.shape) or infer(batch)  # type: ignore[method-assign]
        labels = [r.labels.copy() for r in seg.segment_batch(FRAMES)]
        assert shapes == [(3, 90, 160, 3)]
        assert all(np.array_equal(a, seg.segment(f).labels) for a, f in zip(labels, FRAMES, strict=True))


def _reshaping_model(
    traced: int | None, declared: list[object] | None = None, input_batch: object = "N"
) -> onnx.ModelProto:
    """x [N, 3, 4, 4] -> Relu -> Reshape to [traced, 3, 4, 4] (a batch fixed at export), or to [-1, 3, 4, 4]
    (the batch followed) when traced is None; `declared` is the output shape the export claims."""
    shape = np.array([traced if traced is not None else -1, 3, 4, 4], np.int64)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [input_batch, 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, declared or ["N", 3, 4, 4])],
        [numpy_helper.from_array(shape, "shape")],
        value_info=[helper.make_tensor_value_info("r", TensorProto.FLOAT, [7, 3, 4, 4])],  # a stale claim
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("traced", [1, 2, 3, 4])
def test_a_batch_traced_at_any_size_is_found_even_at_a_probe_size(traced: int) -> None:
    # the probes are batch 2 and 3: a reshape traced at 2 agrees with the first, one at 3 with the second
    assert traced_batch(_reshaping_model(traced), "x", ["logits"]) == traced


def test_a_followed_batch_is_none_whatever_the_export_declared() -> None:
    assert traced_batch(_reshaping_model(None), "x", ["logits"]) is None
    assert traced_batch(_reshaping_model(None, declared=[5, 3, 4, 4]), "x", ["logits"]) is None
    assert traced_batch(_reshaping_model(2, declared=[5, 3, 4, 4]), "x", ["logits"]) == 2
    assert traced_batch(_reshaping_model(1), "x", ["other"]) is None  # a head the graph lacks tells nothing


def test_the_probe_copy_leaves_the_model_as_it_was() -> None:
    model = _reshaping_model(1, declared=[5, 3, 4, 4])
    before = model.SerializeToString()
    assert traced_batch(model, "x", ["logits"]) == 1
    assert model.SerializeToString() == before


def test_a_graph_shape_inference_refuses_is_taken_as_dynamic() -> None:
    model = _reshaping_model(1)
    model.graph.node[1].input[1] = "no_such_tensor"
    assert traced_batch(model, "x", ["logits"]) is None


def test_batch_mode_reads_a_static_input_batch_first_and_says_what_it_is(tmp_path: Path) -> None:
    spec = SimpleNamespace(input=SimpleNamespace(name="x"), heads=[SimpleNamespace(name="logits")], onnx_path=None)
    assert batch_mode(spec, _reshaping_model(1, input_batch=4)) == BatchMode(4)  # type: ignore[arg-type]
    assert batch_mode(spec, _reshaping_model(2, input_batch=1)) == BatchMode(1)  # type: ignore[arg-type]
    assert batch_mode(spec, _reshaping_model(2)) == BatchMode(2, traced=True)  # type: ignore[arg-type]
    assert batch_mode(spec, _reshaping_model(None)) == BatchMode(None)  # type: ignore[arg-type]
    zero = _reshaping_model(3)
    zero.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0  # 0 is no batch: the graph decides
    assert batch_mode(spec, zero) == BatchMode(3, traced=True)  # type: ignore[arg-type]
    other = SimpleNamespace(input=SimpleNamespace(name="y"), heads=[SimpleNamespace(name="logits")], onnx_path=None)
    # another input's static batch is not the spec input's: the reshapes decide
    assert batch_mode(other, _reshaping_model(1, input_batch=4)) == BatchMode(1, traced=True)  # type: ignore[arg-type]
    onnx.save(_reshaping_model(1, input_batch=2), str(tmp_path / "m.onnx"))
    on_disk = SimpleNamespace(input=spec.input, heads=spec.heads, onnx_path=tmp_path / "m.onnx")
    assert batch_mode(on_disk) == BatchMode(2)  # type: ignore[arg-type]
    assert fixed_batch_size(on_disk) == 2  # type: ignore[arg-type]
    onnx.save(_reshaping_model(None), str(tmp_path / "m.onnx"))
    assert fixed_batch_size(on_disk) is None  # type: ignore[arg-type]
    (tmp_path / "m.onnx").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(ModelSpecError, match=r"^model spec key 'onnx': .*m\.onnx is not a readable ONNX model"):
        batch_mode(on_disk)  # type: ignore[arg-type]


def test_a_batch_mode_says_what_it_is() -> None:
    assert str(BatchMode(None)) == "dynamic"
    assert str(BatchMode(None, traced=True)) == "dynamic"
    assert str(BatchMode(4)) == "fixed 4"
    assert str(BatchMode(2, traced=True)) == "fixed 2 (the input batch is symbolic but the graph's reshapes fix 2)"
    assert BatchMode(3).traced is False

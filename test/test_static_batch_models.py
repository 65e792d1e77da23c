"""Static-batch exports (most real ones) and symbolic-batch exports whose traced reshapes fix the batch:
frames run in chunks of the fixed batch; truly dynamic ones batch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import TINY_CLASSES, segformer_like_spec, smooth_image, static_batch_spec, tiny_spec

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.onnx_checks import BatchMode, batch_mode
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

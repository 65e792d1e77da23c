"""Static-batch exports (most real ones): frames run in chunks of the fixed batch; dynamic ones batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import TINY_CLASSES, smooth_image, static_batch_spec, tiny_spec

from seg_perception.core.model_spec import load_model_spec
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

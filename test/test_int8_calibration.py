"""INT8 calibration that holds on real activations (core.calibration), on the demo model and two fixture nets.

* percentile (the default) used to crash with numpy's "Too many bins for data range" on a tensor that
  stays within a few float32 steps of 1.0; it must calibrate, and give that tensor its true range;
* entropy used to be minmax under another name (byte-identical graphs): its graphs must differ;
* the histogram bins are fixed from the full range before collecting, so frame order cannot change them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from int8_fixtures import multiclass_spec, narrow_range_spec, two_head_spec
from int8_support import needs_int8_quantizer

from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.quantization import calibrate_fused_graph, qdq_from_ranges
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.synthetic.scenes import generate_scene

pytestmark = needs_int8_quantizer

CAMERA = (96, 64)
FRAMES = 6


def _fused(spec: Path, camera: tuple[int, int] = CAMERA) -> onnx.ModelProto:
    return compile_fused_graph(load_model_spec(spec), *camera)


def _frames(count: int = FRAMES, camera: tuple[int, int] = CAMERA, seed: int = 20_000) -> list[np.ndarray]:
    return [generate_scene(seed + i, *camera).image for i in range(count)]


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("int8_nets")
    found = {"multiclass": multiclass_spec(d), "two_head": two_head_spec(d), "narrow": narrow_range_spec(d)}
    found["demo"] = default_spec_path()  # shipped in models/: a missing one fails, it is not skipped
    return found


def test_percentile_and_entropy_calibrate_a_tensor_within_a_few_float_steps_of_one(specs: dict[str, Path]) -> None:
    fused = _fused(specs["narrow"])
    for method in ("percentile", "entropy", "minmax"):
        ranges = calibrate_fused_graph(fused, _frames(), method)
        low, high = (float(np.min(v)) for v in ranges["model/near_one"].range_value)
        # The gate input is 1.0 +- 3e-7: its range is [1, 1] to within one histogram bin (1/2048 of max |x|).
        assert low == pytest.approx(1.0, abs=1e-3) and high == pytest.approx(1.0, abs=1e-3), (method, low, high)
        qdq = qdq_from_ranges(fused, ranges)
        assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) >= 3


def test_histogram_ranges_do_not_depend_on_frame_order(specs: dict[str, Path]) -> None:
    fused = _fused(specs["multiclass"])
    frames = _frames(12)  # more than one collection chunk (CHUNK_FRAMES), as ONNX Runtime's bins grew per chunk
    forward = calibrate_fused_graph(fused, frames, "percentile")
    backward = calibrate_fused_graph(fused, frames[::-1], "percentile")
    for name, data in forward.items():
        assert np.array_equal(np.asarray(data.range_value), np.asarray(backward[name].range_value)), name


@pytest.mark.parametrize("net", ["multiclass", "two_head", "demo"])
def test_entropy_graph_differs_from_minmax(specs: dict[str, Path], net: str) -> None:
    camera = (160, 96) if net == "demo" else CAMERA  # the demo net downsamples 16x: keep its maps non-trivial
    fused = _fused(specs[net], camera)
    frames = _frames(4 if net == "demo" else FRAMES, camera)
    digests, ranges = {}, {}
    for method in ("minmax", "entropy"):
        ranges[method] = calibrate_fused_graph(fused, frames, method)
        digests[method] = hashlib.sha256(qdq_from_ranges(fused, ranges[method]).SerializeToString()).hexdigest()
    assert digests["minmax"] != digests["entropy"]
    narrower = [
        name
        for name, data in ranges["entropy"].items()
        if float(np.max(data.range_value[1])) < 0.99 * float(np.max(ranges["minmax"][name].range_value[1]))
    ]
    assert narrower, "entropy clipped no tensor below its minmax range"
    # ... but it does not clip ReLU outputs to an eighth of their range (the zero-spike failure).
    relu = [n for n, d in ranges["minmax"].items() if float(np.min(d.range_value[0])) >= 0.0]  # one-sided
    assert relu
    for name in relu:
        assert float(np.max(ranges["entropy"][name].range_value[1])) > 0.25 * float(
            np.max(ranges["minmax"][name].range_value[1])
        ), name

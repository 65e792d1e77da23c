"""The TensorRT backend: what can be proven without TensorRT runs everywhere; the rest needs a GPU.

Everywhere: the modules import without tensorrt/pycuda; `backend=tensorrt` and `build-engine` fail with one
line that says TensorRT was not found and how to install it; `auto` falls back to ONNX Runtime and says
why; build options, cache slots and the per-version precision graphs are right. The backend and builder
against a fake tensorrt/pycuda that keeps TensorRT 10's API contract are in
test_tensorrt_backend_keeps_the_api_contract.py.

Where tensorrt, pycuda and a CUDA GPU exist: engines built from the fused graph agree with ONNX Runtime
on the same frames (>= 99.5 % of pixels at FP32, >= 98 % at FP16), dynamic batch works, and the second
start loads the cached engine instead of building. Elsewhere those tests skip and say exactly why.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from tensorrt_fixtures import CAMERA, fused, spec_path  # noqa: F401 - fixtures

from seg_perception.backends import create_backend, resolve_backend_name, tensorrt_usable
from seg_perception.backends.engine_artefacts import (
    BuildOptions,
    EngineBuildError,
    engine_path,
    qdq_path,
    shape_profile,
)
from seg_perception.backends.engine_builder import graph_for_precision
from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.core.errors import BackendError
from seg_perception.core.graph_compiler import graph_digest
from seg_perception.core.quantization import POST_PREFIX, PRE_PREFIX, fp16_fused_graph
from seg_perception.synthetic.scenes import generate_scene

TENSORRT_USABLE, TENSORRT_WHY = tensorrt_usable()
needs_gpu = pytest.mark.skipif(
    not TENSORRT_USABLE, reason=f"TensorRT-vs-ONNX Runtime comparison needs tensorrt, pycuda and a GPU: {TENSORRT_WHY}"
)
without_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here; this checks its absence"
)


def test_modules_import_without_tensorrt_or_pycuda() -> None:
    code = (
        "import sys\n"
        "import seg_perception.backends.tensorrt_backend, seg_perception.backends.engine_builder\n"
        "import seg_perception.engine_commands, seg_perception.core.engine_cache, seg_perception.core.quantization\n"
        "loaded = sorted(m for m in ('tensorrt', 'pycuda') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@without_tensorrt
def test_backend_tensorrt_fails_with_one_install_line(fused: onnx.ModelProto, tmp_path: Path) -> None:
    with pytest.raises(BackendError) as failure:
        create_backend("tensorrt", fused, engine_cache_dir=str(tmp_path / "engines"), precision="fp16")
    message = str(failure.value)
    assert "TensorRT was not found" in message and "\n" not in message
    assert "Jetson" in message and "apt install" in message and "pip install tensorrt" in message


@without_tensorrt
def test_build_engine_command_fails_with_one_install_line(spec_path: Path, tmp_path: Path) -> None:
    args = ["--model", str(spec_path), "--input-size", "160x120", "--cache-dir", str(tmp_path / "engines")]
    run = subprocess.run(
        [sys.executable, "-m", "seg_perception.cli", "build-engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode != 0
    assert len(lines) == 1, run.stderr
    assert "TensorRT was not found" in lines[0] and "Jetson" in lines[0] and "pip install tensorrt" in lines[0]


@pytest.mark.skipif(TENSORRT_USABLE, reason="TensorRT is usable here, so auto picks it")
def test_auto_falls_back_to_onnxruntime_and_says_why() -> None:
    name, reason = resolve_backend_name("auto")
    assert name == "onnxruntime"
    assert "tensorrt" in reason.lower()


def test_build_options_are_validated() -> None:
    for bad in (
        {"precision": "int4"},
        {"max_batch": 0},
        {"workspace_mib": -1},
        {"dla_core": 0, "precision": "fp32"},
        {"dla_core": -1},
    ):
        with pytest.raises(EngineBuildError):
            BuildOptions(**bad)  # type: ignore[arg-type]


def test_cache_slots_follow_graph_precision_batch_and_dla(fused: onnx.ModelProto, tmp_path: Path) -> None:
    base = engine_path(tmp_path, fused, BuildOptions("fp16", 1))
    digest = graph_digest(fused)[:12]
    assert base.name == f"m-{digest}-fp16-b1.engine"
    others = {
        engine_path(tmp_path, fused, BuildOptions("fp32", 1)),
        engine_path(tmp_path, fused, BuildOptions("fp16", 4)),
        engine_path(tmp_path, fused, BuildOptions("fp16", 1, dla_core=0)),
        qdq_path(tmp_path, fused),
    }
    assert base not in others and len(others) == 4
    assert shape_profile(fused, 4) == "image:1..4x120x160x3"


def test_precision_graph_per_tensorrt_major(fused: onnx.ModelProto) -> None:
    # 8.6 and 10.x: the fp32 graph for fp32 and fp16 (FP16 is a builder flag there).
    for major in (8, 10):
        assert graph_for_precision(fused, "fp32", major, None) is fused
        assert graph_for_precision(fused, "fp16", major, None) is fused
    assert graph_for_precision(fused, "fp32", 11, None) is fused
    # 11.x: strongly typed, so FP16 must be in the graph itself.
    half = graph_for_precision(fused, "fp16", 11, None)
    assert any(t.data_type == TensorProto.FLOAT16 for t in half.graph.initializer)
    with pytest.raises(EngineBuildError, match="QDQ"):
        graph_for_precision(fused, "int8", 10, None)


def test_fp16_graph_for_strongly_typed_tensorrt_agrees_on_onnxruntime(fused: onnx.ModelProto) -> None:
    half = fp16_fused_graph(fused)
    io = [(v.name, v.type.tensor_type.elem_type) for v in (*half.graph.input, *half.graph.output)]
    assert io == [("image", TensorProto.UINT8), ("labels", TensorProto.UINT8), ("confidence", TensorProto.UINT8)]
    weights = {t.name: t.data_type for t in half.graph.initializer}
    assert TensorProto.FLOAT16 in weights.values(), "the model's weights are fp16"
    for node in half.graph.node:  # pre/post-processing constants stay fp32
        if node.name.startswith((PRE_PREFIX, POST_PREFIX)):
            assert all(weights.get(i) != TensorProto.FLOAT16 for i in node.input), node.name
    frames = np.stack([generate_scene(s, *CAMERA).image for s in range(3)])
    with OnnxRuntimeBackend(fused) as ref, OnnxRuntimeBackend(half) as low:
        expected = ref.infer(frames)["labels"].copy()
        got = low.infer(frames)["labels"]
    assert np.mean(expected == got) >= 0.98


# ---------------------------------------------------------------- needs tensorrt, pycuda and a GPU


@pytest.fixture()
def frames() -> Iterator[np.ndarray]:
    yield np.stack([generate_scene(100 + s, *CAMERA).image for s in range(2)])


def _agreement(fused: onnx.ModelProto, backend: object, frames: np.ndarray) -> float:
    with OnnxRuntimeBackend(fused) as ref:
        expected = ref.infer(frames)["labels"].copy()
    got = backend.infer(frames)["labels"]  # type: ignore[attr-defined]
    return float(np.mean(expected == got))


@needs_gpu
@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.995), ("fp16", 0.98)])
def test_tensorrt_labels_agree_with_onnxruntime(
    fused: onnx.ModelProto, tmp_path: Path, frames: np.ndarray, precision: str, floor: float
) -> None:
    from seg_perception.backends.tensorrt_backend import create_tensorrt_backend

    with create_tensorrt_backend(fused, precision=precision, engine_cache_dir=tmp_path, max_batch=2) as backend:
        assert _agreement(fused, backend, frames) >= floor
        assert _agreement(fused, backend, frames[:1]) >= floor  # shape change: rebinds, same buffers
        assert backend.infer(frames)["labels"].shape == (2, CAMERA[1], CAMERA[0])
    backend.close()  # idempotent


@needs_gpu
def test_second_start_loads_the_cached_engine(fused: onnx.ModelProto, tmp_path: Path) -> None:
    from seg_perception.backends.engine_artefacts import BuildOptions
    from seg_perception.backends.engine_builder import ensure_engine

    options = BuildOptions("fp16", 1)
    first = ensure_engine(fused, options, tmp_path, allow_build=True)
    second = ensure_engine(fused, options, tmp_path, allow_build=False)
    assert (first.built, second.built) == (True, False)
    assert second.sidecar["key"]["precision"] == "fp16"

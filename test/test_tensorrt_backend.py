"""The TensorRT backend: what can be proven without TensorRT runs everywhere; the rest needs a GPU.

Everywhere: the modules import without tensorrt/pycuda; `backend=tensorrt` and `build-engine` fail with one
line that says TensorRT was not found and how to install it; `auto` falls back to ONNX Runtime and says
why; build options, cache slots and the per-version precision graphs are right; and the backend's own
logic (buffer sizing, views, rebinding only on shape change, one sync per batch, error paths, close, the
engine cache wiring of create_tensorrt_backend) runs against a fake tensorrt/pycuda whose "engine" is the
fused graph on ONNX Runtime. The fake proves our logic, not TensorRT's behaviour.

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
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.backends import create_backend, resolve_backend_name, tensorrt_usable
from seg_perception.backends.engine_builder import (
    BuildOptions,
    EngineBuildError,
    engine_path,
    graph_for_precision,
    qdq_path,
    shape_profile,
)
from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.core.errors import BackendError
from seg_perception.core.graph_compiler import compile_fused_graph, graph_digest
from seg_perception.core.model_spec import load_model_spec
from seg_perception.core.quantization import POST_PREFIX, PRE_PREFIX, fp16_fused_graph
from seg_perception.core.scenes import generate_scene

CAMERA = (160, 120)
TENSORRT_USABLE, TENSORRT_WHY = tensorrt_usable()
needs_gpu = pytest.mark.skipif(
    not TENSORRT_USABLE, reason=f"TensorRT-vs-ONNX Runtime comparison needs tensorrt, pycuda and a GPU: {TENSORRT_WHY}"
)
without_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here; this checks its absence"
)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("model")
    conv_logits_model(d / "m.onnx", 4, 48, 64, seed=0)
    return write_spec(d / "m.yaml", spec_dict("m.onnx", ["road", "car", "sky", "person"]))


@pytest.fixture(scope="module")
def fused(spec_path: Path) -> onnx.ModelProto:
    return compile_fused_graph(load_model_spec(spec_path), *CAMERA)


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
    from seg_perception.backends.engine_builder import BuildOptions, ensure_engine

    options = BuildOptions("fp16", 1)
    first = ensure_engine(fused, options, tmp_path, allow_build=True)
    second = ensure_engine(fused, options, tmp_path, allow_build=False)
    assert (first.built, second.built) == (True, False)
    assert second.sidecar["key"]["precision"] == "fp16"


# ------------------------------------- everywhere: the backend's buffer logic against a fake driver
# A stand-in for tensorrt and pycuda.driver with exactly the calls the backend makes. Its "engine" is
# the fused ONNX graph, run by ONNX Runtime on "device memory" (numpy buffers by address). It checks the
# backend's own logic: buffer sizes, views, rebinding on shape change, one sync per batch, errors, close.


class _FakeError(Exception):
    pass


class _Severity(int):
    INTERNAL_ERROR: _Severity
    ERROR: _Severity
    WARNING: _Severity
    INFO: _Severity
    VERBOSE: _Severity


for _i, _n in enumerate(("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")):
    setattr(_Severity, _n, _Severity(_i))


class _FakeDriver:
    """pycuda.driver: device memory is a dict of numpy byte buffers keyed by fake address."""

    Error = _FakeError

    def __init__(self) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.next_address = 0x1000
        self.syncs = 0
        self.freed = 0
        self.detached = 0
        self.pushed = 0
        driver = self

        class _Alloc:
            def __init__(self, nbytes: int) -> None:
                self.address = driver.next_address
                driver.next_address += nbytes + 256
                driver.memory[self.address] = np.zeros(nbytes, np.uint8)

            def __int__(self) -> int:
                return self.address

            def free(self) -> None:
                del driver.memory[self.address]
                driver.freed += 1

        class _Context:
            def push(self) -> None:
                driver.pushed += 1

            def detach(self) -> None:
                driver.detached += 1

            @staticmethod
            def pop() -> None:
                driver.pushed -= 1

        class _Device:
            def __init__(self, index: int) -> None:
                self.index = index

            @staticmethod
            def count() -> int:
                return 1

            def retain_primary_context(self) -> _Context:
                return _Context()

            def name(self) -> str:
                return "Fake Orin"

            def compute_capability(self) -> tuple[int, int]:
                return (8, 7)

        class _Stream:
            handle = 77

            def synchronize(self) -> None:
                driver.syncs += 1

        self._alloc, self.Context, self.Device, self.Stream = _Alloc, _Context, _Device, _Stream

    def init(self) -> None:
        pass

    def mem_alloc(self, nbytes: int) -> object:
        return self._alloc(nbytes)

    def pagelocked_empty(self, shape: int, dtype: np.dtype) -> np.ndarray:
        return np.full(shape, 0xAB, dtype)  # garbage, like real pinned memory

    def memcpy_htod_async(self, dest: object, src: np.ndarray, stream: object) -> None:
        self.memory[int(dest)][: src.nbytes] = src.reshape(-1).view(np.uint8)  # type: ignore[call-overload]

    def memcpy_dtoh_async(self, dest: np.ndarray, src: object, stream: object) -> None:
        dest.reshape(-1).view(np.uint8)[:] = self.memory[int(src)][: dest.nbytes]  # type: ignore[call-overload]


class _FakeTensorRT:
    """tensorrt: engine bytes are the fused ONNX graph; execution runs it with ONNX Runtime."""

    __version__ = "10.99.0"

    def __init__(self, driver: _FakeDriver, fail_execute: bool = False) -> None:
        self.address_sets = 0
        trt = self

        class ILogger:
            Severity = _Severity

            def __init__(self) -> None:
                pass

        class TensorIOMode:
            INPUT, OUTPUT = "in", "out"

        class DataType:
            UINT8 = "u8"

        class _Context:
            def __init__(self, engine: _Engine) -> None:
                self.engine = engine
                self.shape: tuple[int, ...] = ()
                self.addresses: dict[str, int] = {}

            def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
                low, _, high = self.engine.get_tensor_profile_shape(name, 0)
                self.shape = tuple(shape)
                return low[0] <= shape[0] <= high[0]

            def get_tensor_shape(self, name: str) -> tuple[int, ...]:
                return self.shape if name == "image" else (self.shape[0], self.shape[1], self.shape[2])

            def set_tensor_address(self, name: str, address: int) -> bool:
                trt.address_sets += 1
                self.addresses[name] = address
                return True

            def execute_async_v3(self, stream_handle: int) -> bool:
                if fail_execute or stream_handle != 77:
                    return False
                size = int(np.prod(self.shape))
                image = driver.memory[self.addresses["image"]][:size].reshape(self.shape)
                outputs = self.engine.session.infer(image)
                for name, value in outputs.items():
                    driver.memory[self.addresses[name]][: value.nbytes] = value.reshape(-1)
                return True

        class _Engine:
            def __init__(self, data: bytes) -> None:
                self.session = OnnxRuntimeBackend(data)
                self.num_io_tensors = 3

            def create_execution_context(self) -> _Context:
                return _Context(self)

            def get_tensor_name(self, index: int) -> str:
                return ("image", "labels", "confidence")[index]

            def get_tensor_mode(self, name: str) -> str:
                return TensorIOMode.INPUT if name == "image" else TensorIOMode.OUTPUT

            def get_tensor_dtype(self, name: str) -> str:
                return DataType.UINT8

            def get_tensor_shape(self, name: str) -> tuple[int, ...]:
                return (-1, CAMERA[1], CAMERA[0], 3) if name == "image" else (-1, CAMERA[1], CAMERA[0])

            def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
                return [(1, CAMERA[1], CAMERA[0], 3), (2, CAMERA[1], CAMERA[0], 3), (2, CAMERA[1], CAMERA[0], 3)]

        class Runtime:
            def __init__(self, logger: object) -> None:
                self.DLA_core = -1

            def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
                return _Engine(data) if data.startswith(b"\x08") else None  # an ONNX ModelProto or garbage

        self.ILogger, self.TensorIOMode, self.DataType, self.Runtime = ILogger, TensorIOMode, DataType, Runtime

    @staticmethod
    def nptype(dtype: str) -> type:
        return np.uint8


@pytest.fixture()
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_FakeTensorRT, _FakeDriver]]:
    import types

    from seg_perception.backends import engine_builder

    driver = _FakeDriver()
    trt = _FakeTensorRT(driver)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(engine_builder, "_LOGGER", None)
    yield trt, driver
    engine_builder._LOGGER = None


def test_backend_buffers_bindings_and_sync_against_a_fake_driver(
    fused: onnx.ModelProto, fake_gpu: tuple[_FakeTensorRT, _FakeDriver], frames: np.ndarray
) -> None:
    from seg_perception.backends.tensorrt_backend import TensorRTBackend

    trt, driver = fake_gpu
    with OnnxRuntimeBackend(fused) as ref:
        expected = {n: ref.infer(frames)[n].copy() for n in ("labels", "confidence")}
        expected_one = ref.infer(frames[:1])["labels"].copy()
    backend = TensorRTBackend(fused.SerializeToString())
    assert backend.input_shape == ("N", CAMERA[1], CAMERA[0], 3)
    assert backend.output_names == ("labels", "confidence")
    assert trt.address_sets == 3

    out = backend.infer(frames)
    for name, value in expected.items():
        np.testing.assert_array_equal(out[name], value)
    assert trt.address_sets == 3 and driver.syncs == 1  # bound at load for the largest batch (2): no rebind
    backend.infer(frames)
    assert trt.address_sets == 3 and driver.syncs == 2  # one sync per batch
    np.testing.assert_array_equal(backend.infer(frames[:1])["labels"], expected_one)
    assert trt.address_sets == 6 and driver.syncs == 3  # input shape changed: set shape, rebind once
    backend.infer(frames[:1])
    assert trt.address_sets == 6
    assert driver.pushed == 0  # every push popped

    with pytest.raises(BackendError, match="outside the engine's profile"):
        backend.infer(np.concatenate([frames, frames]))
    with pytest.raises(BackendError, match="does not match the engine input"):
        backend.infer(frames[:, :-1])

    backend.close()
    backend.close()
    assert driver.freed == 3 and driver.detached == 1 and not driver.memory
    with pytest.raises(BackendError, match="closed"):
        backend.infer(frames)


def test_failed_execution_and_bad_engine_raise_backend_errors(
    fused: onnx.ModelProto,
    fake_gpu: tuple[_FakeTensorRT, _FakeDriver],
    frames: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seg_perception.backends.tensorrt_backend import EngineLoadError, TensorRTBackend

    _, driver = fake_gpu
    with pytest.raises(EngineLoadError, match="deserialize"):
        TensorRTBackend(b"not an engine")
    assert driver.detached == 1 and not driver.memory  # a failed load releases what it took

    failing = _FakeTensorRT(driver, fail_execute=True)
    monkeypatch.setitem(sys.modules, "tensorrt", failing)
    with TensorRTBackend(fused.SerializeToString()) as backend, pytest.raises(BackendError, match="enqueue"):
        backend.infer(frames)
    assert not driver.memory


def test_create_backend_builds_once_then_loads_from_the_cache(
    fused: onnx.ModelProto,
    fake_gpu: tuple[_FakeTensorRT, _FakeDriver],
    frames: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seg_perception.backends import engine_builder
    from seg_perception.backends.tensorrt_backend import create_tensorrt_backend

    builds: list[str] = []

    def fake_build(graph: onnx.ModelProto, options: BuildOptions, timing_cache: Path) -> bytes:
        builds.append(options.precision)
        return graph.SerializeToString()

    monkeypatch.setattr(engine_builder, "build_engine_bytes", fake_build)
    cache = tmp_path / "engines"
    with pytest.raises(BackendError, match=r"building is disabled.*build-engine"):
        create_tensorrt_backend(fused, precision="fp32", engine_cache_dir=cache, engine_build=False)
    for _ in range(2):
        with create_tensorrt_backend(fused, precision="fp32", engine_cache_dir=cache, max_batch=2) as backend:
            assert backend.infer(frames)["labels"].shape == (2, CAMERA[1], CAMERA[0])
            assert "fp32" in backend.describe() and "Fake Orin" in backend.describe()
    assert builds == ["fp32"]
    sidecar = next(cache.glob("*.engine.json")).read_text()
    assert '"gpu_name": "Fake Orin"' in sidecar and '"compute_capability": "8.7"' in sidecar
    assert '"tensorrt_version": "10.99.0"' in sidecar and '"shape_profile": "image:1..2x120x160x3"' in sidecar

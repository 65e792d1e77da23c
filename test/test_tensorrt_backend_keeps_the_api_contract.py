"""The TensorRT backend and engine builder against a fake tensorrt/pycuda that keeps TensorRT 10's API contract.

The fake (fake_tensorrt.py, fake_cuda.py; their docstrings list what they enforce) builds engines from the
fused ONNX graph with a fake ONNX parser, optimisation profile and builder config, and runs them on ONNX
Runtime over bounds-checked "device memory", queued on the stream until it is synchronized. So the tensor
names, dtypes, shapes, addresses and profile bounds the backend uses must be the engine's, or a test fails.
What this cannot prove: TensorRT's own parsing, kernels, numerics and timing (the GPU tests do that).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from fake_cuda import FakeCudaError, FakeDriver
from fake_tensorrt import NUMPY_TYPES, DataType, FakeContractError, FakeTensorRT
from onnx import TensorProto, helper
from tensorrt_fixtures import CAMERA, fake_gpu, fused, spec_path  # noqa: F401 - fixtures

from seg_perception.backends.engine_artefacts import BuildOptions, EngineBuildError
from seg_perception.backends.engine_builder import build_engine_bytes
from seg_perception.core.errors import BackendError
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.synthetic.scenes import generate_scene

W, H = CAMERA


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.stack([generate_scene(100 + s, *CAMERA).image for s in range(4)])


def _reference(graph: onnx.ModelProto, batch: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in graph.graph.output]
    return dict(zip(names, session.run(names, {graph.graph.input[0].name: batch}), strict=True))


def _engine(graph: onnx.ModelProto, tmp_path: Path, precision: str = "fp32", max_batch: int = 2) -> bytes:
    return build_engine_bytes(graph, BuildOptions(precision, max_batch), tmp_path / "timing.cache")


def _renamed(graph: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    for node in out.graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    for value in (*out.graph.input, *out.graph.output):
        value.name = names.get(value.name, value.name)
    return out


def _with_outputs(graph: onnx.ModelProto, casts: dict[str, int]) -> onnx.ModelProto:
    """The fused graph plus one output per entry: its labels cast to that ONNX type."""
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    for name, elem_type in casts.items():
        out.graph.node.append(helper.make_node("Cast", ["labels"], [name], to=elem_type))
        out.graph.output.append(helper.make_tensor_value_info(name, elem_type, ["N", H, W]))
    onnx.checker.check_model(out)
    return out


def test_backend_runs_what_the_fake_builder_built(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import create_tensorrt_backend

    trt, driver = fake_gpu
    cache = tmp_path / "engines"
    with pytest.raises(BackendError, match=r"building is disabled.*build-engine"):
        create_tensorrt_backend(fused, precision="fp32", engine_cache_dir=cache, engine_build=False)
    backend = create_tensorrt_backend(fused, precision="fp32", engine_cache_dir=cache, max_batch=2)
    assert trt.builds == 1
    engine = backend._engine
    assert engine.profile == {"image": [(1, H, W, 3), (2, H, W, 3), (2, H, W, 3)]}  # type: ignore[union-attr]
    assert "TF32" not in engine.build_flags and "FP16" not in engine.build_flags  # type: ignore[union-attr]
    assert backend.input_shape == ("N", H, W, 3) and backend.output_names == ("labels", "confidence")
    assert trt.address_sets == 3 and "Fake Orin" in backend.describe()

    for batch in (frames[:2], frames[:2], frames[:1], frames[1:3]):
        out = backend.infer(batch)
        for name, value in _reference(fused, batch).items():
            np.testing.assert_array_equal(out[name], value)
    assert driver.syncs == 4 and trt.executions == 4  # one sync per batch
    assert trt.address_sets == 9  # bound at load for batch 2; rebound for 1 and again for 2, never per frame
    assert driver.pushed == 0  # every context push popped
    with pytest.raises(BackendError, match="outside the engine's profile"):
        backend.infer(frames[:3])
    with pytest.raises(BackendError, match="does not match the engine input"):
        backend.infer(frames[:2, :-1])

    backend.close()
    backend.close()
    assert not driver.memory and driver.freed == 3 and driver.detached == 1
    with pytest.raises(BackendError, match="closed"):
        backend.infer(frames[:1])
    with create_tensorrt_backend(fused, precision="fp32", engine_cache_dir=cache, max_batch=2) as again:
        np.testing.assert_array_equal(again.infer(frames[:2])["labels"], _reference(fused, frames[:2])["labels"])
    assert trt.builds == 1, "the second start loads the cached engine"
    sidecar = next(cache.glob("*.engine.json")).read_text()
    assert '"tensorrt_version": "10.99.0"' in sidecar and '"shape_profile": "image:1..2x120x160x3"' in sidecar


def test_tensor_names_and_order_come_from_the_engine(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import TensorRTBackend

    graph = _renamed(fused, {"image": "camera_pixels", "labels": "class_ids", "confidence": "score"})
    graph.graph.output.reverse()  # the engine lists score first; outputs must follow the engine
    with TensorRTBackend(_engine(graph, tmp_path)) as backend:
        assert backend.output_names == ("score", "class_ids")
        out = backend.infer(frames[:2])
        expected = _reference(fused, frames[:2])
        assert set(out) == {"score", "class_ids"}
        np.testing.assert_array_equal(out["class_ids"], expected["labels"])
        np.testing.assert_array_equal(out["score"], expected["confidence"])


def test_nptype_covers_every_dtype_tensorrt_10_has(fake_gpu: tuple[FakeTensorRT, FakeDriver]) -> None:
    trt, _ = fake_gpu
    expected = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "INT64": "int64"}
    expected |= {"BOOL": "bool", "UINT8": "uint8"}
    assert {t.name: np.dtype(trt.nptype(t)).name for t in NUMPY_TYPES} == expected
    for no_numpy in (DataType.BF16, DataType.FP8, DataType.INT4, DataType.FP4):
        with pytest.raises(TypeError):
            trt.nptype(no_numpy)


def test_output_buffers_take_each_tensor_dtype(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import TensorRTBackend

    casts = {
        "as_float32": TensorProto.FLOAT,
        "as_float16": TensorProto.FLOAT16,
        "as_int64": TensorProto.INT64,
        "as_int32": TensorProto.INT32,
        "as_int8": TensorProto.INT8,
        "as_bool": TensorProto.BOOL,
    }
    graph = _with_outputs(fused, casts)
    expected = _reference(graph, frames[:2])
    with TensorRTBackend(_engine(graph, tmp_path)) as backend:
        out = backend.infer(frames[:2])
        for name in ("labels", "confidence", *casts):
            assert out[name].dtype == expected[name].dtype, name
            np.testing.assert_array_equal(out[name], expected[name])
        assert np.any(out["as_bool"]) and not np.all(out["as_bool"])  # a real mix, not all one value


def test_unusable_engines_are_refused_with_a_reason(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import EngineLoadError, TensorRTBackend

    trt, driver = fake_gpu
    with pytest.raises(EngineLoadError, match="deserialize"):
        TensorRTBackend(b"not an engine")
    assert driver.detached == 1 and not driver.memory  # a failed load releases what it took
    bf16 = _with_outputs(fused, {"as_bf16": TensorProto.BFLOAT16})
    with pytest.raises(EngineLoadError, match=r"as_bf16 has dtype .*BF16.*no numpy type"):
        TensorRTBackend(_engine(bf16, tmp_path))
    assert not driver.memory

    def identity(elem_type: int, inputs: int) -> onnx.ModelProto:
        names = [f"x{i}" for i in range(inputs)]
        values = [helper.make_tensor_value_info(n, elem_type, ["N", H, W, 3]) for n in names]
        out = helper.make_tensor_value_info("y", elem_type, ["N", H, W, 3])
        nodes = [helper.make_node("Sum" if inputs > 1 else "Identity", names, ["y"])]
        graph = helper.make_graph(nodes, "g", values, [out])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model

    with pytest.raises(EngineLoadError, match="one uint8 input"):
        TensorRTBackend(_engine(identity(TensorProto.FLOAT, 1), tmp_path))
    with pytest.raises(EngineLoadError, match="one uint8 input"):
        TensorRTBackend(_engine(identity(TensorProto.UINT8, 2), tmp_path))
    with TensorRTBackend(_engine(identity(TensorProto.UINT8, 1), tmp_path)) as plain:
        assert plain.output_names == ("y",)
    engine = _engine(fused, tmp_path)  # then as if built by another TensorRT version:
    with pytest.raises(EngineLoadError, match="deserialize"):
        TensorRTBackend(bytes(engine).replace(b"10.99.0", b"10.98.0", 1))
    assert any("built by TensorRT 10.98.0" in e for e in trt.errors)


def test_static_batch_engine_has_no_profile_and_takes_one_frame(
    spec_path: Path, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import create_tensorrt_backend

    static = compile_fused_graph(load_model_spec(spec_path), *CAMERA, batch=1)
    with create_tensorrt_backend(static, precision="fp16", engine_cache_dir=tmp_path, max_batch=2) as backend:
        assert backend._engine.profile == {}  # type: ignore[union-attr]
        assert "FP16" in backend._engine.build_flags  # type: ignore[union-attr]
        assert backend.input_shape == (1, H, W, 3)
        np.testing.assert_array_equal(backend.infer(frames[:1])["labels"], _reference(static, frames[:1])["labels"])
        with pytest.raises(BackendError, match=r"outside the engine's profile 1\.\.1"):
            backend.infer(frames[:2])


def test_profile_follows_max_batch_and_the_fake_refuses_beyond_it(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import TensorRTBackend

    trt, driver = fake_gpu
    with TensorRTBackend(_engine(fused, tmp_path, max_batch=4)) as backend:
        np.testing.assert_array_equal(backend.infer(frames)["labels"], _reference(fused, frames)["labels"])
        assert backend.describe().startswith("tensorrt 10.99.0 (batch 1..4")
    runtime = trt.Runtime(trt.ILogger())
    engine = runtime.deserialize_cuda_engine(_engine(fused, tmp_path, max_batch=2))
    context = engine.create_execution_context()
    # Output shapes exist only after set_input_shape; before it their batch is -1.
    assert context.get_tensor_shape("labels") == (-1, H, W)
    assert not context.set_input_shape("image", (3, H, W, 3))  # beyond max_batch 2
    assert not context.set_input_shape("image", (0, H, W, 3))  # below min 1
    assert not context.set_input_shape("image", (2, H, W + 1, 3))  # a static dimension changed
    assert not context.set_input_shape("labels", (2, H, W))  # not an input
    assert context.infer_shapes() == ["image"]
    assert context.set_input_shape("image", (2, H, W, 3)) and context.get_tensor_shape("labels") == (2, H, W)

    stream = driver.Stream()
    assert not context.execute_async_v3(stream.handle)  # no addresses yet
    assert not context.set_tensor_address("nonexistent", 0x10000)
    small = {n: driver.mem_alloc(16) for n in ("image", "labels", "confidence")}
    for name, block in small.items():
        assert context.set_tensor_address(name, int(block))
    assert not context.execute_async_v3(12345)  # not a stream
    assert context.execute_async_v3(stream.handle)
    with pytest.raises(FakeCudaError, match="illegal memory access"):
        stream.synchronize()  # 16-byte buffers for a 2x120x160x3 input
    with pytest.raises(FakeContractError):
        engine.get_tensor_dtype("nonexistent")
    assert engine.get_tensor_mode("nonexistent") == trt.TensorIOMode.NONE


def test_builder_config_follows_the_options(
    fused: onnx.ModelProto,
    fake_gpu: tuple[FakeTensorRT, FakeDriver],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    trt, _ = fake_gpu
    runtime = trt.Runtime(trt.ILogger())
    timing = tmp_path / "timing.cache"

    def flags(options: BuildOptions) -> tuple[set[str], dict[str, int]]:
        engine = runtime.deserialize_cuda_engine(build_engine_bytes(fused, options, timing))
        return engine.build_flags, engine.pool_limits

    with caplog.at_level(logging.INFO, logger="seg_perception"):
        assert flags(BuildOptions("fp32", 1)) == (set(), {})  # TF32 off: fp32 means fp32
    assert "TensorRT build: Building engine" in caplog.text  # the progress monitor was driven
    assert flags(BuildOptions("fp16", 1, workspace_mib=64)) == ({"FP16", "TF32"}, {"WORKSPACE": 64 << 20})
    assert flags(BuildOptions("int8", 1)) == ({"INT8", "TF32"}, {})
    assert timing.read_bytes().count(b"build") == 3  # the timing cache is loaded, extended and saved each build
    timing.write_bytes(b"corrupt")
    assert flags(BuildOptions("fp32", 1)) == (set(), {})  # a foreign timing cache is replaced, not fatal
    with pytest.raises(EngineBuildError, match="DLA core 0 requested but this device has 0"):
        build_engine_bytes(fused, BuildOptions("fp16", 1, dla_core=0), timing)


def test_parser_errors_reach_the_user(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], tmp_path: Path
) -> None:
    double = _with_outputs(fused, {"as_double": TensorProto.DOUBLE})
    with pytest.raises(EngineBuildError, match="as_double: unsupported data type DOUBLE"):
        build_engine_bytes(double, BuildOptions("fp32", 1), tmp_path / "t.cache")


def test_a_failed_enqueue_is_a_backend_error(
    fused: onnx.ModelProto, fake_gpu: tuple[FakeTensorRT, FakeDriver], frames: np.ndarray, tmp_path: Path
) -> None:
    from seg_perception.backends.tensorrt_backend import TensorRTBackend

    _, driver = fake_gpu
    with TensorRTBackend(_engine(fused, tmp_path)) as backend:
        del backend._context.addresses["confidence"]  # type: ignore[union-attr]
        with pytest.raises(BackendError, match="enqueue"):
            backend.infer(frames[:2])
    assert not driver.memory

"""TensorRT backend: the fused graph's engine, run with pycuda page-locked and device buffers.

All pre/post-processing is inside the engine, so this is only "load an engine, bind buffers, run":
buffers are sized once from the engine's I/O tensors (at the optimization profile's largest batch) and
bound once; each batch is copy-in, async upload, ``execute_async_v3``, async download, one sync. The
outputs returned are views of the pinned host buffers and are overwritten by the next call (the same
contract as OnnxRuntimeBackend): callers copy what they keep.

tensorrt and pycuda are imported lazily: importing this module needs neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from seg_perception.backends.base import Backend
from seg_perception.backends.engine_artefacts import BuildOptions
from seg_perception.backends.engine_builder import (
    ensure_engine,
    gpu_identity,
    require_tensorrt,
    tensorrt_logger,
    tensorrt_version,
)
from seg_perception.core.engine_cache import ArtefactCacheError
from seg_perception.core.errors import BackendError

if TYPE_CHECKING:
    import tensorrt as trt

LOG = logging.getLogger(__name__)


class EngineLoadError(BackendError):
    """TensorRT could not deserialize an engine or create its execution context."""


def _dims(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _numpy_dtype(dtype: trt.DataType, name: str) -> np.dtype:
    """The numpy type of an engine tensor; TensorRT's nptype raises TypeError for bf16, fp8, int4 and fp4."""
    import tensorrt as trt

    try:
        return np.dtype(trt.nptype(dtype))
    except TypeError:
        raise EngineLoadError(f"tensor {name} has dtype {dtype}, which has no numpy type; not supported") from None


class _CudaContext:
    """The device's primary context (the one TensorRT's runtime API uses), made current around each use.

    CUDA contexts are current per thread and the node calls in from a worker thread, so every entry
    pushes the context and every exit pops it, instead of relying on whichever thread created it.
    """

    def __init__(self, device: int = 0) -> None:
        import pycuda.driver as cuda

        self._cuda = cuda
        try:
            cuda.init()
            self._context: Any = cuda.Device(device).retain_primary_context()
        except cuda.Error as exc:
            raise BackendError(f"CUDA device {device} is not usable: {exc}") from exc

    def __enter__(self) -> None:
        if self._context is None:
            raise BackendError("the CUDA context was released")
        self._context.push()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cuda.Context.pop()

    def close(self) -> None:
        if self._context is not None:
            self._context.detach()  # drops our reference to the primary context
            self._context = None


@dataclass
class _Tensor:
    """One engine I/O tensor: pinned host and device buffers sized for the largest shape."""

    name: str
    dtype: np.dtype
    host: np.ndarray  # flat, page-locked, max volume
    device: Any  # pycuda DeviceAllocation of host.nbytes
    view: np.ndarray  # host[:volume].reshape(current shape)


class TensorRTBackend(Backend):
    """A deserialized TensorRT engine with its execution context, stream and buffers."""

    name = "tensorrt"

    def __init__(self, engine_data: bytes, dla_core: int | None = None, device: int = 0, label: str = "") -> None:
        require_tensorrt()
        import pycuda.driver as cuda

        self._cuda = cuda
        self._lock = threading.Lock()  # one context and one stream: calls are serialised
        self._closed = False
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._stream: Any = None
        self._tensors: dict[str, _Tensor] = {}
        self._outputs: dict[str, np.ndarray] = {}
        self._bound_shape: tuple[int, ...] | None = None
        self._label = label
        self._gpu = _CudaContext(device)
        try:
            with self._gpu:
                self._load(engine_data, dla_core)
        except BaseException:
            self.close()
            raise

    def _load(self, engine_data: bytes, dla_core: int | None) -> None:
        import tensorrt as trt

        cuda = self._cuda
        self._runtime = trt.Runtime(tensorrt_logger())
        if dla_core is not None:
            self._runtime.DLA_core = dla_core
        engine = self._runtime.deserialize_cuda_engine(engine_data)
        if engine is None:
            raise EngineLoadError("TensorRT could not deserialize the engine; its errors are logged above")
        self._engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise EngineLoadError("TensorRT could not create an execution context (out of GPU memory?)")
        self._context = context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        if len(inputs) != 1 or engine.get_tensor_dtype(inputs[0]) != trt.DataType.UINT8:
            raise EngineLoadError(f"expected one uint8 input (a fused graph's engine), the engine has {inputs}")
        self._input_name = inputs[0]
        declared = _dims(engine.get_tensor_shape(self._input_name))
        self.input_shape = tuple("N" if d < 0 else d for d in declared)
        if declared[0] < 0:
            low, _opt, high = (_dims(d) for d in engine.get_tensor_profile_shape(self._input_name, 0))
            self._batch_range = (low[0], high[0])
            largest = high
        else:
            self._batch_range = (declared[0], declared[0])
            largest = declared
        self._set_input_shape(largest)
        try:
            self._stream = cuda.Stream()
            for name in (self._input_name, *self.output_names):
                shape = largest if name == self._input_name else _dims(context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise EngineLoadError(f"output {name} has a data-dependent shape {shape}; not supported")
                dtype = _numpy_dtype(engine.get_tensor_dtype(name), name)
                host = cuda.pagelocked_empty(int(np.prod(shape)), dtype)
                device = cuda.mem_alloc(max(1, host.nbytes))
                self._tensors[name] = _Tensor(name, dtype, host, device, host.reshape(shape))
        except cuda.Error as exc:
            raise BackendError(f"could not allocate TensorRT I/O buffers: {exc}") from exc
        self._bind(largest)

    def _set_input_shape(self, shape: tuple[int, ...]) -> None:
        if self._context is None:
            raise BackendError("tensorrt backend is closed")
        if self.input_shape[0] == "N" and not self._context.set_input_shape(self._input_name, shape):
            raise BackendError(f"TensorRT refused input shape {shape} (profile batch {self._batch_range})")

    def _bind(self, shape: tuple[int, ...]) -> None:
        """Set the input shape and (re)bind every tensor address; only when the input shape changes."""
        context = self._context
        if context is None:
            raise BackendError("tensorrt backend is closed")
        self._set_input_shape(shape)
        outputs: dict[str, np.ndarray] = {}
        for name, tensor in self._tensors.items():
            current = shape if name == self._input_name else _dims(context.get_tensor_shape(name))
            tensor.view = tensor.host[: int(np.prod(current))].reshape(current)
            if not context.set_tensor_address(name, int(tensor.device)):
                raise BackendError(f"TensorRT refused the device address of tensor {name}")
            if name != self._input_name:
                outputs[name] = tensor.view
        self._outputs = outputs
        self._bound_shape = shape

    def describe(self) -> str:
        version, _ = tensorrt_version()
        low, high = self._batch_range
        extra = f", {self._label}" if self._label else ""
        return f"tensorrt {version} (batch {low}..{high}{extra})"

    def infer(self, batch: np.ndarray) -> Mapping[str, np.ndarray]:
        if batch.dtype != np.uint8 or batch.ndim != 4:
            raise BackendError(f"expected a uint8 [N, H, W, 3] batch, got {batch.dtype} {batch.shape}")
        if tuple(batch.shape[1:]) != tuple(self.input_shape[1:]):
            raise BackendError(f"batch {batch.shape} does not match the engine input {self.input_shape}")
        low, high = self._batch_range
        if not low <= batch.shape[0] <= high:
            raise BackendError(f"batch size {batch.shape[0]} is outside the engine's profile {low}..{high}")
        cuda = self._cuda
        with self._lock:
            if self._closed or self._context is None:
                raise BackendError("tensorrt backend is closed")
            try:
                with self._gpu:
                    if self._bound_shape != tuple(batch.shape):
                        self._bind(tuple(batch.shape))
                    staged = self._tensors[self._input_name]
                    np.copyto(staged.view, batch)
                    cuda.memcpy_htod_async(staged.device, staged.view, self._stream)
                    if not self._context.execute_async_v3(self._stream.handle):
                        raise BackendError(f"TensorRT failed to enqueue a {batch.shape} batch")
                    for name in self.output_names:
                        out = self._tensors[name]
                        cuda.memcpy_dtoh_async(out.view, out.device, self._stream)
                    self._stream.synchronize()
            except cuda.Error as exc:
                raise BackendError(f"CUDA failed while running a {batch.shape} batch: {exc}") from exc
        return self._outputs

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                with self._gpu:
                    if self._stream is not None:
                        self._stream.synchronize()  # nothing may still write into buffers we free
                    for tensor in self._tensors.values():
                        tensor.device.free()
                    # TensorRT objects free GPU memory on destruction: drop them while the context is current.
                    self._tensors, self._outputs = {}, {}
                    self._context = self._engine = self._runtime = None
                    self._stream = None
            except (self._cuda.Error, BackendError) as exc:
                LOG.warning("releasing TensorRT resources failed: %s", exc)
            finally:
                self._gpu.close()


def _int_option(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BackendError(f"tensorrt option {name}={value!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise BackendError(f"tensorrt option {name}={value!r} is not an integer") from None


def create_tensorrt_backend(
    fused: onnx.ModelProto,
    precision: object = "fp16",
    engine_cache_dir: object = "~/.cache/seg_perception/engines",
    engine_build: object = True,
    threads: object = 0,
    max_batch: object = 1,
    workspace_mib: object = 0,
    dla_core: object = None,
    **_: object,
) -> TensorRTBackend:
    """The engine for `fused` from the cache (built there when allowed) behind a TensorRTBackend.

    Options arrive untyped from node parameters / backend_options and are checked here. `threads` is an
    ONNX Runtime setting and is ignored; unknown options are ignored so one mapping serves every backend.
    """
    del threads
    require_tensorrt()
    if not isinstance(engine_build, bool):
        raise BackendError(f"tensorrt option engine_build={engine_build!r} is not a bool")
    if not isinstance(engine_cache_dir, str | Path):
        raise BackendError(f"tensorrt option engine_cache_dir={engine_cache_dir!r} is not a path")
    core = None if dla_core is None or dla_core == "" else _int_option("dla_core", dla_core)
    options = BuildOptions(
        str(precision), _int_option("max_batch", max_batch), _int_option("workspace_mib", workspace_mib), core
    )
    cache_dir = Path(engine_cache_dir).expanduser()
    try:
        cached = ensure_engine(fused, options, cache_dir, allow_build=engine_build)
        gpu = gpu_identity()
        gate = cached.sidecar.get("info", {}).get("int8_gate")  # INT8: how it scored against fp32
        label = f"{options.precision}, {gpu.name}, {cached.path.name}" + (f"; {gate}" if gate else "")
        try:
            return TensorRTBackend(cached.data, dla_core=core, label=label)
        except EngineLoadError as exc:
            # A sidecar-valid engine can still fail to load (e.g. a driver update); rebuild once if allowed.
            if not engine_build:
                raise BackendError(f"{cached.path}: {exc}; set engine_build:=true to rebuild it") from exc
            LOG.warning("%s failed to load (%s); rebuilding it", cached.path.name, exc)
            cached = ensure_engine(fused, options, cache_dir, allow_build=True, force=True)
            return TensorRTBackend(cached.data, dla_core=core, label=label)
    except ArtefactCacheError as exc:
        raise BackendError(str(exc)) from exc

"""A stand-in for `tensorrt` 10.x that keeps the documented API contract, so a backend bug fails a test.

What it enforces (TensorRT 10 Python API, ICudaEngine / IExecutionContext / IBuilder docs and the samples'
common runtime code):

* The engine's I/O tensors are the parsed ONNX graph's inputs and outputs: names, TensorIOMode, DataType
  (uint8, float32, float16, bfloat16, int8, int32, int64, bool, fp8 as TensorRT 10 has them) and shapes
  with -1 for dynamic dimensions. `nptype` maps each DataType to its numpy type and raises TypeError for
  the ones numpy lacks (bf16, fp8, int4, fp4), as TensorRT's does.
* An output's shape is known only after `set_input_shape` on every dynamic input (before that its
  dynamic dimensions read -1); `set_input_shape` refuses (False, error logged) unknown names, outputs, a
  wrong rank, a changed static dimension and anything outside the optimisation profile's min..max.
* `set_tensor_address` refuses names the engine does not have; `execute_async_v3` refuses (False) until
  every input shape is set and every I/O tensor has an address, and refuses an unknown stream.
* Execution is queued on the stream and happens at its synchronize: the input is read from device memory
  as the engine's dtype, the graph runs on ONNX Runtime, each output is written to its address with a
  bounds check (the wrong dtype or size of a buffer shows as wrong values or an illegal access).
* The builder parses with a fake OnnxParser (the graph must be valid ONNX whose I/O dtypes TensorRT has),
  needs an optimisation profile for every dynamic input (`set_shape` checks min <= opt <= max, the build
  checks static dimensions), keeps builder flags, memory-pool limits and the timing cache, calls the
  progress monitor, and refuses precision flags on a strongly typed network. Runtime refuses an engine
  built by another TensorRT version.

Where TensorRT would log an error and return a placeholder (get_tensor_dtype / get_tensor_shape of an
unknown name), the fake raises FakeContractError so the mistake cannot pass silently. It does not know
which ONNX operators TensorRT's parser supports, nor anything about numerics, kernels or timing.
"""

from __future__ import annotations

import enum
import json
import struct
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from fake_cuda import FakeDriver
from onnx import TensorProto

VERSION = "10.99.0"
ENGINE_MAGIC = b"fake-trt-engine\0"
TIMING_MAGIC = b"fake-trt-timing\0"


class FakeContractError(Exception):
    """A call TensorRT would answer with an error and a placeholder value."""


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10

    @property
    def itemsize(self) -> float:
        return _ITEMSIZE[self]


_ITEMSIZE = {
    DataType.FLOAT: 4,
    DataType.HALF: 2,
    DataType.INT8: 1,
    DataType.INT32: 4,
    DataType.BOOL: 1,
    DataType.UINT8: 1,
    DataType.FP8: 1,
    DataType.BF16: 2,
    DataType.INT64: 8,
    DataType.INT4: 0.5,
    DataType.FP4: 0.5,
}
NUMPY_TYPES: dict[DataType, type] = {
    DataType.FLOAT: np.float32,
    DataType.HALF: np.float16,
    DataType.INT8: np.int8,
    DataType.INT32: np.int32,
    DataType.BOOL: np.bool_,
    DataType.UINT8: np.uint8,
    DataType.INT64: np.int64,
}
ONNX_TYPES = {
    TensorProto.FLOAT: DataType.FLOAT,
    TensorProto.FLOAT16: DataType.HALF,
    TensorProto.BFLOAT16: DataType.BF16,
    TensorProto.INT8: DataType.INT8,
    TensorProto.INT32: DataType.INT32,
    TensorProto.INT64: DataType.INT64,
    TensorProto.BOOL: DataType.BOOL,
    TensorProto.UINT8: DataType.UINT8,
    TensorProto.FLOAT8E4M3FN: DataType.FP8,
}


def nptype(trt_type: DataType) -> type:
    if trt_type in NUMPY_TYPES:
        return NUMPY_TYPES[trt_type]
    raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")


class Dims(tuple):
    def __new__(cls, shape: Iterable[int] = ()) -> Dims:
        return super().__new__(cls, (int(d) for d in shape))


def volume(shape: Iterable[int]) -> int:
    return int(np.prod(list(shape), dtype=np.int64))


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = Severity

    def __init__(self) -> None:
        pass

    def log(self, severity: Severity, msg: str) -> None:
        pass


class IProgressMonitor:
    def __init__(self) -> None:
        pass


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated and ignored in 10.x
    STRONGLY_TYPED = 1


class BuilderFlag(enum.Enum):
    FP16 = 0
    INT8 = 1
    GPU_FALLBACK = 3
    TF32 = 6
    BF16 = 17


PRECISION_FLAGS = {BuilderFlag.FP16, BuilderFlag.INT8, BuilderFlag.BF16}


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


class DeviceType(enum.Enum):
    GPU = 0
    DLA = 1


@dataclass(frozen=True)
class IoTensor:
    """One network / engine I/O tensor as the parser read it from the ONNX graph."""

    name: str
    mode: TensorIOMode
    dtype: DataType
    shape: Dims  # -1 for dynamic dimensions
    params: tuple[str | None, ...]  # the ONNX dim_param of each dynamic dimension


def parse_io(model: onnx.ModelProto) -> tuple[list[IoTensor], list[str]]:
    """The graph's I/O tensors (inputs first, as TensorRT orders them) and what TensorRT would reject."""
    errors: list[str] = []
    constants = {t.name for t in model.graph.initializer}
    tensors = []
    for mode, values in ((TensorIOMode.INPUT, model.graph.input), (TensorIOMode.OUTPUT, model.graph.output)):
        for value in values:
            if value.name in constants:
                continue
            ttype = value.type.tensor_type
            if ttype.elem_type not in ONNX_TYPES:
                errors.append(f"{value.name}: unsupported data type {TensorProto.DataType.Name(ttype.elem_type)}")
                continue
            dims = ttype.shape.dim
            shape = Dims(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
            params = tuple(d.dim_param if d.HasField("dim_param") else None for d in dims)
            tensors.append(IoTensor(value.name, mode, ONNX_TYPES[ttype.elem_type], shape, params))
    return tensors, errors


# -------------------------------------------------------------------------------- runtime


class ICudaEngine:
    """The engine: I/O tensors from the ONNX graph, the profile and flags the builder recorded."""

    def __init__(self, trt: FakeTensorRT, logger: ILogger, header: dict[str, Any], graph: bytes) -> None:
        self._trt, self._logger, self._graph = trt, logger, graph
        self.tensors, _ = parse_io(onnx.ModelProto.FromString(graph))
        self._by_name = {t.name: t for t in self.tensors}
        self.profile: dict[str, list[Dims]] = {k: [Dims(s) for s in v] for k, v in header["profile"].items()}
        self.build_flags: set[str] = set(header["flags"])
        self.pool_limits: dict[str, int] = header["pool_limits"]
        self.strongly_typed: bool = header["strongly_typed"]
        self._session: Any = None

    @property
    def num_io_tensors(self) -> int:
        return len(self.tensors)

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    def _tensor(self, name: str, call: str) -> IoTensor:
        if name not in self._by_name:
            self._trt.error(self._logger, f"ICudaEngine::{call}: no tensor named {name!r}")
            raise FakeContractError(f"{call}({name!r}): the engine has no such tensor; it has {list(self._by_name)}")
        return self._by_name[name]

    def get_tensor_name(self, index: int) -> str:
        if not 0 <= index < len(self.tensors):
            raise IndexError(f"tensor index {index} out of range [0, {len(self.tensors)})")
        return self.tensors[index].name

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        tensor = self._by_name.get(name)
        return TensorIOMode.NONE if tensor is None else tensor.mode  # documented: NONE for unknown names

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._tensor(name, "getTensorDataType").dtype

    def get_tensor_shape(self, name: str) -> Dims:
        return self._tensor(name, "getTensorShape").shape

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        tensor = self._tensor(name, "getProfileShape")
        if profile_index != 0:
            raise FakeContractError(f"profile {profile_index} does not exist (the engine has 1)")
        if tensor.mode != TensorIOMode.INPUT:
            raise FakeContractError(f"getProfileShape({name!r}): only inputs have profile shapes")
        return list(self.profile.get(name, [tensor.shape] * 3))

    def create_execution_context(self) -> IExecutionContext:
        return IExecutionContext(self._trt, self._logger, self)

    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(self._graph, providers=["CPUExecutionProvider"])
        return self._session


class IExecutionContext:
    def __init__(self, trt: FakeTensorRT, logger: ILogger, engine: ICudaEngine) -> None:
        self._trt, self._logger, self.engine = trt, logger, engine
        self._inputs = [t for t in engine.tensors if t.mode == TensorIOMode.INPUT]
        self._shapes: dict[str, Dims] = {t.name: t.shape for t in self._inputs if -1 not in t.shape}
        self.addresses: dict[str, int] = {}

    def _refuse(self, message: str) -> bool:
        self._trt.error(self._logger, message)
        return False

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        tensor = self.engine._by_name.get(name)
        if tensor is None or tensor.mode != TensorIOMode.INPUT:
            return self._refuse(f"IExecutionContext::setInputShape: {name!r} is not an input tensor")
        dims = Dims(shape)
        low, _, high = self.engine.get_tensor_profile_shape(name, 0)
        if len(dims) != len(tensor.shape):
            return self._refuse(f"setInputShape({name!r}): rank {len(dims)} != {len(tensor.shape)}")
        for i, (d, declared) in enumerate(zip(dims, tensor.shape, strict=True)):
            if declared >= 0 and d != declared:
                return self._refuse(f"setInputShape({name!r}): dimension {i} is static {declared}, got {d}")
            if not low[i] <= d <= high[i]:
                return self._refuse(f"setInputShape({name!r}): {dims} is outside the profile {low}..{high}")
        self._shapes[name] = dims
        return True

    def _bindings(self) -> dict[str, int]:
        known: dict[str, int] = {}
        for tensor in self._inputs:
            if tensor.name in self._shapes:
                for param, d in zip(tensor.params, self._shapes[tensor.name], strict=True):
                    if param:
                        known[param] = d
        return known

    def get_tensor_shape(self, name: str) -> Dims:
        tensor = self.engine._tensor(name, "IExecutionContext::getTensorShape")
        if tensor.mode == TensorIOMode.INPUT:
            return self._shapes.get(name, tensor.shape)
        if any(t.name not in self._shapes for t in self._inputs):
            return tensor.shape  # dynamic dimensions stay -1 until every input shape is set
        known = self._bindings()
        return Dims(d if d >= 0 else known.get(p or "", -1) for d, p in zip(tensor.shape, tensor.params, strict=True))

    def infer_shapes(self) -> list[str]:
        return [t.name for t in self._inputs if t.name not in self._shapes]

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._trt.address_sets += 1
        if name not in self.engine._by_name:
            return self._refuse(f"IExecutionContext::setTensorAddress: no tensor named {name!r}")
        if not isinstance(memory, int) or memory == 0:
            return self._refuse(f"setTensorAddress({name!r}): {memory!r} is not a device address")
        self.addresses[name] = memory
        return True

    def get_tensor_address(self, name: str) -> int:
        return self.addresses.get(name, 0)

    def execute_async_v3(self, stream_handle: int) -> bool:
        missing_shapes = self.infer_shapes()
        if missing_shapes:
            return self._refuse(f"IExecutionContext::enqueueV3: input shapes not specified for {missing_shapes}")
        missing = [t.name for t in self.engine.tensors if t.name not in self.addresses]
        if missing:
            return self._refuse(f"IExecutionContext::enqueueV3: no address set for tensors {missing}")
        stream = self._trt.driver.streams.get(stream_handle)
        if stream is None:
            return self._refuse(f"IExecutionContext::enqueueV3: {stream_handle!r} is not a CUDA stream")
        shapes = {t.name: self.get_tensor_shape(t.name) for t in self.engine.tensors}
        addresses = dict(self.addresses)
        stream.queue.append(lambda: self._run(shapes, addresses))
        self._trt.executions += 1
        return True

    def _run(self, shapes: dict[str, Dims], addresses: dict[str, int]) -> None:
        """What the GPU does once the stream gets here: read inputs, run the graph, write outputs."""
        driver = self._trt.driver
        feeds = {}
        for tensor in self._inputs:
            dtype = np.dtype(nptype(tensor.dtype))
            raw = driver.device_bytes(addresses[tensor.name], volume(shapes[tensor.name]) * dtype.itemsize)
            feeds[tensor.name] = raw.view(dtype).reshape(shapes[tensor.name]).copy()
        outputs = [t for t in self.engine.tensors if t.mode == TensorIOMode.OUTPUT]
        results = self.engine.session().run([t.name for t in outputs], feeds)
        for tensor, value in zip(outputs, results, strict=True):
            if value.shape != shapes[tensor.name]:
                raise FakeContractError(f"{tensor.name}: ran to {value.shape}, the context said {shapes[tensor.name]}")
            value = np.ascontiguousarray(value, nptype(tensor.dtype))
            driver.device_bytes(addresses[tensor.name], value.nbytes)[:] = value.reshape(-1).view(np.uint8)


class Runtime:
    trt: FakeTensorRT

    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        self.DLA_core = -1

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        data = bytes(serialized_engine)
        if not data.startswith(ENGINE_MAGIC):
            self.trt.error(self.logger, "IRuntime::deserializeCudaEngine: magic tag does not match")
            return None
        (length,) = struct.unpack_from("<I", data, len(ENGINE_MAGIC))
        start = len(ENGINE_MAGIC) + 4
        header = json.loads(data[start : start + length])
        if header["tensorrt"] != self.trt.__version__:
            self.trt.error(self.logger, f"the engine was built by TensorRT {header['tensorrt']}, this is {VERSION}")
            return None
        return ICudaEngine(self.trt, self.logger, header, data[start + length :])


# -------------------------------------------------------------------------------- builder


class ITensor:
    def __init__(self, tensor: IoTensor) -> None:
        self.name, self.shape, self.dtype = tensor.name, tensor.shape, tensor.dtype
        self.is_network_input = tensor.mode == TensorIOMode.INPUT


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.strongly_typed = bool(flags & (1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        self.graph: bytes | None = None
        self.tensors: list[IoTensor] = []

    @property
    def num_inputs(self) -> int:
        return sum(t.mode == TensorIOMode.INPUT for t in self.tensors)

    @property
    def num_outputs(self) -> int:
        return sum(t.mode == TensorIOMode.OUTPUT for t in self.tensors)

    def get_input(self, index: int) -> ITensor:
        return ITensor([t for t in self.tensors if t.mode == TensorIOMode.INPUT][index])

    def get_output(self, index: int) -> ITensor:
        return ITensor([t for t in self.tensors if t.mode == TensorIOMode.OUTPUT][index])


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        self.network, self.logger = network, logger
        self._errors: list[str] = []

    def parse(self, model: bytes, path: str | None = None) -> bool:
        self._errors = []
        try:
            proto = onnx.ModelProto.FromString(bytes(model))
            onnx.checker.check_model(proto)
        except Exception as exc:  # noqa: BLE001 - any decode or checker failure is a parse error
            self._errors.append(f"ModelImporter: the model is not valid ONNX: {exc}")
            return False
        tensors, errors = parse_io(proto)
        self._errors.extend(errors)
        if errors:
            return False
        self.network.graph, self.network.tensors = bytes(model), tensors
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]

    def clear_errors(self) -> None:
        self._errors = []


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[Dims]] = {}

    def set_shape(self, input: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]) -> None:
        low, mid, high = Dims(min), Dims(opt), Dims(max)
        if not len(low) == len(mid) == len(high):
            raise ValueError(f"set_shape({input!r}): min, opt and max have different ranks")
        if not all(0 <= a <= b <= c for a, b, c in zip(low, mid, high, strict=True)):
            raise ValueError(f"set_shape({input!r}): need 0 <= min <= opt <= max, got {low}, {mid}, {high}")
        self.shapes[input] = [low, mid, high]

    def get_shape(self, input: str) -> list[Dims]:
        return list(self.shapes.get(input, []))


class ITimingCache:
    def __init__(self, entries: list[str]) -> None:
        self.entries = entries

    def serialize(self) -> bytes:
        return TIMING_MAGIC + json.dumps(self.entries).encode()


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags = {BuilderFlag.TF32}  # TF32 is on by default
        self.pool_limits: dict[MemoryPoolType, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None
        self.progress_monitor: Any = None
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(flag)

    def clear_flag(self, flag: BuilderFlag) -> None:
        self.flags.discard(flag)

    def get_flag(self, flag: BuilderFlag) -> bool:
        return flag in self.flags

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self.pool_limits[pool] = int(pool_size)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile.shapes:
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache([])
        if not data.startswith(TIMING_MAGIC):
            raise RuntimeError("ITimingCache: the serialized timing cache is corrupt")
        return ITimingCache(json.loads(data[len(TIMING_MAGIC) :]))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


class IHostMemory(bytes):
    pass


class Builder:
    trt: FakeTensorRT

    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        self.num_DLA_cores = 0

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        if flags & (1 << NetworkDefinitionCreationFlag.EXPLICIT_BATCH):
            self.trt.log(self.logger, Severity.WARNING, "kEXPLICIT_BATCH is deprecated and has no effect")
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def _refuse(self, message: str) -> None:
        self.trt.error(self.logger, message)

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        if network.graph is None:
            return self._refuse("IBuilder::buildSerializedNetwork: the network is empty (nothing was parsed)")
        if network.strongly_typed and config.flags & PRECISION_FLAGS:
            return self._refuse("precision flags (FP16/INT8/BF16) are not allowed on a strongly typed network")
        inputs = {t.name: t for t in network.tensors if t.mode == TensorIOMode.INPUT}
        profile = config.profiles[0].shapes if config.profiles else {}
        for name, tensor in inputs.items():
            if -1 in tensor.shape and name not in profile:
                return self._refuse(f"input {name!r} is dynamic {tensor.shape} but no optimization profile sets it")
        for name, shapes in profile.items():
            if name not in inputs:
                return self._refuse(f"the optimization profile names {name!r}, which is not a network input")
            declared = inputs[name].shape
            if any(len(s) != len(declared) for s in shapes) or any(
                d >= 0 and any(s[i] != d for s in shapes) for i, d in enumerate(declared)
            ):
                return self._refuse(f"profile {shapes} for {name!r} disagrees with its static dimensions {declared}")
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                if not monitor.step_complete("Building engine", step):
                    return self._refuse("the build was cancelled by the progress monitor")
            monitor.phase_finish("Building engine")
        if config.timing_cache is not None:
            config.timing_cache.entries.append(f"build {self.trt.builds}")
        self.trt.builds += 1
        header = {
            "tensorrt": self.trt.__version__,
            "profile": {name: [list(s) for s in shapes] for name, shapes in profile.items()},
            "flags": sorted(f.name for f in config.flags),
            "pool_limits": {p.name: v for p, v in config.pool_limits.items()},
            "strongly_typed": network.strongly_typed,
            "device": config.default_device_type.name,
        }
        encoded = json.dumps(header).encode()
        return IHostMemory(ENGINE_MAGIC + struct.pack("<I", len(encoded)) + encoded + network.graph)


# -------------------------------------------------------------------------------- the module


class FakeTensorRT(types.ModuleType):
    """The `tensorrt` module; counters and the errors it logged are attributes tests can read."""

    def __init__(self, driver: FakeDriver, version: str = VERSION) -> None:
        super().__init__("tensorrt")
        self.__version__ = version
        self.driver = driver
        self.builds = self.address_sets = self.executions = 0
        self.errors: list[str] = []
        for value in (
            DataType,
            Dims,
            TensorIOMode,
            ILogger,
            IProgressMonitor,
            NetworkDefinitionCreationFlag,
            BuilderFlag,
            MemoryPoolType,
            DeviceType,
            OnnxParser,
            ICudaEngine,
            IExecutionContext,
            IBuilderConfig,
            IOptimizationProfile,
        ):
            setattr(self, value.__name__, value)
        self.Logger = ILogger
        self.nptype, self.volume = nptype, volume
        self.Runtime = type("Runtime", (Runtime,), {"trt": self})
        self.Builder = type("Builder", (Builder,), {"trt": self})
        for alias, member in (
            ("float32", DataType.FLOAT),
            ("float16", DataType.HALF),
            ("bfloat16", DataType.BF16),
            ("int8", DataType.INT8),
            ("int32", DataType.INT32),
            ("int64", DataType.INT64),
            ("bool", DataType.BOOL),
            ("uint8", DataType.UINT8),
            ("fp8", DataType.FP8),
            ("int4", DataType.INT4),
        ):
            setattr(self, alias, member)

    def log(self, logger: ILogger, severity: Severity, message: str) -> None:
        logger.log(severity, message)

    def error(self, logger: ILogger, message: str) -> None:
        self.errors.append(message)
        self.log(logger, Severity.ERROR, message)

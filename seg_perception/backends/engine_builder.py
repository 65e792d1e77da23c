"""Build TensorRT engines from the fused ONNX graph, through the artefact cache (its paths and keys:
`engine_artefacts`).

TensorRT and pycuda are imported inside functions (``import tensorrt as trt`` there, so mypy checks every
call against the TensorRT stubs); importing this module needs neither.

Precision, per TensorRT major version (the graph TensorRT parses is always uint8 in, uint8 out):

=========  ==========================================  ============================================
precision  TensorRT 8.6 (JetPack 5) and 10.x (JetPack 6)  TensorRT 11.x (strongly typed only)
=========  ==========================================  ============================================
fp32       fp32 graph, TF32 disabled                   fp32 graph
fp16       fp32 graph + ``BuilderFlag.FP16``            model part converted to fp16 in the graph
           (weak typing: TensorRT picks fp16 kernels)   (``core.quantization.fp16_fused_graph``)
int8       QDQ graph + ``BuilderFlag.INT8``             QDQ graph (explicit quantization)
           (explicit quantization, no calibrator)
=========  ==========================================  ============================================
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from seg_perception.backends import TENSORRT_INSTALL_HINT
from seg_perception.backends.engine_artefacts import (
    BuildOptions,
    EngineBuildError,
    GpuIdentity,
    describe_gate,
    engine_key,
    engine_path,
    input_hw,
    load_cached_qdq,
    timing_cache_path,
)
from seg_perception.core import engine_cache
from seg_perception.core.errors import BackendError

if TYPE_CHECKING:
    import tensorrt as trt

LOG = logging.getLogger(__name__)


class TensorRTNotFoundError(BackendError):
    """tensorrt or pycuda cannot be imported; the message is one line that says how to install them."""


def require_tensorrt() -> None:
    """Raise TensorRTNotFoundError (one line, with install steps) unless tensorrt and pycuda import."""
    # tensorrt first, so a missing TensorRT (not a missing pycuda) is what the message names.
    for module in ("tensorrt", "pycuda.driver"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise TensorRTNotFoundError(f"TensorRT was not found ({exc}): {TENSORRT_INSTALL_HINT}") from None


def tensorrt_version() -> tuple[str, int]:
    """TensorRT's version string and major version (which selects the precision mechanism)."""
    import tensorrt as trt

    version = str(trt.__version__)
    return version, int(version.split(".")[0])


_LOGGER: trt.ILogger | None = None


def tensorrt_logger() -> trt.ILogger:
    """One logger per process, forwarding to `logging` (TensorRT warns when builder and runtime differ)."""
    global _LOGGER
    if _LOGGER is not None:
        return _LOGGER
    import tensorrt as trt

    levels = {
        int(trt.ILogger.Severity.INTERNAL_ERROR): logging.ERROR,
        int(trt.ILogger.Severity.ERROR): logging.ERROR,
        int(trt.ILogger.Severity.WARNING): logging.WARNING,
        int(trt.ILogger.Severity.INFO): logging.DEBUG,  # TensorRT's INFO is build chatter
        int(trt.ILogger.Severity.VERBOSE): logging.DEBUG - 5,
    }

    class _LoggingBridge(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # pybind11 trampolines need the explicit base __init__

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            LOG.log(levels.get(int(severity), logging.WARNING), "TensorRT: %s", msg)

    _LOGGER = _LoggingBridge()
    return _LOGGER


def gpu_identity(device: int = 0) -> GpuIdentity:
    import pycuda.driver as cuda

    try:
        cuda.init()
        dev = cuda.Device(device)
        major, minor = dev.compute_capability()
        return GpuIdentity(str(dev.name()), f"{major}.{minor}")
    except cuda.Error as exc:
        raise BackendError(f"CUDA device {device} is not usable: {exc}") from exc


def graph_for_precision(
    fused: onnx.ModelProto, precision: str, major: int, qdq: onnx.ModelProto | None
) -> onnx.ModelProto:
    """The graph TensorRT parses for a precision (see the module docstring's table)."""
    if precision == "int8":
        if qdq is None:
            raise EngineBuildError("int8 needs the QDQ graph (seg-perception quantize, or build-engine --calib DIR)")
        return qdq
    if precision == "fp16" and major >= 11:
        from seg_perception.core.quantization import fp16_fused_graph

        return fp16_fused_graph(fused)
    return fused


def _io_info(graph: onnx.ModelProto, max_batch: int) -> dict[str, Any]:
    def describe(values: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": v.name,
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                "shape": [
                    d.dim_value if d.HasField("dim_value") else f"1..{max_batch}" for d in v.type.tensor_type.shape.dim
                ],
            }
            for v in values
        ]

    return {"inputs": describe(graph.graph.input), "outputs": describe(graph.graph.output)}


class _ProgressBars:
    """tqdm bars for TensorRT's build phases (IProgressMonitor, TensorRT >= 10); INFO logs for top phases."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bars: dict[str, Any] = {}
        self._depth: dict[str, int] = {}

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        depth = 0 if parent is None else self._depth.get(parent, 0) + 1
        self._depth[phase] = depth
        if depth == 0:
            LOG.info("TensorRT build: %s", phase)
        # disable=None: no bars when stderr is not a terminal (the node building on start).
        self._bars[phase] = self._tqdm(total=steps, desc=phase, position=depth, leave=depth == 0, disable=None)

    def step(self, phase: str, step: int) -> None:
        bar = self._bars.get(phase)
        if bar is not None:
            bar.update(max(0, step + 1 - bar.n))  # `step` is the index of the step just completed

    def finish(self, phase: str) -> None:
        bar = self._bars.pop(phase, None)
        if bar is not None:
            bar.close()


def _progress_monitor(bars: _ProgressBars) -> trt.IProgressMonitor | None:
    import tensorrt as trt

    if not hasattr(trt, "IProgressMonitor"):
        return None  # TensorRT 8.6 has no progress API

    class _Monitor(trt.IProgressMonitor):
        # Called from TensorRT's C++ build loop: never let an exception escape into it.
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            try:
                bars.start(phase_name, parent_phase, num_steps)
            except Exception:  # progress display must not break a build
                LOG.debug("progress display failed", exc_info=True)

        def step_complete(self, phase_name: str, step: int) -> bool:
            try:
                bars.step(phase_name, step)
            except Exception:
                LOG.debug("progress display failed", exc_info=True)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            try:
                bars.finish(phase_name)
            except Exception:
                LOG.debug("progress display failed", exc_info=True)

    return _Monitor()


def _network_flags(major: int) -> int:
    import tensorrt as trt

    if major < 10:
        # 8.6 defaults to implicit batch, which cannot express our dynamic batch: ask for explicit batch.
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    # 10.x: explicit batch is implied and the network stays weakly typed so BuilderFlag.FP16/INT8 apply.
    # 11.x: every network is strongly typed; precision comes from the graph.
    return 0


def _configure_precision(config: trt.IBuilderConfig, precision: str, major: int) -> None:
    import tensorrt as trt

    if major >= 11:
        return  # strongly typed: the parsed graph already carries fp32, fp16 or Q/DQ types
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 is on by default on Ampere+; fp32 should mean fp32
    elif precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        # Explicit quantization: the Q/DQ scales are in the graph, so no calibrator is set.
        config.set_flag(trt.BuilderFlag.INT8)


def _configure_dla(builder: trt.Builder, config: trt.IBuilderConfig, core: int) -> None:
    import tensorrt as trt

    if builder.num_DLA_cores <= core:
        raise EngineBuildError(f"DLA core {core} requested but this device has {builder.num_DLA_cores} DLA cores")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    # Our uint8 casts, resize and argmax are not DLA layers: let them fall back to the GPU.
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _attach_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Reuse measured tactic timings (builds take minutes on Jetson); start empty on a bad or foreign file."""
    data = b""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        LOG.warning("ignoring timing cache %s: %s", path, exc)
    try:
        cache = config.create_timing_cache(data)
        attached = cache is not None and config.set_timing_cache(cache, False)
    except Exception as exc:  # noqa: BLE001 - TensorRT raises on a corrupt file; an empty cache is the fix
        LOG.debug("timing cache %s rejected: %s", path, exc)
        attached = False
    if not attached:
        if data:
            LOG.warning("timing cache %s does not fit this TensorRT/GPU; starting an empty one", path)
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, False):
            raise EngineBuildError("TensorRT could not create a timing cache")


def _save_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Last writer wins when builds run in parallel: it is a cache, and each write is atomic."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine_cache.write_bytes_atomic(path, bytes(config.get_timing_cache().serialize()))
    except OSError as exc:
        LOG.warning("could not save the timing cache %s: %s", path, exc)


def build_engine_bytes(graph: onnx.ModelProto, options: BuildOptions, timing_cache: Path) -> bytes:
    """Parse `graph` with TensorRT's ONNX parser and build a serialized engine (minutes on a Jetson)."""
    require_tensorrt()
    import tensorrt as trt

    _, major = tensorrt_version()
    logger = tensorrt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(major))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph.SerializeToString()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for error in errors:
            LOG.error("TensorRT ONNX parser: %s", error)
        raise EngineBuildError(
            f"TensorRT's ONNX parser rejected the graph with {len(errors)} error(s): {' | '.join(errors)}"
        )
    config = builder.create_builder_config()
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    _configure_precision(config, options.precision, major)
    if options.dla_core is not None:
        _configure_dla(builder, config, options.dla_core)

    profile = builder.create_optimization_profile()
    dynamic = False
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = [tensor.shape[d] for d in range(len(tensor.shape))]
        if any(d < 0 for d in dims[1:]):
            raise EngineBuildError(f"input {tensor.name} has dynamic dimensions {dims} beyond the batch")
        if dims[0] < 0:
            dynamic = True
            # opt = max: TensorRT tunes kernels for the batch the caller said it will use most.
            profile.set_shape(
                tensor.name,
                trt.Dims([1, *dims[1:]]),
                trt.Dims([options.max_batch, *dims[1:]]),
                trt.Dims([options.max_batch, *dims[1:]]),
            )
        elif dims[0] != options.max_batch:
            LOG.warning(
                "input %s has a fixed batch of %d; --max-batch %d is ignored", tensor.name, dims[0], options.max_batch
            )
    if dynamic and config.add_optimization_profile(profile) < 0:
        raise EngineBuildError("TensorRT rejected the optimization profile")

    _attach_timing_cache(config, timing_cache)
    bars = _ProgressBars()
    monitor = _progress_monitor(bars)
    if monitor is not None:
        config.progress_monitor = monitor
    else:
        LOG.info(
            "building the TensorRT engine (TensorRT %s reports no progress; this can take minutes)", trt.__version__
        )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError("TensorRT could not build the engine; its errors are logged above")
    _save_timing_cache(config, timing_cache)
    return bytes(serialized)


def ensure_engine(
    fused: onnx.ModelProto,
    options: BuildOptions,
    cache_dir: Path,
    allow_build: bool,
    qdq: onnx.ModelProto | None = None,
    out: Path | None = None,
    force: bool = False,
    qdq_gate: dict[str, Any] | None = None,
) -> engine_cache.CachedArtefact:
    """The engine for `fused` from the cache (validated against its key), built there when needed.

    int8: `qdq` (with its accuracy-gate figures `qdq_gate`) or else the gated QDQ graph in the cache."""
    require_tensorrt()
    version, major = tensorrt_version()
    gpu = gpu_identity()
    gate_info: dict[str, Any] = {}
    if options.precision == "int8" and qdq is None:
        qdq, gate = load_cached_qdq(fused, cache_dir)
        gate_info = {"int8_gate": describe_gate(gate)}
    elif options.precision == "int8" and qdq_gate is not None:
        gate_info = {"int8_gate": describe_gate(qdq_gate)}
    parsed = graph_for_precision(fused, options.precision, major, qdq)
    path = out or engine_path(cache_dir, fused, options)
    hw = input_hw(fused)
    return engine_cache.load_or_build(
        path,
        engine_key(fused, parsed, options, version, gpu),
        lambda: build_engine_bytes(parsed, options, timing_cache_path(cache_dir, version, gpu)),
        allow_build=allow_build,
        info={
            "io": _io_info(fused, options.max_batch),
            "camera_hw": list(hw),
            "workspace_mib": options.workspace_mib,
            **gate_info,
        },
        how_to_build=f"build it with: seg-perception build-engine --model SPEC.yaml --input-size {hw[1]}x{hw[0]} "
        f"--precision {options.precision} --max-batch {options.max_batch} (or set node parameter engine_build:=true)",
        force=force,
    )

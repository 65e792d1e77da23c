"""Build TensorRT engines from the fused ONNX graph, through the artefact cache.

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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from seg_perception.backends import TENSORRT_INSTALL_HINT
from seg_perception.core import engine_cache
from seg_perception.core.errors import BackendError
from seg_perception.core.graph_compiler import INPUT_NAME, graph_digest

if TYPE_CHECKING:
    import tensorrt as trt

LOG = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")
ENGINE_FORMAT = "seg_perception-engine/1"  # part of the key: bump when the build recipe changes


class TensorRTNotFoundError(BackendError):
    """tensorrt or pycuda cannot be imported; the message is one line that says how to install them."""


class EngineBuildError(BackendError):
    """TensorRT could not parse the fused graph or build an engine from it."""


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


@dataclass(frozen=True)
class GpuIdentity:
    """The GPU an engine is built for: engines are only valid on the same model and compute capability."""

    name: str
    compute_capability: str


def gpu_identity(device: int = 0) -> GpuIdentity:
    import pycuda.driver as cuda

    try:
        cuda.init()
        dev = cuda.Device(device)
        major, minor = dev.compute_capability()
        return GpuIdentity(str(dev.name()), f"{major}.{minor}")
    except cuda.Error as exc:
        raise BackendError(f"CUDA device {device} is not usable: {exc}") from exc


@dataclass(frozen=True)
class BuildOptions:
    """What an engine is built with; everything that changes the engine is part of its cache key."""

    precision: str = "fp16"
    max_batch: int = 1
    workspace_mib: int = 0  # 0: TensorRT's default (all device memory)
    dla_core: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EngineBuildError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.max_batch < 1:
            raise EngineBuildError(f"max batch {self.max_batch} must be at least 1")
        if self.workspace_mib < 0:
            raise EngineBuildError(f"workspace {self.workspace_mib} MiB must not be negative")
        if self.dla_core is not None and (self.dla_core < 0 or self.precision == "fp32"):
            raise EngineBuildError("DLA needs a core index >= 0 and precision fp16 or int8 (DLA has no fp32)")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def input_hw(graph: onnx.ModelProto) -> tuple[int, int]:
    """Camera height and width of the fused graph's uint8 input (fixed per graph; only the batch varies)."""
    for value in graph.graph.input:
        if value.name == INPUT_NAME:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[1:]):
                return int(dims[1].dim_value), int(dims[2].dim_value)
    raise EngineBuildError(f"the graph has no [N, H, W, 3] input {INPUT_NAME!r} with fixed H and W")


def shape_profile(graph: onnx.ModelProto, max_batch: int) -> str:
    height, width = input_hw(graph)
    return f"{INPUT_NAME}:1..{max_batch}x{height}x{width}x3"


def graph_for_precision(
    fused: onnx.ModelProto, precision: str, major: int, qdq: onnx.ModelProto | None
) -> onnx.ModelProto:
    """The graph TensorRT parses for a precision (see the module docstring's table)."""
    if precision == "int8":
        from seg_perception.core.qdq_recipes import graph_target

        if qdq is None:
            raise EngineBuildError("int8 needs the QDQ graph (seg-perception quantize, or build-engine --calib DIR)")
        if graph_target(qdq) != "tensorrt":  # the CPU variant's Q/DQ placement is not TensorRT's
            raise EngineBuildError(
                f"this QDQ graph was made for {graph_target(qdq)}, not TensorRT: "
                "quantize with --target tensorrt (the default) for engine builds"
            )
        return qdq
    if precision == "fp16" and major >= 11:
        from seg_perception.core.quantization import fp16_fused_graph

        return fp16_fused_graph(fused)
    return fused


def engine_key(
    fused: onnx.ModelProto, parsed: onnx.ModelProto, options: BuildOptions, version: str, gpu: GpuIdentity
) -> dict[str, str]:
    return {
        "format": ENGINE_FORMAT,
        "graph_sha256": graph_digest(fused),
        "parsed_graph_sha256": graph_digest(parsed),
        "tensorrt_version": version,
        "gpu_name": gpu.name,
        "compute_capability": gpu.compute_capability,
        "precision": options.precision,
        "shape_profile": shape_profile(fused, options.max_batch),
        "device": "gpu" if options.dla_core is None else f"dla:{options.dla_core}",
    }


def _model_name(fused: onnx.ModelProto) -> str:
    meta = {p.key: p.value for p in fused.metadata_props}
    return _slug(meta.get("seg_perception.model", fused.graph.name or "model"))


def engine_path(cache_dir: Path, fused: onnx.ModelProto, options: BuildOptions) -> Path:
    """One file per graph and build setting; a TensorRT or GPU change rebuilds it in place."""
    dla = "" if options.dla_core is None else f"-dla{options.dla_core}"
    name = f"{_model_name(fused)}-{graph_digest(fused)[:12]}-{options.precision}-b{options.max_batch}{dla}.engine"
    return cache_dir.expanduser() / name


def qdq_path(cache_dir: Path, fused: onnx.ModelProto, target: str = "tensorrt") -> Path:
    """The cache slot of `fused`'s QDQ graph for an INT8 target: one file each, never shared."""
    from seg_perception.core.qdq_recipes import recipe_for

    suffix = recipe_for(target).file_suffix
    return cache_dir.expanduser() / f"{_model_name(fused)}-{graph_digest(fused)[:12]}-{suffix}.onnx"


def qdq_key(fused: onnx.ModelProto, target: str = "tensorrt") -> dict[str, str]:
    """The QDQ graph's cache key: its target and recipe version, so one target's graph never serves the other."""
    from seg_perception.core.qdq_recipes import recipe_for

    recipe = recipe_for(target)
    return {"format": recipe.version, "target": recipe.target, "graph_sha256": graph_digest(fused)}


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


def timing_cache_path(cache_dir: Path, version: str, gpu: GpuIdentity) -> Path:
    """Timings are only valid for one TensorRT version on one GPU model."""
    return (
        cache_dir.expanduser() / f"trt{_slug(version)}-{_slug(gpu.name)}-sm{_slug(gpu.compute_capability)}.timing_cache"
    )


def store_qdq(fused: onnx.ModelProto, qdq: onnx.ModelProto, cache_dir: Path, info: dict[str, Any]) -> Path:
    """Put a QDQ graph in its target's slot (the graph's metadata names it): `ensure_engine` finds the
    TensorRT one, so int8 engines can be (re)built without calibrating; `compare`/`eval` the CPU one."""
    from seg_perception.core.qdq_recipes import graph_target

    target = graph_target(qdq)
    path = qdq_path(cache_dir, fused, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with engine_cache.exclusive_lock(path):
        engine_cache.write_artefact(path, qdq_key(fused, target), qdq.SerializeToString(), info)
    return path


def cached_qdq_gate(fused: onnx.ModelProto, cache_dir: Path, target: str = "tensorrt") -> dict[str, Any] | None:
    """The accuracy-gate figures of the valid cached QDQ graph for `fused` and `target`, or None."""
    found = engine_cache.validate(qdq_path(cache_dir, fused, target), qdq_key(fused, target))
    gate = found.sidecar.get("info", {}).get("gate") if found.ok else None
    return gate if isinstance(gate, dict) else None


def describe_gate(gate: dict[str, Any]) -> str:
    """One line for logs and /diagnostics: how the INT8 graph scored against fp32 and whether it passed."""
    verdict = "passed" if gate.get("passed") else "FAILED (accepted with --accept-accuracy-loss)"
    agreement = float(gate.get("label_agreement", float("nan"))) * 100
    miou = float(gate.get("miou_vs_fp32", float("nan"))) * 100
    return (
        f"int8 gate {verdict}: agreement {agreement:.2f}%, mIoU vs fp32 {miou:.2f}% "
        f"on {gate.get('held_out_frames', '?')} held-out frames"
    )


def load_cached_qdq(
    fused: onnx.ModelProto, cache_dir: Path, target: str = "tensorrt"
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The QDQ graph for `target` that `seg-perception quantize` / `build-engine --calib` stored, with its gate.

    A graph whose sidecar has no gate figures, or figures that failed without --accept-accuracy-loss, is
    refused: nothing runs INT8 that was not checked against fp32 on the user's frames."""
    how = (
        "calibrate first: seg-perception quantize --model SPEC.yaml --calib DIR "
        "(or build-engine --precision int8 --calib DIR) with the same camera size"
        if target == "tensorrt"
        else "calibrate first: seg-perception quantize --target onnxruntime --model SPEC.yaml --calib DIR "
        "with the same camera size"
    )
    found = engine_cache.load_or_build(
        qdq_path(cache_dir, fused, target),
        qdq_key(fused, target),
        build=lambda: b"",
        allow_build=False,
        how_to_build=how,
    )
    gate = found.sidecar.get("info", {}).get("gate")
    if not isinstance(gate, dict) or not (gate.get("passed") or gate.get("accepted_accuracy_loss")):
        raise engine_cache.ArtefactCacheError(f"{found.path} has not passed an INT8 accuracy gate; {how}")
    if not gate.get("passed"):
        LOG.warning("%s: %s (%s)", found.path.name, describe_gate(gate), "; ".join(gate.get("failures", [])))
    return onnx.ModelProto.FromString(found.data), gate


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

"""Where TensorRT engines, QDQ graphs and timing caches live in the artefact cache, and the keys that
validate them (graph hash, TensorRT version, GPU, precision, shape profile). Needs neither TensorRT nor
pycuda: `engine_builder` builds what these paths and keys name."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from seg_perception.core import engine_cache
from seg_perception.core.errors import BackendError
from seg_perception.core.graph_compiler import INPUT_NAME, graph_digest

LOG = logging.getLogger(__name__)


PRECISIONS = ("fp32", "fp16", "int8")


ENGINE_FORMAT = "seg_perception-engine/1"  # part of the key: bump when the build recipe changes


class EngineBuildError(BackendError):
    """TensorRT could not parse the fused graph or build an engine from it."""


@dataclass(frozen=True)
class GpuIdentity:
    """The GPU an engine is built for: engines are only valid on the same model and compute capability."""

    name: str
    compute_capability: str


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
    """The QDQ graph's cache key: its recipe's version, which names the target (`qdq-trt/…`, `qdq-ort-cpu/…`),
    so one target's graph never serves the other. TensorRT's key is what it was before the CPU recipe existed:
    QDQ graphs already cached on a car stay valid."""
    from seg_perception.core.qdq_recipes import recipe_for

    return {"format": recipe_for(target).version, "graph_sha256": graph_digest(fused)}


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

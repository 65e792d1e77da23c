"""Compile a user's segmentation model and its spec into one fused ONNX graph.

The fused graph takes ``uint8 [N, H, W, 3]`` camera pixels (in the camera's channel order) and
returns ``uint8 labels [N, h, w]`` and ``uint8 confidence [N, h, w]``.  Preprocessing (cast,
bilinear resize with half-pixel centres, letterbox pad, channel reorder, scale/mean/std, layout)
and postprocessing (per-head argmax and max-probability, head merge, letterbox crop, nearest
upsampling to the camera) live inside the graph, so TensorRT and ONNX Runtime run the very same
computation.  Only ops that TensorRT's ONNX parser supports are emitted.
"""

from __future__ import annotations

import hashlib

import onnx
from onnx import compose, helper, version_converter

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_postprocess import (
    CONFIDENCE_NAME,
    LABELS_NAME,
    OutputResolution,
    mask_output_name,
    postprocess_graph,
)
from seg_perception.core.graph_preprocess import (
    INPUT_NAME,
    Geometry,
    input_geometry,
    normalization_coefficients,
    preprocess_graph,
)
from seg_perception.core.model_spec import HeadSpec, ModelSpec
from seg_perception.core.onnx_checks import (
    BatchMode,
    TensorInfo,
    batch_mode,
    check_spec_against_onnx,
    graph_io,
    load_onnx,
)

__all__ = [
    "CONFIDENCE_NAME",
    "INPUT_NAME",
    "LABELS_NAME",
    "Geometry",
    "OutputResolution",
    "compile_fused_graph",
    "graph_digest",
    "input_geometry",
    "mask_output_name",
    "normalization_coefficients",
]

MIN_OPSET = 17


def _opset_of(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelSpecError("model spec key 'onnx': the model imports no default ONNX opset; re-export it")


def _upgrade(model: onnx.ModelProto) -> onnx.ModelProto:
    """Bring the user's model to at least MIN_OPSET so pre/post graphs share one opset with it."""
    if _opset_of(model) >= MIN_OPSET:
        return model
    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:
        raise ModelSpecError(
            f"model spec key 'onnx': cannot convert the model from opset {_opset_of(model)} to {MIN_OPSET} ({exc}); "
            f"re-export it with opset >= {MIN_OPSET}"
        ) from exc


def _batch_dim(mode: BatchMode, batch: int | None) -> int | str:
    if mode.fixed is not None:
        if batch is not None and batch != mode.fixed:
            how = " by its reshapes (traced at export), though its input batch is symbolic" if mode.traced else ""
            raise ModelSpecError(f"batch {batch} requested but the ONNX model's batch is fixed at {mode.fixed}{how}")
        return mode.fixed
    return batch if batch is not None else "N"


def _spatial(info_dims: tuple[int | str | None, ...], head: HeadSpec, geo: Geometry) -> tuple[int, int]:
    """Static (h, w) of a head; unknown dims fall back to the model input size."""
    rank = len(info_dims)
    if head.kind == "labels":
        h, w = info_dims[-2], info_dims[-1]
    else:
        axis = (head.channel_axis or 1) % rank
        h, w = [d for i, d in enumerate(info_dims) if i not in (0, axis)][:2]
    return (h if isinstance(h, int) else geo.model_height, w if isinstance(w, int) else geo.model_width)


def _outputs_at(model: onnx.ModelProto, spec: ModelSpec, geo: Geometry) -> dict[str, TensorInfo]:
    """The model's outputs with shapes inferred at this camera's model input size: a model with a
    dynamic height and width (resize: native or shorter_side) has heads whose size only that gives."""
    inputs, outputs = graph_io(model)
    dims = inputs[spec.input.name].dims
    hw = (dims[2], dims[3]) if spec.input.layout == "NCHW" else (dims[1], dims[2])
    want = (geo.model_height, geo.model_width)
    if all(isinstance(d, int) for d in hw):
        if hw != want:
            raise ModelSpecError(
                f"model spec key 'input.resize': {spec.input.resize} makes a {want[1]}x{want[0]} model input for "
                f"this {geo.camera_width}x{geo.camera_height} camera, but the ONNX input is fixed at {hw[1]}x{hw[0]}; "
                "export the model with a dynamic height and width, or use resize: stretch or letterbox"
            )
        return outputs
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for value in probe.graph.input:
        if value.name == spec.input.name:
            shape = value.type.tensor_type.shape.dim
            axes = (2, 3) if spec.input.layout == "NCHW" else (1, 2)
            for axis, size in zip(axes, want, strict=True):
                shape[axis].dim_value = size
    return graph_io(probe)[1]


def compile_fused_graph(
    spec: ModelSpec,
    camera_width: int,
    camera_height: int,
    camera_order: str = "RGB",
    output_resolution: OutputResolution = "input",
    batch: int | None = None,
    confidence: bool = True,
    masks: bool = False,
) -> onnx.ModelProto:
    """The fused graph for one camera size: uint8 [N, H, W, 3] in, uint8 labels (and confidence) out.

    Without `confidence` the graph has only the labels output and none of the work behind the other.
    With `masks`, one uint8 output per declared mask follows (0/255, named by mask_output_name).
    """
    if camera_order not in ("RGB", "BGR"):
        raise ModelSpecError(f"camera channel order {camera_order!r} is not RGB or BGR")
    if output_resolution not in ("input", "model"):
        raise ModelSpecError(f"output resolution {output_resolution!r} is not 'input' or 'model'")
    if camera_width < 1 or camera_height < 1:
        raise ModelSpecError(f"camera size {camera_width}x{camera_height} is empty")
    model = load_onnx(spec.onnx_path)
    check_spec_against_onnx(spec, model)
    model = _upgrade(model)
    opset, ir = _opset_of(model), model.ir_version
    n = _batch_dim(batch_mode(spec, model), batch)
    geo = input_geometry(spec, camera_width, camera_height)
    outputs = _outputs_at(model, spec, geo)

    pre_out = "seg_pre/model_input"
    pre = preprocess_graph(spec, geo, camera_order, n, opset, ir, pre_out)
    head_infos = []
    for i, head in enumerate(spec.heads):
        info = outputs[head.name]
        head_infos.append((f"seg_post/head_{i}", info.elem_type, info.rank, _spatial(info.dims, head, geo)))
    post = postprocess_graph(spec, geo, head_infos, output_resolution, n, opset, ir)

    # The model's own input disappears into the io_map: the fused graph's input (and batch) are ours.
    fused = compose.merge_models(pre, model, io_map=[(pre_out, spec.input.name)], prefix2="model/")
    fused = compose.merge_models(
        fused,
        post,
        io_map=[(f"model/{h.name}", hi[0]) for h, hi in zip(spec.heads, head_infos, strict=True)],
        outputs=[
            LABELS_NAME,
            *([CONFIDENCE_NAME] if confidence else []),
            *([mask_output_name(m) for m in spec.masks] if masks else []),
        ],
    )
    # merge_models lists the default opset once per merged model; keep one entry per domain.
    versions: dict[str, int] = {}
    for entry in fused.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        versions[domain] = max(versions.get(domain, 0), int(entry.version))
    del fused.opset_import[:]
    fused.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    fused.graph.name = f"seg_perception_fused_{spec.name}"
    fused.doc_string = (
        f"seg_perception fused graph for {spec.name}: camera {camera_width}x{camera_height} {camera_order}, "
        f"outputs at {output_resolution} resolution"
    )
    del fused.metadata_props[:]
    for key, value in {
        "seg_perception.model": spec.name,
        "seg_perception.camera_size": f"{camera_width}x{camera_height}",
        "seg_perception.camera_order": camera_order,
        "seg_perception.output_resolution": output_resolution,
    }.items():
        fused.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    try:
        onnx.checker.check_model(fused)
    except onnx.checker.ValidationError as exc:
        raise ModelSpecError(f"the fused graph for {spec.name} is invalid: {exc}") from exc
    return fused


def graph_digest(model: onnx.ModelProto) -> str:
    """sha256 of the serialized graph: the identity engine caches key on."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()

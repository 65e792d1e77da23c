"""Checks that a model spec agrees with the ONNX graph it names, before anything is compiled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.model_spec import MAX_CLASSES, HeadSpec, ModelSpec

Dim = int | str | None  # a static size, a symbolic name, or unknown


@dataclass(frozen=True)
class TensorInfo:
    """Name, ONNX element type and dimensions of one graph input or output."""

    name: str
    elem_type: int
    dims: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.dims)


def _info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dims: list[Dim] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return TensorInfo(value.name, int(tensor.elem_type), tuple(dims))


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load an ONNX model with a package error instead of a protobuf traceback."""
    try:
        return onnx.load(str(path))
    except FileNotFoundError as exc:
        raise ModelSpecError(f"model spec key 'onnx': file {path} does not exist; fix the path") from exc
    except Exception as exc:
        raise ModelSpecError(f"model spec key 'onnx': {path} is not a readable ONNX model ({exc})") from exc


@dataclass(frozen=True)
class BatchMode:
    """How many frames one model call takes: `fixed` K (frames then run K at a time) or None (any number).
    `traced` marks a symbolic input batch that the graph fixes anyway: reshapes traced at export with a
    constant batch, as Hugging Face SegFormer exported with `dynamic_axes` is."""

    fixed: int | None
    traced: bool = False

    def __str__(self) -> str:
        if self.fixed is None:
            return "dynamic"
        if self.traced:
            return f"fixed {self.fixed} (the input batch is symbolic but the graph's reshapes fix {self.fixed})"
        return f"fixed {self.fixed}"


PROBE_BATCHES = (2, 3)  # two probes, so that an export traced at batch 2 is caught as well as one traced at 1


def _with_batch(model: onnx.ModelProto, input_name: str, batch: int) -> onnx.ModelProto:
    """A shape-only copy of the model: the input batch set to `batch`, declared output and inner shapes
    dropped, so that shape inference says what the graph makes of that batch, not what the export claimed."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for value in probe.graph.input:
        if value.name == input_name:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    del probe.graph.value_info[:]
    return probe


def traced_batch(model: onnx.ModelProto, input_name: str, head_names: list[str]) -> int | None:
    """The batch a symbolic-batch model really fixes, or None when its heads follow the input batch or
    shape inference cannot tell. Shape inference with data propagation runs at each probe batch: a head
    whose batch comes out as another constant means a reshape (or the like) fixed it at export."""
    for batch in PROBE_BATCHES:
        try:
            inferred = onnx.shape_inference.infer_shapes(_with_batch(model, input_name, batch), data_prop=True)
        except Exception:  # noqa: BLE001 - inference is best effort: without it the declared batch stands
            return None
        outputs = {v.name: _info(v) for v in inferred.graph.output}
        for name in head_names:
            dims = outputs[name].dims if name in outputs else ()
            if dims and isinstance(dims[0], int) and dims[0] != batch:
                return dims[0]
    return None


def batch_mode(spec: ModelSpec, model: onnx.ModelProto | None = None) -> BatchMode:
    """The batch the model takes: its input's fixed batch, the batch its graph fixes behind a symbolic
    input batch (found by shape inference, before any frame runs), or dynamic."""
    if model is None:
        try:
            model = onnx.load(str(spec.onnx_path), load_external_data=False)  # shapes only: weights not needed
        except Exception:  # noqa: BLE001 - load_onnx reports unreadable files with the spec key
            model = load_onnx(spec.onnx_path)
    for value in model.graph.input:
        if value.name == spec.input.name:
            dims = value.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return BatchMode(int(dims[0].dim_value))
    fixed = traced_batch(model, spec.input.name, [h.name for h in spec.heads])
    return BatchMode(fixed, traced=True) if fixed is not None else BatchMode(None)


def fixed_batch_size(spec: ModelSpec) -> int | None:
    """The batch size the model fixes (a static export, or reshapes traced at a constant batch), or None
    when it is dynamic."""
    return batch_mode(spec).fixed


def graph_io(model: onnx.ModelProto) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """Real inputs (initializers excluded) and outputs, with shapes filled in by shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is best effort; declared shapes still count
        inferred = model
    initializers = {i.name for i in inferred.graph.initializer}
    inputs = {v.name: _info(v) for v in inferred.graph.input if v.name not in initializers}
    outputs = {v.name: _info(v) for v in inferred.graph.output}
    return inputs, outputs


def head_num_classes(head: HeadSpec, info: TensorInfo) -> Dim:
    """The static class-channel size of a head, or the symbolic/unknown dim."""
    if head.channel_axis is None:
        return None
    return info.dims[head.channel_axis]


def check_spec_against_onnx(spec: ModelSpec, model: onnx.ModelProto | None = None) -> None:
    """Raise ModelSpecError naming the key and the fix when spec and ONNX graph disagree."""
    model = model if model is not None else load_onnx(spec.onnx_path)
    inputs, outputs = graph_io(model)
    inp = spec.input
    if inp.name not in inputs:
        raise ModelSpecError(
            f"model spec key 'input.name': the ONNX model has no input {inp.name!r}; "
            f"set it to one of: {', '.join(inputs) or '(none)'}"
        )
    others = [n for n in inputs if n != inp.name]
    if others:
        raise ModelSpecError(
            f"model spec key 'input.name': the ONNX model has extra inputs {others}; "
            "export the model with a single image input"
        )
    dims = inputs[inp.name].dims
    if len(dims) != 4:
        raise ModelSpecError(
            f"model spec key 'input.layout': input {inp.name!r} has rank {len(dims)}, expected 4 ({inp.layout})"
        )
    c, h, w = (dims[1], dims[2], dims[3]) if inp.layout == "NCHW" else (dims[3], dims[1], dims[2])
    if isinstance(c, int) and c != 3:
        other = "NHWC" if inp.layout == "NCHW" else "NCHW"
        hint = f"the layout is probably {other}" if 3 in dims else "the model must take 3-channel images"
        raise ModelSpecError(
            f"model spec key 'input.layout': {inp.layout} puts the channels of input {inp.name!r} "
            f"(dims {list(dims)}) at a dimension of size {c}, not 3; {hint}"
        )
    for key, declared, actual in (("input.height", inp.height, h), ("input.width", inp.width, w)):
        if isinstance(actual, int) and actual != declared:
            raise ModelSpecError(
                f"model spec key '{key}': {declared} disagrees with the ONNX input {inp.name!r} "
                f"(dims {list(dims)}); set it to {actual}"
            )
    for i, head in enumerate(spec.heads):
        key = f"outputs[{i}]"
        if head.name not in outputs:
            raise ModelSpecError(
                f"model spec key '{key}.name': the ONNX model has no output {head.name!r}; "
                f"use one of: {', '.join(outputs)}"
            )
        info = outputs[head.name]
        if head.kind == "labels":
            if info.rank not in (3, 4) or (
                info.rank == 4 and info.dims[1] not in (1, None) and isinstance(info.dims[1], int)
            ):
                raise ModelSpecError(
                    f"model spec key '{key}.kind': labels head {head.name!r} has dims {list(info.dims)}; "
                    "a labels head must be [N, H, W] or [N, 1, H, W]"
                )
            if info.elem_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.UINT8):
                raise ModelSpecError(
                    f"model spec key '{key}.kind': output {head.name!r} is of type "
                    f"{onnx.TensorProto.DataType.Name(info.elem_type)}, not integer labels; "
                    "use kind: logits or probabilities"
                )
            continue
        if info.rank != 4:
            raise ModelSpecError(
                f"model spec key '{key}.name': output {head.name!r} has rank {info.rank} (dims {list(info.dims)}), "
                "expected a 4-D [N, C, H, W] or [N, H, W, C] score map"
            )
        axis = head.channel_axis if head.channel_axis is not None else 1
        if not -info.rank <= axis < info.rank or axis % info.rank == 0:
            raise ModelSpecError(
                f"model spec key '{key}.channel_axis': {axis} is not a class axis of dims {list(info.dims)}; use 1 or 3"
            )
        n = head_num_classes(head, info)
        listed = len(head.class_ids)
        if isinstance(n, int) and n != listed:
            # Say what is wrong: the axis (another axis holds exactly the listed classes, or this one is
            # too big to be a class axis) before blaming the class list.
            matching = [i for i, d in enumerate(info.dims) if i not in (0, axis % info.rank) and d == listed]
            if matching or n > MAX_CLASSES:
                fix = (
                    f"the {listed} listed classes match axis {matching[0]}; set channel_axis: {matching[0]}"
                    if matching
                    else f"a class axis holds at most {MAX_CLASSES} classes, so axis {axis} is probably spatial; "
                    "the class axis of [N, C, H, W] is 1 and of [N, H, W, C] is 3"
                )
                raise ModelSpecError(
                    f"model spec key '{key}.channel_axis': axis {axis} of output {head.name!r} "
                    f"(dims {list(info.dims)}) has size {n}; {fix}"
                )
            raise ModelSpecError(
                f"model spec key '{key}.classes': lists {len(head.class_ids)} classes but output {head.name!r} "
                f"has {n} channels on axis {axis} (dims {list(info.dims)}); list exactly {n} class names"
            )

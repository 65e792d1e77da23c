"""Declarative model spec: one YAML file tells the node how to feed a model and read its heads.

The spec is parsed into frozen dataclasses and validated twice: on its own (types, ranges, unknown
keys, class references) and against the ONNX file it names (tensor names, channel count, class
count).  Every error names the offending key and says how to fix it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_resize import INTERPOLATIONS

SPEC_VERSION = 1
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
RESIZE_POLICIES = ("stretch", "letterbox", "shorter_side", "native")
PADDED_POLICIES = ("letterbox", "shorter_side", "native")  # the ones that may pad (pad_value)
HEAD_KINDS = ("logits", "probabilities", "labels")
MAX_CLASSES = 255  # labels are mono8 and one value must stay free for the ignore id
UPSAMPLING_METHODS = ("labels_nearest", "logits_bilinear")
MASK_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")  # with match(): becomes the topic segmentation/<name>_mask
RESERVED_MASK_NAMES = ("color",)  # segmentation/color_mask is the colour image


@dataclass(frozen=True)
class ClassInfo:
    """One class of the output label space."""

    name: str
    color: tuple[int, int, int]
    drivable: bool = False
    obstacle: bool = False
    ignore_in_eval: bool = False  # `eval` never scores it (a void class), as cityscapesScripts' ignoreInEval


@dataclass(frozen=True)
class InputSpec:
    """How camera pixels become the model's input tensor."""

    name: str
    layout: str
    width: int
    height: int
    channel_order: str
    pixel_range: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "stretch"
    pad_value: int = 0
    interpolation: str = "bilinear"  # one of graph_resize.INTERPOLATIONS
    shorter_side: int = 0  # resize: shorter_side: the camera's shorter side becomes this (torchvision Resize(int))
    pad_to_multiple: int = 1  # shorter_side / native: pad bottom and right to a multiple of the net's stride


@dataclass(frozen=True)
class HeadSpec:
    """One model output. ``class_ids[i]`` is the global id painted for head index i, or None."""

    name: str
    kind: str
    channel_axis: int | None
    class_ids: tuple[int | None, ...]


@dataclass(frozen=True)
class MaskSpec:
    """A mono8 mask (255 inside, 0 outside) read from one head's own argmax, whatever the heads that
    paint over it in the merged labels. ``inside[i]`` says whether head index i is inside."""

    name: str
    head: int  # index into ModelSpec.heads
    inside: tuple[bool, ...]

    @property
    def topic(self) -> str:
        """The output name: segmentation/<name>_mask (the drivable mask keeps segmentation/drivable_mask)."""
        return f"{self.name}_mask"


@dataclass(frozen=True)
class UpsamplingSpec:
    """How head-resolution outputs reach the output resolution.

    labels_nearest: argmax at head resolution, labels resized with nearest (cheap).
    logits_bilinear: logits resized bilinearly to the output resolution, then argmax (the reference
    post-processing of Hugging Face and mmsegmentation; costs a C-channel resize per pixel).
    """

    method: str = "labels_nearest"
    align_corners: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A validated model spec. Heads merge in order: later heads paint over earlier ones."""

    name: str
    onnx_path: Path
    input: InputSpec
    heads: tuple[HeadSpec, ...]
    classes: tuple[ClassInfo, ...]
    ignore_id: int
    description: str = ""
    spec_path: Path | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    masks: tuple[MaskSpec, ...] = ()
    upsampling: UpsamplingSpec = UpsamplingSpec()

    @property
    def drivable_mask(self) -> MaskSpec | None:
        """The mask named `drivable`: when declared, the drivable mask comes from its head, not the labels."""
        return next((m for m in self.masks if m.name == "drivable"), None)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def drivable_ids(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.classes) if c.drivable)

    @property
    def obstacle_ids(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.classes) if c.obstacle)

    @property
    def ignored_ids(self) -> tuple[int, ...]:
        """Classes marked ignore_in_eval: left out of every score `eval` reports."""
        return tuple(i for i, c in enumerate(self.classes) if c.ignore_in_eval)


def default_spec_path() -> Path:
    """The bundled demo model's spec: in the source tree, or in an installed share directory."""
    here = Path(__file__).resolve().parent.parent.parent / "models" / "demo_road_seg.yaml"
    if here.is_file():
        return here
    try:  # installed by colcon: share/seg_perception/models
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("seg_perception")) / "models" / "demo_road_seg.yaml"
    except Exception:  # noqa: BLE001 - ament index absent or package not installed
        return here


# --------------------------------------------------------------------------------------------
# Parsing helpers: each takes the dotted key path so messages point at the exact entry.


def _fail(key: str, problem: str, fix: str) -> ModelSpecError:
    where = f"model spec key '{key}'" if key else "model spec"
    return ModelSpecError(f"{where}: {problem}; {fix}")


def _mapping(value: Any, key: str, allowed: Sequence[str], required: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(key, f"expected a mapping, got {type(value).__name__}", "write it as 'name: value' lines")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _fail(
            f"{key}.{unknown[0]}" if key else unknown[0],
            "unknown key",
            f"remove it or use one of: {', '.join(allowed)}",
        )
    for name in required:
        if name not in value:
            where = f"{key}.{name}" if key else name
            raise _fail(where, "missing", "this field is required")
    return value


def _str(value: Any, key: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(key, f"expected a non-empty string, got {value!r}", "quote the value")
    if choices is not None and value not in choices:
        raise _fail(key, f"{value!r} is not allowed", f"use one of: {', '.join(choices)}")
    return value


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(key, f"expected an integer in [{low}, {high}], got {value!r}", "fix the number")
    return value


def _float(value: Any, key: str, positive: bool = False) -> float:
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond float's range (YAML reads any number of digits)
        number = math.inf
    if not math.isfinite(number):
        raise _fail(key, f"expected a finite number, got {value!r}", "fix the number")
    if positive and number <= 0:
        raise _fail(key, f"must be > 0, got {value!r}", "use a positive number")
    return number


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}", "write true or false")
    return value


def _triple(value: Any, key: str, positive: bool = False) -> tuple[float, float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        raise _fail(key, f"expected a list of 3 numbers, got {value!r}", "give one value per channel")
    a, b, c = (_float(v, f"{key}[{i}]", positive) for i, v in enumerate(value))
    return (a, b, c)


def _color(value: Any, key: str) -> tuple[int, int, int]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        raise _fail(key, f"expected [r, g, b], got {value!r}", "give three integers 0-255")
    r, g, b = (_int(v, f"{key}[{i}]", 0, 255) for i, v in enumerate(value))
    return (r, g, b)


# --------------------------------------------------------------------------------------------


def _parse_input(raw: Any) -> InputSpec:
    keys = (
        "name",
        "layout",
        "width",
        "height",
        "channel_order",
        "pixel_range",
        "mean",
        "std",
        "resize",
        "pad_value",
        "interpolation",
        "shorter_side",
        "pad_to_multiple",
    )
    m = _mapping(raw, "input", keys, keys[:8])
    resize = _str(m.get("resize", "stretch"), "input.resize", RESIZE_POLICIES)
    if "pad_value" in m and resize not in PADDED_POLICIES:
        raise _fail(
            "input.pad_value", f"not used with resize: {resize}", f"remove it or use {', '.join(PADDED_POLICIES)}"
        )
    if ("shorter_side" in m) != (resize == "shorter_side"):
        raise _fail(
            "input.shorter_side",
            "missing" if resize == "shorter_side" else f"not used with resize: {resize}",
            "give it (the camera's shorter side becomes this many pixels) exactly with resize: shorter_side",
        )
    if "pad_to_multiple" in m and resize not in ("shorter_side", "native"):
        raise _fail("input.pad_to_multiple", f"not used with resize: {resize}", "use it with shorter_side or native")
    interpolation = _str(m.get("interpolation", "bilinear"), "input.interpolation", INTERPOLATIONS)
    # Any positive scale: model input = (pixel / 255 * pixel_range - mean) / std.
    pixel_range = _float(m["pixel_range"], "input.pixel_range", positive=True)
    return InputSpec(
        name=_str(m["name"], "input.name"),
        layout=_str(m["layout"], "input.layout", LAYOUTS),
        width=_int(m["width"], "input.width", 1, 16384),
        height=_int(m["height"], "input.height", 1, 16384),
        channel_order=_str(m["channel_order"], "input.channel_order", CHANNEL_ORDERS),
        pixel_range=pixel_range,
        mean=_triple(m["mean"], "input.mean"),
        std=_triple(m["std"], "input.std", positive=True),
        resize=resize,
        pad_value=_int(m.get("pad_value", 0), "input.pad_value", 0, 255),
        interpolation=interpolation,
        shorter_side=_int(m.get("shorter_side", 0), "input.shorter_side", 0 if resize != "shorter_side" else 1, 16384),
        pad_to_multiple=_int(m.get("pad_to_multiple", 1), "input.pad_to_multiple", 1, 1024),
    )


def _parse_classes(raw: Any) -> tuple[ClassInfo, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise _fail("classes", "expected a non-empty list", "list every class as {name: ..., color: [r, g, b]}")
    if len(raw) > MAX_CLASSES:
        raise _fail("classes", f"{len(raw)} classes exceed the mono8 limit {MAX_CLASSES}", "merge classes")
    out: list[ClassInfo] = []
    for i, item in enumerate(raw):
        key = f"classes[{i}]"
        m = _mapping(item, key, ("name", "color", "drivable", "obstacle", "ignore_in_eval"), ("name", "color"))
        info = ClassInfo(
            name=_str(m["name"], f"{key}.name"),
            color=_color(m["color"], f"{key}.color"),
            drivable=_bool(m.get("drivable", False), f"{key}.drivable"),
            obstacle=_bool(m.get("obstacle", False), f"{key}.obstacle"),
            ignore_in_eval=_bool(m.get("ignore_in_eval", False), f"{key}.ignore_in_eval"),
        )
        if any(c.name == info.name for c in out):
            raise _fail(f"{key}.name", f"duplicate class name {info.name!r}", "class names must be unique")
        out.append(info)
    return tuple(out)


def _parse_heads(raw: Any, class_names: Sequence[str]) -> tuple[HeadSpec, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise _fail("outputs", "expected a non-empty list of heads", "describe at least one model output")
    heads: list[HeadSpec] = []
    for i, item in enumerate(raw):
        key = f"outputs[{i}]"
        m = _mapping(item, key, ("name", "kind", "channel_axis", "classes"), ("name", "kind", "classes"))
        kind = _str(m["kind"], f"{key}.kind", HEAD_KINDS)
        axis: int | None = None
        if kind == "labels":
            if "channel_axis" in m:
                raise _fail(f"{key}.channel_axis", "a labels head has no channel axis", "remove channel_axis")
        else:
            if "channel_axis" not in m:
                raise _fail(f"{key}.channel_axis", "missing", f"a {kind} head needs the axis that holds its classes")
            axis = _int(m["channel_axis"], f"{key}.channel_axis", -4, 3)
        names = m["classes"]
        if not isinstance(names, Sequence) or isinstance(names, str) or not names:
            raise _fail(f"{key}.classes", "expected a non-empty list", "map each head index to a class name or null")
        ids: list[int | None] = []
        for j, name in enumerate(names):
            if name is None:
                if i == 0:
                    raise _fail(
                        f"{key}.classes[{j}]",
                        "null in the first head",
                        "the first head paints every pixel, so every index needs a class name",
                    )
                ids.append(None)
                continue
            name = _str(name, f"{key}.classes[{j}]")
            if name not in class_names:
                raise _fail(f"{key}.classes[{j}]", f"unknown class {name!r}", f"use one of: {', '.join(class_names)}")
            ids.append(class_names.index(name))
        if all(c is None for c in ids):
            raise _fail(f"{key}.classes", "every entry is null, so the head paints nothing", "name a class")
        if any(h.name == m["name"] for h in heads):
            raise _fail(f"{key}.name", f"duplicate output {m['name']!r}", "each head names a different tensor")
        heads.append(HeadSpec(name=_str(m["name"], f"{key}.name"), kind=kind, channel_axis=axis, class_ids=tuple(ids)))
    return tuple(heads)


def _parse_masks(raw: Any, heads: Sequence[HeadSpec], class_names: Sequence[str]) -> tuple[MaskSpec, ...]:
    """`masks: {name: {head: <output name>, classes: [<class names that head maps to>]}}`."""
    if not isinstance(raw, Mapping):
        raise _fail("masks", "expected a mapping", "write 'name: {head: OUTPUT, classes: [CLASS, ...]}' lines")
    head_names = [h.name for h in heads]
    masks: list[MaskSpec] = []
    for name, item in raw.items():
        key = f"masks.{name}"
        if not isinstance(name, str) or not MASK_NAME.match(name) or name in RESERVED_MASK_NAMES:
            raise _fail(
                key,
                f"{name!r} cannot name a mask (it becomes the topic segmentation/<name>_mask)",
                "use lower-case letters, digits and _, starting with a letter, and not 'color'",
            )
        m = _mapping(item, key, ("head", "classes"), ("head", "classes"))
        head_name = _str(m["head"], f"{key}.head")
        if head_name not in head_names:
            raise _fail(f"{key}.head", f"no output named {head_name!r}", f"use one of: {', '.join(head_names)}")
        head_index = head_names.index(head_name)
        head = heads[head_index]
        names = m["classes"]
        if not isinstance(names, Sequence) or isinstance(names, str) or not names:
            raise _fail(f"{key}.classes", "expected a non-empty list", "name the classes inside the mask")
        ids: list[int] = []
        for j, cname in enumerate(names):
            cname = _str(cname, f"{key}.classes[{j}]")
            cid = class_names.index(cname) if cname in class_names else None
            if cid is None or cid not in head.class_ids:
                mapped = [class_names[c] for c in head.class_ids if c is not None]
                raise _fail(
                    f"{key}.classes[{j}]",
                    f"head {head_name!r} has no class {cname!r}",
                    f"use one of its classes: {', '.join(mapped)}",
                )
            ids.append(cid)
        inside = tuple(c is not None and c in ids for c in head.class_ids)
        masks.append(MaskSpec(name=name, head=head_index, inside=inside))
    return tuple(masks)


def _parse_upsampling(raw: Any, heads: Sequence[HeadSpec]) -> UpsamplingSpec:
    m = _mapping(raw, "upsampling", ("method", "align_corners"), ("method",))
    method = _str(m["method"], "upsampling.method", UPSAMPLING_METHODS)
    if "align_corners" in m and method != "logits_bilinear":
        raise _fail("upsampling.align_corners", "only used with method: logits_bilinear", "remove it")
    if method == "logits_bilinear":
        labels_heads = [h.name for h in heads if h.kind == "labels"]
        if labels_heads:
            raise _fail(
                "upsampling.method",
                f"labels head {labels_heads[0]!r} has no logits to interpolate",
                "use labels_nearest, or export the model's logits",
            )
    return UpsamplingSpec(method=method, align_corners=_bool(m.get("align_corners", False), "upsampling.align_corners"))


def parse_model_spec(raw: Any, base_dir: Path, spec_path: Path | None = None) -> ModelSpec:
    """Validate an already-loaded YAML document; relative ONNX paths resolve against base_dir."""
    top = (
        "spec_version",
        "name",
        "description",
        "onnx",
        "input",
        "outputs",
        "classes",
        "ignore_id",
        "metrics",
        "masks",
        "upsampling",
    )
    m = _mapping(raw, "", top, ("spec_version", "name", "onnx", "input", "outputs", "classes"))
    version = _int(m["spec_version"], "spec_version", 1, 1_000_000)
    if version != SPEC_VERSION:
        raise _fail("spec_version", f"version {version} is not supported", f"this release reads version {SPEC_VERSION}")
    classes = _parse_classes(m["classes"])
    ignore_id = _int(m.get("ignore_id", 255), "ignore_id", 0, 255)
    if ignore_id < len(classes):
        raise _fail("ignore_id", f"{ignore_id} collides with class '{classes[ignore_id].name}'", "use 255")
    onnx_path = Path(_str(m["onnx"], "onnx"))
    metrics = m.get("metrics", {}) or {}
    if not isinstance(metrics, Mapping):
        raise _fail("metrics", "expected a mapping", "write 'name: value' lines or remove it")
    class_names = [c.name for c in classes]
    heads = _parse_heads(m["outputs"], class_names)
    return ModelSpec(
        name=_str(m["name"], "name"),
        description=str(m.get("description", "")),
        onnx_path=onnx_path if onnx_path.is_absolute() else (base_dir / onnx_path),
        input=_parse_input(m["input"]),
        heads=heads,
        classes=classes,
        ignore_id=ignore_id,
        spec_path=spec_path,
        metrics=dict(metrics),
        masks=_parse_masks(m.get("masks", {}) or {}, heads, class_names),
        upsampling=_parse_upsampling(m["upsampling"], heads) if "upsampling" in m else UpsamplingSpec(),
    )

"""The camera sizes a spec's fused graph can be compiled for, so `bench` measures what the node would run.

A spec with `resize: native` or `shorter_side` over an ONNX model whose input height and width are fixed
accepts only the camera sizes that its resize (and padding) turns into exactly that input. `bench` asks
for camera sizes of its own (--sizes, --summary-size, --batching-size); for such a spec each one it cannot
feed is replaced by the accepted size nearest in pixel count (shorter_side: searched over nearby shorter
sides; native: the ONNX input's own size), and the report says which was replaced by what, naming an
orientation change (a landscape input accepts only landscape cameras).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil, floor

from seg_perception.core.graph_preprocess import input_geometry
from seg_perception.core.model_spec import ModelSpec


@dataclass(frozen=True)
class FixedInput:
    """The model input's fixed (width, height), or None where the graph takes any camera size."""

    width: int
    height: int


def fixed_input(spec: ModelSpec) -> FixedInput | None:
    """The ONNX input's static width and height where the spec's resize makes the model input follow the
    camera (native, shorter_side) and the ONNX input is fixed; None where any camera size compiles."""
    if spec.input.resize not in ("native", "shorter_side"):
        return None
    from seg_perception.core.onnx_checks import graph_io, load_onnx

    dims = graph_io(load_onnx(spec.onnx_path))[0][spec.input.name].dims
    h, w = (dims[2], dims[3]) if spec.input.layout == "NCHW" else (dims[1], dims[2])
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return FixedInput(w, h)
    return None


def _accepted(spec: ModelSpec, fixed: FixedInput, width: int, height: int) -> bool:
    geo = input_geometry(spec, width, height)
    return (geo.model_width, geo.model_height) == (fixed.width, fixed.height)


def _long_sides(spec: ModelSpec, fixed: FixedInput, short: int) -> range:
    """The camera long sides that could give the fixed input's long side from shorter side `short`:
    torchvision's long side is int(side * long / short), +-2 for the truncation and pad_to_multiple."""
    side, long_model = spec.input.shorter_side, max(fixed.width, fixed.height)
    low, high = floor(long_model * short / side) - 2, ceil((long_model + 1) * short / side) + 2
    return range(max(short, low), high + 1)


def accepted_size(spec: ModelSpec, fixed: FixedInput, width: int, height: int) -> tuple[int, int] | None:
    """`width`x`height` if the graph accepts it; else the accepted camera size whose pixel count is nearest
    (shorter_side: every shorter side from half to twice the requested one, in the input's orientation,
    and the input's own size; native: the input's own size); None if no camera size fits."""
    if _accepted(spec, fixed, width, height):
        return width, height
    candidates: list[tuple[int, int]] = [(fixed.width, fixed.height)]  # the input's own size
    if spec.input.resize == "shorter_side":
        short = min(width, height)
        for side in range(max(1, short // 2), 2 * short + 1):
            for long in _long_sides(spec, fixed, side):
                candidates.append((long, side) if fixed.width >= fixed.height else (side, long))
    fits = [c for c in candidates if _accepted(spec, fixed, *c)]
    if not fits:
        return None
    aspect = width / height
    return min(fits, key=lambda c: (abs(c[0] * c[1] - width * height), abs(c[0] / c[1] - aspect), c))


def _orientation(size: tuple[int, int]) -> str:
    return "portrait" if size[0] < size[1] else "landscape"


@dataclass(frozen=True)
class SizePlan:
    """The camera sizes bench measures, and what it replaced or refused (one line each)."""

    sizes: list[tuple[int, int]]
    summary_size: tuple[int, int] | None
    batching_size: tuple[int, int] | None
    substitutions: list[dict[str, str]]
    refused: list[dict[str, str]]
    fallbacks: list[dict[str, str]] = field(default_factory=list)  # --summary-size/--batching-size refused


def _name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def plan_sizes(
    spec: ModelSpec, sizes: list[tuple[int, int]], summary_size: tuple[int, int], batching_size: tuple[int, int]
) -> SizePlan:
    """The requested sizes where the graph accepts them, each other one replaced by accepted_size (or
    refused where none exists), duplicates dropped in order; a refused summary or batching size falls back
    to the first benched size (listed in `fallbacks`), so the rest is still measured."""
    fixed = fixed_input(spec)
    if fixed is None:
        return SizePlan(list(sizes), summary_size, batching_size, [], [])
    why = (
        f"resize: {spec.input.resize} over an ONNX input fixed at {fixed.width}x{fixed.height} accepts only "
        "camera sizes it turns into that input"
    )
    substitutions: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    seen: dict[tuple[int, int], tuple[int, int] | None] = {}

    def resolve(size: tuple[int, int]) -> tuple[int, int] | None:
        if size not in seen:
            seen[size] = accepted_size(spec, fixed, *size)
            got = seen[size]
            if got is None:
                refused.append({"requested": _name(size), "reason": f"{why}; none is near {_name(size)}"})
            elif got != size:
                turned = _orientation(size) != _orientation(got)
                reason = why + (f"; {_orientation(size)} {_name(size)} turned {_orientation(got)}" if turned else "")
                substitutions.append({"requested": _name(size), "benched": _name(got), "reason": reason})
        return seen[size]

    out: list[tuple[int, int]] = []
    for size in sizes:
        got = resolve(size)
        if got is not None and got not in out:
            out.append(got)
    summary = resolve(summary_size)
    batching = resolve(batching_size)
    fallbacks: list[dict[str, str]] = []
    if out:
        for option, requested, got in (
            ("--summary-size", summary_size, summary),
            ("--batching-size", batching_size, batching),
        ):
            if got is None:
                fallbacks.append({"option": option, "requested": _name(requested), "benched": _name(out[0])})
        summary, batching = summary or out[0], batching or out[0]
    return SizePlan(out, summary, batching, substitutions, refused, fallbacks)

"""Every key of a model spec: the one table of them, for the generated reference page.

`docs/reference/model-spec.md` is generated from `SPEC_KEYS` (tools/gen_docs_reference.py), and
`test/test_spec_keys_are_the_parsers.py` parses full specs and checks that each mapping the parser reads
(`core/model_spec.py`) allows exactly the keys listed here under its group, and requires exactly those marked
required. Allowed values come from model_spec's own constants, so they cannot drift either. Data only.
"""

from __future__ import annotations

from dataclasses import dataclass

from seg_perception.core.graph_resize import INTERPOLATIONS
from seg_perception.core.model_spec import (
    CHANNEL_ORDERS,
    HEAD_KINDS,
    LAYOUTS,
    MAX_CLASSES,
    PADDED_POLICIES,
    RESIZE_POLICIES,
    SPEC_VERSION,
    UPSAMPLING_METHODS,
)


@dataclass(frozen=True)
class SpecKey:
    """One key. `group` is the mapping it sits in: '' (the top level), `input`, `outputs[]` (each head),
    `classes[]` (each class), `masks.<name>` (each mask), `upsampling`."""

    group: str
    key: str
    required: bool
    values: str
    meaning: str

    @property
    def path(self) -> str:
        return f"{self.group}.{self.key}" if self.group else self.key


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f"`{c}`" for c in choices)


_TOP, _IN, _OUT, _CLS, _MASK, _UP = "", "input", "outputs[]", "classes[]", "masks.<name>", "upsampling"
SPEC_KEYS: tuple[SpecKey, ...] = (
    SpecKey(_TOP, "spec_version", True, f"`{SPEC_VERSION}`", "the spec format this release reads"),
    SpecKey(_TOP, "name", True, "text", "the model's name (logs, /diagnostics `model`, engine file names)"),
    SpecKey(_TOP, "description", False, "text", "free text"),
    SpecKey(_TOP, "onnx", True, "path", "the ONNX file; a relative path is relative to the spec's folder"),
    SpecKey(_TOP, "input", True, "mapping", "how camera pixels become the input tensor (the `input.` keys)"),
    SpecKey(_TOP, "outputs", True, "list of mappings", "the model's heads, merged in order: later heads paint over"),
    SpecKey(
        _TOP, "classes", True, f"list of 1 to {MAX_CLASSES} mappings", "the label space; a class's id is its index"
    ),
    SpecKey(_TOP, "ignore_id", False, "integer 0..255, not a class id (default 255)", "the label `eval` never scores"),
    SpecKey(
        _TOP,
        "metrics",
        False,
        "mapping",
        "free-form figures measured for the model (the demo spec records its training run); read by no command",
    ),
    SpecKey(_TOP, "masks", False, "mapping of name → mapping", "extra mono8 masks read from one head's own argmax"),
    SpecKey(_TOP, "upsampling", False, "mapping", "how head-resolution outputs reach the camera's resolution"),
    SpecKey(_IN, "name", True, "text", "the ONNX input tensor's name"),
    SpecKey(_IN, "layout", True, _one_of(LAYOUTS), "the input tensor's layout"),
    SpecKey(_IN, "width", True, "integer 1..16384", "the input width the net is fed"),
    SpecKey(_IN, "height", True, "integer 1..16384", "the input height the net is fed"),
    SpecKey(_IN, "channel_order", True, _one_of(CHANNEL_ORDERS), "the colour order the net was trained on"),
    SpecKey(_IN, "pixel_range", True, "number > 0", "input = (pixel / 255 × pixel_range − mean) / std"),
    SpecKey(_IN, "mean", True, "3 numbers", "subtracted per channel, in channel_order"),
    SpecKey(_IN, "std", True, "3 numbers > 0", "divided by per channel, in channel_order"),
    SpecKey(_IN, "resize", False, _one_of(RESIZE_POLICIES) + " (default `stretch`)", "camera frame → input size"),
    SpecKey(
        _IN,
        "pad_value",
        False,
        "integer 0..255 (default 0)",
        "the fill of padding: only with " + _one_of(PADDED_POLICIES),
    ),
    SpecKey(_IN, "interpolation", False, _one_of(INTERPOLATIONS) + " (default `bilinear`)", "the resize's filter"),
    SpecKey(
        _IN,
        "shorter_side",
        False,
        "integer 1..16384",
        "with (and only with) `resize: shorter_side`: the camera's shorter side becomes this",
    ),
    SpecKey(
        _IN,
        "pad_to_multiple",
        False,
        "integer 1..1024 (default 1)",
        "with `shorter_side` or `native`: pad bottom and right to a multiple of the net's stride",
    ),
    SpecKey(_OUT, "name", True, "text", "the ONNX output tensor's name"),
    SpecKey(_OUT, "kind", True, _one_of(HEAD_KINDS), "what the tensor holds"),
    SpecKey(
        _OUT,
        "channel_axis",
        False,
        "integer −4..3",
        "the axis holding the classes: required for logits and probabilities, refused for labels",
    ),
    SpecKey(_OUT, "classes", True, "list of class names or null", "the class each head index paints (null: none)"),
    SpecKey(_CLS, "name", True, "text, unique", "the class's name"),
    SpecKey(_CLS, "color", True, "3 integers 0..255", "its colour in overlays and colour masks (RGB)"),
    SpecKey(_CLS, "drivable", False, "true / false (default false)", "inside `segmentation/drivable_mask`"),
    SpecKey(_CLS, "obstacle", False, "true / false (default false)", "an obstacle in the bird's-eye grid"),
    SpecKey(_CLS, "ignore_in_eval", False, "true / false (default false)", "a void class: `eval` never scores it"),
    SpecKey(_MASK, "head", True, "an `outputs[].name`", "the head whose own argmax the mask reads"),
    SpecKey(_MASK, "classes", True, "list of that head's class names", "the classes inside the mask (255)"),
    SpecKey(_UP, "method", True, _one_of(UPSAMPLING_METHODS), "argmax then nearest, or logits bilinear then argmax"),
    SpecKey(
        _UP,
        "align_corners",
        False,
        "true / false (default false)",
        "only with `logits_bilinear`, as the training code's resize",
    ),
)

"""Every IoU bar of the HTML report stands out from its track: the outline meets WCAG's 3:1 contrast for
graphical objects for every class colour of every shipped spec (the white lane_marking bar vanished)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.evaluation.report import (
    BAR_TRACK,
    MIN_BAR_CONTRAST,
    bar_outline,
    contrast_ratio,
    iou_bars_svg,
)

REPO = Path(__file__).resolve().parent.parent
SPECS = sorted((REPO / "models").rglob("*.yaml"))


def _shipped_colours() -> dict[str, tuple[int, int, int]]:
    colours = {}
    for path in SPECS:
        try:
            spec = load_model_spec(path)
        except Exception:  # noqa: BLE001 - zoo recipes that need downloads; the demo spec must load
            continue
        colours.update({f"{path.name}:{c.name}": tuple(c.color) for c in spec.classes})
    return colours


def test_contrast_ratio_is_wcag() -> None:
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


def test_every_class_bar_outline_stands_out_from_the_track() -> None:
    colours = _shipped_colours()
    assert any(name.startswith("demo_road_seg.yaml:lane_marking") for name in colours)
    assert colours["demo_road_seg.yaml:lane_marking"] == (255, 255, 255)
    faint = {n: c for n, c in colours.items() if contrast_ratio(bar_outline(c), BAR_TRACK) < MIN_BAR_CONTRAST}
    assert faint == {}


def test_the_white_bar_is_drawn_with_a_dark_outline() -> None:
    svg = iou_bars_svg(["road", "lane_marking"], np.array([0.9, 0.5]), [(128, 64, 128), (255, 255, 255)])
    strokes = dict(re.findall(r'fill="(#[0-9a-f]{6})" stroke="(#[0-9a-f]{6})" class="bar"', svg))
    assert strokes == {"#804080": "#804080", "#ffffff": "#1d2327"}

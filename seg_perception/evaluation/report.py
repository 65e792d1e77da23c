"""Static HTML report of an `eval` or `compare` run: one self-contained file, no network, no JavaScript.

``OUT_DIR/index.html`` holds inline CSS, inline SVG charts (per-class IoU bars, the confusion matrix as
a heatmap) and the worst frames as base64 PNG data URIs (input | prediction | reference | error), plus
the run's settings. A Content-Security-Policy meta tag forbids every remote load, so the page renders
the same offline, in a CI artefact viewer or from an e-mail attachment.
"""

from __future__ import annotations

import base64
import datetime
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.atomic_files import write_text_atomic
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.metrics import VOID, Scores
from seg_perception.evaluation.runners import CompareResult, EvalResult, FrameView, class_colors

THUMB_WIDTH = 400  # pixels per worst-frame panel; keeps a report of 6 frames around a megabyte
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
Color = tuple[int, int, int]


@dataclass
class ReportPage:
    """Everything the page shows, independent of which command produced it."""

    title: str
    summary: list[tuple[str, str]]
    scores: Scores
    colors: Sequence[Color]
    iou_heading: str
    confusion_axes: tuple[str, str]  # (rows, columns)
    panel_titles: tuple[str, str, str, str]
    worst: list[FrameView]
    settings: dict[str, object]
    notes: list[str] = field(default_factory=list)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value * 100:.2f}%"


def _fps(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.1f}"


def page_for_eval(result: EvalResult) -> ReportPage:
    s = result.scores
    return ReportPage(
        title=f"{result.spec.name}: accuracy on {result.frames} labelled frames",
        summary=[
            ("mIoU", _pct(s.miou)),
            ("pixel accuracy", _pct(s.pixel_accuracy)),
            ("drivable IoU", _pct(s.drivable.iou)),
            ("drivable precision", _pct(s.drivable.precision)),
            ("drivable recall", _pct(s.drivable.recall)),
            ("frames per second", _fps(result.fps)),
            ("frames", str(result.frames)),
        ],
        scores=s,
        colors=class_colors(result.spec, s.class_names),
        iou_heading="Per-class IoU against ground truth",
        confusion_axes=("ground truth", "prediction"),
        panel_titles=("input", "prediction", "ground truth", "error"),
        worst=result.worst,
        settings={"backend in use": result.backend_detail, **result.settings},
        notes=result.notes
        + ([f"images without ground truth: {', '.join(result.unmatched)}"] if result.unmatched else []),
    )


def page_for_compare(result: CompareResult) -> ReportPage:
    s = result.scores
    return ReportPage(
        title=f"{result.spec.name}: {result.b} against {result.a} on {result.frames} frames",
        summary=[
            ("label agreement", _pct(result.agreement)),
            ("mIoU of B against A's labels", _pct(s.miou)),
            ("drivable IoU, B vs A", _pct(s.drivable.iou)),
            (f"fps A ({result.a})", _fps(result.fps_a)),
            (f"fps B ({result.b})", _fps(result.fps_b)),
            ("frames", str(result.frames)),
        ],
        scores=s,
        colors=class_colors(result.spec, s.class_names),
        iou_heading=f"Per-class IoU of B ({result.b}) against A ({result.a})",
        confusion_axes=(f"A: {result.a}", f"B: {result.b}"),
        panel_titles=("input", f"B: {result.b}", f"A: {result.a} (reference)", "disagreement"),
        worst=result.worst,
        settings={"A in use": result.a_detail, "B in use": result.b_detail, **result.settings},
        notes=result.notes,
    )


# ------------------------------------------------------------------------------------------------
# Pictures


def _png_data_uri(rgb: np.ndarray) -> str:
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise SegPerceptionError("could not encode a report image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _palette(colors: Sequence[Color]) -> np.ndarray:
    table = np.zeros((256, 3), np.uint8)  # void and unknown ids are black
    table[: len(colors)] = np.asarray(colors, np.uint8).reshape(-1, 3)
    return table


def error_image(rgb: np.ndarray, prediction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Dimmed input; wrong pixels red, void reference pixels black."""
    out = (rgb.astype(np.uint16) * 3 // 8).astype(np.uint8)
    out[prediction != reference] = (255, 32, 32)
    out[reference == VOID] = (0, 0, 0)
    return out


def frame_panels(view: FrameView, colors: Sequence[Color]) -> list[str]:
    """Data URIs of input | prediction | reference | error, scaled to THUMB_WIDTH."""
    h, w = view.reference.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))) if w > THUMB_WIDTH else (w, h)
    palette = _palette(colors)

    def smooth(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size != (w, h) else img

    def labels(ids: np.ndarray) -> np.ndarray:
        small = cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST) if size != (w, h) else ids
        return palette[small]

    panels = [
        smooth(view.image),
        labels(view.prediction),
        labels(view.reference),
        smooth(error_image(view.image, view.prediction, view.reference)),
    ]
    return [_png_data_uri(p) for p in panels]


def _hex(color: Color) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


BAR_TRACK = (0xEE, 0xF1, 0xF4)  # the light track every IoU bar lies on (svg .track)
BAR_INK = (0x1D, 0x23, 0x27)  # the page's text colour
MIN_BAR_CONTRAST = 3.0  # WCAG 2.1's minimum contrast for graphical objects (success criterion 1.4.11)


def relative_luminance(color: Color) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour (0 black .. 1 white)."""
    channels = [c / 255.0 for c in color]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: Color, b: Color) -> float:
    """WCAG 2.1 contrast ratio, 1 (same) .. 21 (black on white)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def bar_outline(color: Color) -> Color:
    """The outline of a bar in `color`: the colour itself where it stands out from the track, else the ink
    (a white lane_marking bar on the near-white track would otherwise vanish)."""
    return tuple(color) if contrast_ratio(color, BAR_TRACK) >= MIN_BAR_CONTRAST else BAR_INK  # type: ignore[return-value]


def iou_bars_svg(names: Sequence[str], iou: np.ndarray, colors: Sequence[Color]) -> str:
    """Horizontal bars, one per class, in the class's colour; classes absent from the data say so."""
    label_w, bar_w, row_h = 170, 420, 24
    height = row_h * len(names) + 30
    rows = []
    for i, (name, value) in enumerate(zip(names, iou, strict=True)):
        y = 10 + i * row_h
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{html.escape(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 6}" class="track"/>'
        )
        if np.isfinite(value):
            rows.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{value * bar_w:.1f}" height="{row_h - 6}" '
                f'fill="{_hex(colors[i])}" stroke="{_hex(bar_outline(colors[i]))}" class="bar">'
                f"<title>{html.escape(name)}: {value * 100:.2f}%</title></rect>"
                f'<text x="{label_w + bar_w + 8}" y="{y + 16}">{value * 100:.1f}%</text>'
            )
        else:
            rows.append(f'<text x="{label_w + bar_w + 8}" y="{y + 16}" class="muted">not present</text>')
    grid = "".join(
        f'<line x1="{label_w + bar_w * t / 4}" y1="6" x2="{label_w + bar_w * t / 4}" y2="{height - 18}" class="grid"/>'
        f'<text x="{label_w + bar_w * t / 4}" y="{height - 4}" text-anchor="middle" class="muted">{t * 25}%</text>'
        for t in range(5)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{label_w + bar_w + 100}" height="{height}" '
        f'role="img" aria-label="per-class IoU">{grid}{"".join(rows)}</svg>'
    )


def confusion_svg(names: Sequence[str], confusion: np.ndarray, axes: tuple[str, str]) -> str:
    """Row-normalised heatmap (each row: where that reference class went); counts in tooltips."""
    k = len(names)
    cell = max(14, min(40, 560 // max(k, 1)))
    margin = max(150, label_width(names) + 12)  # the row labels' width
    top = column_labels_height(names) + 30  # the rotated column labels, and the axis title above them
    size = margin + cell * k
    # the last turned column label starts over the last column and reaches right by its width's cosine
    width = max(size + 100, math.ceil(size - cell / 2 + 4 + column_labels_reach(names) + 10))
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape, np.float64), where=totals > 0)
    low, high = np.array([247, 251, 255], np.float64), np.array([8, 48, 107], np.float64)
    parts = []
    for r in range(k):
        y = top + r * cell
        parts.append(f'<text x="{margin - 6}" y="{y + cell / 2 + 4}" text-anchor="end">{html.escape(names[r])}</text>')
        for c in range(k):
            x = margin + c * cell
            v = float(share[r, c])
            mix = low + (high - low) * v
            fill = _hex((round(mix[0]), round(mix[1]), round(mix[2])))
            tip = f"{names[r]} \u2192 {names[c]}: {int(confusion[r, c])} px ({v * 100:.2f}% of {names[r]})"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" class="cell">'
                f"<title>{html.escape(tip)}</title></rect>"
            )
            if k <= 12 and confusion[r, c] > 0:
                ink = "#ffffff" if v > 0.5 else "#222222"
                parts.append(
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" fill="{ink}" '
                    f'class="small">{"<1" if v < 0.005 else f"{v * 100:.0f}"}</text>'
                )
    for c in range(k):
        cx = margin + c * cell + cell // 2 + 4
        parts.append(
            f'<text x="{cx}" y="{top - 6}" transform="rotate(-{LABEL_ANGLE} {cx} {top - 6})" class="column">'
            f"{html.escape(names[c])}</text>"
        )
    parts.append(
        f'<text x="{margin + cell * k / 2}" y="14" text-anchor="middle" class="axis">columns: '
        f"{html.escape(axes[1])}</text>"
        f'<text x="14" y="{top + cell * k / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {top + cell * k / 2})">rows: {html.escape(axes[0])}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{top + cell * k + 10}" '
        f'role="img" aria-label="confusion matrix">{"".join(parts)}</svg>'
    )


LABEL_ANGLE = 50  # degrees the confusion matrix's column labels are turned
CHAR_WIDTH = 7.0  # px per character at the charts' 12 px font: a generous average (system-ui, DejaVu Sans)


def label_width(names: Sequence[str]) -> int:
    """The longest name's width, unturned (px at CHAR_WIDTH)."""
    return math.ceil(max((len(n) for n in names), default=1) * CHAR_WIDTH)


def column_labels_height(names: Sequence[str]) -> int:
    """How far the turned column labels reach above the matrix: the longest name, turned by LABEL_ANGLE."""
    return math.ceil(label_width(names) * math.sin(math.radians(LABEL_ANGLE)) + 12)


def column_labels_reach(names: Sequence[str]) -> int:
    """How far right of its start a turned column label reaches: the longest name, turned by LABEL_ANGLE."""
    return math.ceil(label_width(names) * math.cos(math.radians(LABEL_ANGLE)))


# ------------------------------------------------------------------------------------------------
# The page

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1720px;
color:#1d2327;padding:0 16px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.sub{color:#667;margin:0 0 16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px;background:#f7f9fb}
.tile b{display:block;font-size:20px}.tile span{color:#556;font-size:12px}
.row{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}
svg.chart{font-size:12px;font-family:inherit}svg .track{fill:#eef1f4}svg .grid{stroke:#dde;stroke-width:1}
svg .muted{fill:#889}svg .small{font-size:10px}svg .axis{fill:#556;font-weight:600}
svg .bar{stroke-width:1.5}svg .cell{stroke:#fff;stroke-width:1}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 10px;text-align:left;vertical-align:top}
table.settings td:first-child{color:#556}table.settings tr:nth-child(odd){background:#f7f9fb}
table.frames{table-layout:fixed;width:100%}table.frames col.caption{width:150px}
.frames figure{margin:0}.frames img{display:block;width:100%;height:auto;border:1px solid #ccd;box-sizing:border-box}
.frames td{padding:4px}.frames th{font-weight:600;color:#445}.caption{font-size:12px;color:#556}
.caption{overflow-wrap:anywhere}
.legend{font-size:12px;color:#556;line-height:20px}.key{white-space:nowrap;margin-right:12px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border:1px solid}
"""


def _legend(names: Sequence[str], colors: Sequence[Color]) -> str:
    """One unbreakable key per class (a swatch never wraps away from its name), the swatch outlined as the
    IoU bars are, so a white class stays visible on the white page."""
    return "".join(
        f'<span class="key"><span class="swatch" style="background:{_hex(c)};border-color:{_hex(bar_outline(c))}">'
        f"</span>{html.escape(n)}</span>"
        for n, c in zip(names, colors, strict=True)
    )


def render(page: ReportPage) -> str:
    """The page's HTML."""
    s = page.scores
    tiles = "".join(
        f'<div class="tile"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for k, v in page.summary
    )
    frames_rows = []
    for rank, view in enumerate(page.worst, 1):
        cells = "".join(
            f'<td><figure><img alt="{html.escape(t)} of {html.escape(view.stem)}" src="{uri}"></figure></td>'
            for t, uri in zip(page.panel_titles, frame_panels(view, page.colors), strict=True)
        )
        frames_rows.append(
            f'<tr><td class="caption">#{rank}<br><b>{html.escape(view.stem)}</b><br>{html.escape(view.caption)}'
            f"</td>{cells}</tr>"
        )
    heads = "".join(f"<th>{html.escape(t)}</th>" for t in page.panel_titles)
    worst = (
        f'<p class="legend" id="class-legend">Classes: {_legend(s.class_names, page.colors)}</p>'
        f'<table class="frames" id="worst-frames"><colgroup><col class="caption"></colgroup>'
        f"<tr><th></th>{heads}</tr>{''.join(frames_rows)}</table>"
        f'<p class="legend">Error panel: the input dimmed, pixels labelled differently from the reference in red, '
        f"void reference pixels black.</p>"
        if frames_rows
        else '<p id="worst-frames" class="sub">No frame could be ranked.</p>'
    )
    settings = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in page.settings.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in page.notes)
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(page.title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(page.title)}</h1>
<p class="sub">seg-perception report, generated {generated}; {s.pixels:,} scored pixels.</p>
<section id="summary"><div class="tiles">{tiles}</div></section>
<div class="row">
<section id="per-class-iou"><h2>{html.escape(page.iou_heading)}</h2>
{iou_bars_svg(s.scored_names, s.scored_iou, [page.colors[i] for i in s.scored_ids])}</section>
<section id="confusion-matrix"><h2>Confusion matrix (share of each row)</h2>
{confusion_svg(s.class_names, s.confusion, page.confusion_axes)}</section>
</div>
<section id="worst"><h2>Worst frames</h2>{worst}</section>
<section id="settings"><h2>Settings</h2><table class="settings">{settings}</table>
{f"<ul>{notes}</ul>" if notes else ""}</section>
</body></html>
"""


def write_report(out_dir: Path, page: ReportPage) -> Path:
    """Write OUT_DIR/index.html and return its path."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "index.html"
        write_text_atomic(path, render(page))
    except OSError as exc:
        raise SegPerceptionError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from exc
    return path

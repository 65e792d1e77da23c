"""The HTML report renders in headless Chromium with nothing in the console, holds every section, and
loads nothing from the network (a broken copy proves the console scan would notice)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.evaluation.report import confusion_svg, page_for_compare, page_for_eval, write_report
from seg_perception.evaluation.runners import WORST_FRAMES, parse_variant, run_compare, run_eval
from seg_perception.synthetic.scenes import DEMO_CLASSES, write_scenes

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
# Chromium logs console messages as `INFO:CONSOLE:12] "text", source: ...` (older builds `CONSOLE(12)`),
# at INFO whatever their level. The report has no script, so *any* console message is the browser
# complaining (a blocked load, a parse error) and fails the test.
CONSOLE = re.compile(r"CONSOLE[(:]\d+")
SECTIONS = ("summary", "per-class-iou", "confusion-matrix", "worst-frames", "settings")
FRAMES = 4


def chromium(page: Path, profile: Path, *mode: str) -> tuple[str, list[str]]:
    """Load a page headless; returns (stdout, console lines from stderr)."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *mode,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    names = [c.name for c in DEMO_CLASSES]
    conv_logits_model(root / "tiny.onnx", len(names), 48, 64)
    spec = load_model_spec(write_spec(root / "tiny.yaml", spec_dict("tiny.onnx", names)))
    scenes = root / "scenes"
    write_scenes(scenes, FRAMES, 320, 180, seed=11)
    fp32 = parse_variant("onnxruntime:fp32")
    evaluated = run_eval(spec, scenes, scenes, "index", None, fp32, keep_pixels=True)
    compared = run_compare(spec, scenes, fp32, parse_variant("onnxruntime:fp16"), keep_pixels=True)
    return {
        "root": root,
        "eval": write_report(root / "eval_report", page_for_eval(evaluated)),
        "compare": write_report(root / "compare_report", page_for_compare(compared)),
    }


def test_eval_report_loads_with_no_console_messages_and_every_section(reports: dict[str, Path]) -> None:
    dom, console = chromium(reports["eval"], reports["root"] / "profile_eval", "--dump-dom")
    assert console == []
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert dom.count("<img ") == 4 * min(FRAMES, WORST_FRAMES)  # input | prediction | ground truth | error
    assert dom.count('class="cell"') == len(DEMO_CLASSES) ** 2  # the heatmap
    assert "mIoU" in dom and "drivable IoU" in dom and "label_format" in dom


def test_compare_report_renders_a_screenshot(reports: dict[str, Path]) -> None:
    shot = reports["root"] / "compare.png"
    _, console = chromium(
        reports["compare"], reports["root"] / "profile_shot", "--window-size=1400,1700", f"--screenshot={shot}"
    )
    assert console == []
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1700, 1400)
    assert float(np.std(image)) > 20  # not a blank page


def test_report_loads_nothing_from_elsewhere(reports: dict[str, Path]) -> None:
    for kind in ("eval", "compare"):
        text = reports[kind].read_text()
        sources = re.findall(r'(?:src|href)="([^"]*)"', text)
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
        assert "<script" not in text and "@import" not in text and "url(" not in text


def test_the_console_scan_notices_a_broken_page(reports: dict[str, Path]) -> None:
    broken = reports["root"] / "broken.html"
    text = reports["eval"].read_text()
    broken.write_text(text.replace("</body>", '<img src="https://example.invalid/x.png"><img src="gone.png"></body>'))
    _, console = chromium(broken, reports["root"] / "profile_broken", "--dump-dom")
    assert len(console) >= 2, console


def _ink_bands(image: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) rows of each run of rows holding any ink (a pixel darker than the white page)."""
    inked = (image.min(axis=2) < 200).any(axis=1)
    bands: list[tuple[int, int]] = []
    for row in np.flatnonzero(inked):
        if bands and row == bands[-1][1] + 1:
            bands[-1] = (bands[-1][0], int(row))
        else:
            bands.append((int(row), int(row)))
    return bands


def test_the_confusion_matrix_title_sits_just_above_its_column_labels(tmp_path: Path) -> None:
    """Drawn, not parsed: the axis title, then a small gap, then the turned class names (never overlapping
    them, never 70 px above them as it once was), then the matrix."""
    names = [c.name for c in DEMO_CLASSES]
    confusion = np.eye(len(names), dtype=np.int64) * 100 + 1
    page = tmp_path / "matrix.html"
    page.write_text(
        "<!DOCTYPE html><html><head><style>body{margin:0;font-family:system-ui,sans-serif;background:#fff}"
        "svg.chart{font-size:12px}svg .axis{fill:#556;font-weight:600}svg .small{font-size:10px}</style></head>"
        f"<body>{confusion_svg(names, confusion, ('ground truth', 'prediction'))}</body></html>"
    )
    shot = tmp_path / "matrix.png"
    _, console = chromium(page, tmp_path / "profile", "--window-size=800,800", f"--screenshot={shot}")
    assert console == []
    image = cv2.imread(str(shot))
    assert image is not None
    title, labels = _ink_bands(image)[:2]
    assert title[1] - title[0] < 20, title  # one line of text
    assert 4 <= labels[0] - title[1] <= 30, (title, labels)


def test_long_class_names_are_drawn_whole_in_the_confusion_matrix(tmp_path: Path) -> None:
    """Drawn, not parsed: an SVG clips what lies outside it, so the matrix drawn as is and drawn with
    overflow visible are the same picture only when every turned column label and row label fits."""
    names = ["road", "sidewalk", "construction_vehicle_with_trailer_attached", "a_rather_long_vegetation_name"]
    confusion = np.eye(len(names), dtype=np.int64) * 100 + 1
    svg = confusion_svg(names, confusion, ("ground truth", "prediction"))
    shots = []
    for overflow in ("hidden", "visible"):
        page = tmp_path / f"{overflow}.html"
        page.write_text(
            "<!DOCTYPE html><html><head><style>body{margin:0;padding:0 0 0 300px;font-family:system-ui,sans-serif;"
            f"background:#fff}}svg.chart{{font-size:12px;overflow:{overflow}}}svg .axis{{fill:#556;font-weight:600}}"
            f"svg .small{{font-size:10px}}</style></head><body>{svg}</body></html>"
        )
        shot = tmp_path / f"{overflow}.png"
        _, console = chromium(page, tmp_path / f"profile-{overflow}", "--window-size=1400,900", f"--screenshot={shot}")
        assert console == []
        image = cv2.imread(str(shot))
        assert image is not None
        shots.append(image)
    clipped = int((shots[0] != shots[1]).any(axis=2).sum())
    assert clipped == 0, f"{clipped} pixels of label ink lie outside the SVG"


def test_the_class_legend_keeps_each_swatch_with_its_name_above_the_frames(reports: dict[str, Path]) -> None:
    text = reports["eval"].read_text()
    assert text.index('id="class-legend"') < text.index('id="worst-frames"')
    keys = re.findall(r'<span class="key"><span class="swatch" style="([^"]*)"></span>([^<]+)</span>', text)
    assert [name for _, name in keys] == [c.name for c in DEMO_CLASSES]
    assert ".key{white-space:nowrap" in text
    white = next(style for style, name in keys if name == "lane_marking")
    assert "border-color:#1d2327" in white  # outlined in the page's ink, as its IoU bar is

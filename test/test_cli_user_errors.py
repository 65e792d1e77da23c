"""User errors through the real `.venv/bin/seg-perception`: one line naming the value, exit 2, nothing written;
partial failure: exit 1 with counts. And `infer --output-resolution`, which decides the size of what it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.synthetic.scenes import generate_scene

CLI = Path(sys.executable).with_name("seg-perception")  # the console script of the venv running the tests


def _cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *map(str, args)], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["synth", "--out", "{tmp}/out", "--frames", "0"], "'0' must be at least 1"),
        (["synth", "--out", "{tmp}/out", "--frames", "-3"], "'-3' must be at least 1"),
        (["synth", "--bag", "{tmp}/out", "--frames", "0"], "'0' must be at least 1"),
        (["synth", "--out", "{tmp}/out", "--size", "100000x100000"], "'100000x100000' is larger than"),
        (["synth", "--bag", "{tmp}/out", "--size", "7681x720"], "limit of 7680x4320"),
        (["synth", "--out", "{tmp}/out", "--size", "0x720"], "'0x720' must be positive"),
        (["synth", "--bag", "{tmp}/out", "--rate", "0"], "'0' must be greater than 0"),
        (["soak", "--frames", "0"], "--frames: '0' must be at least 1"),
        (["synth", "--bag", "{tmp}/out", "--rate", "inf"], "--rate: 'inf' is not a finite number"),
        (["bench", "--sizes", "1280x"], "--sizes: size '1280x' is not WIDTHxHEIGHT"),
        (["bench", "--frames", "0"], "--frames: '0' must be at least 1"),
        (["bench", "--node-seconds", "nan"], "--node-seconds: 'nan' is not a finite number"),
        (["eval", "--images", "{tmp}", "--labels", "{tmp}", "--ignore-index", "300"], "'300' must be at most 255"),
        (["quantize", "--out", "{tmp}/q.onnx", "--min-agreement", "101"], "'101' must be at most 100"),
        (["soak", "--frames", "10", "--warmup", "-1"], "--warmup: '-1' must be at least 0"),
        (["compile", "--out", "{tmp}/out/f.onnx", "--batch", "0"], "--batch: '0' must be at least 1"),
        (["infer", "--input", "{image}", "--out", "{tmp}/out", "--output-resolution", "native"], "'native'"),
        (["infer", "--input", "{image}", "--out", "/proc/forbidden"], "cannot create --out /proc/forbidden"),
        (["compile", "--out", "/proc/forbidden/fused.onnx"], "cannot create --out /proc/forbidden"),
        (["synth", "--out", "/proc/forbidden", "--frames", "1"], "cannot create --out /proc/forbidden"),
    ],
)
def test_a_user_error_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, args: list[str], named: str, image: Path
) -> None:
    proc = _cli(*(a.format(tmp=tmp_path, image=image) for a in args))
    line = _one_line(proc)
    assert proc.returncode == 2, proc.stderr
    assert named in line
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "scene.png"
    cv2.imwrite(str(path), cv2.cvtColor(generate_scene(5, 480, 270).image, cv2.COLOR_RGB2BGR))
    return path


def test_infer_on_a_directory_with_unreadable_images_exits_1_with_counts(tmp_path: Path, image: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        (images / name).write_bytes(image.read_bytes())
    (images / "broken.png").write_bytes(image.read_bytes()[:100])  # a truncated PNG
    proc = _cli("infer", "--input", images, "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr
    assert "segmented 2 of 3 images" in proc.stderr
    assert "1 of 3 images could not be read" in proc.stderr and "broken.png" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{stem}_{kind}.png" for stem in ("a", "b") for kind in ("drivable", "labels", "overlay")
    ]


@pytest.mark.parametrize(("resolution", "shape"), [("input", (270, 480)), ("model", (192, 320))])
def test_infer_output_resolution(tmp_path: Path, image: Path, resolution: str, shape: tuple[int, int]) -> None:
    proc = _cli("infer", "--input", image, "--out", tmp_path, "--output-resolution", resolution)
    assert proc.returncode == 0, proc.stderr
    assert f"labels at {resolution} resolution" in proc.stderr
    labels = cv2.imread(str(tmp_path / "scene_labels.png"), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(str(tmp_path / "scene_overlay.png"), cv2.IMREAD_COLOR)
    drivable = cv2.imread(str(tmp_path / "scene_drivable.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == drivable.shape == shape and overlay.shape == (*shape, 3)
    assert labels.dtype == np.uint8 and set(np.unique(drivable).tolist()) <= {0, 255}
    assert not list(tmp_path.glob(".*partial*"))  # every file renamed into place


def test_synth_out_writes_independent_scenes_unless_asked_for_a_drive(tmp_path: Path) -> None:
    proc = _cli("synth", "--out", tmp_path / "scenes", "--frames", "2", "--size", "160x96", "--seed", "40")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 scenes (seeds 40..)" in proc.stderr
    for i in range(2):
        labels = cv2.imread(str(tmp_path / "scenes" / f"{i}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(labels, generate_scene(40 + i, 160, 96).labels)
    proc = _cli("synth", "--out", tmp_path / "drive", "--frames", "2", "--size", "160x96", "--drive")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 frames of one drive" in proc.stderr

"""The output rule through the CLI as users call it: an existing output is refused (one line, exit 2, old
files untouched) unless --force, which replaces it whole; an output over an input is refused always."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("seg-perception")  # the console script of the venv running the tests
SMALL = ("--size", "160x96")


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")}


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _no_leftovers(parent: Path) -> None:
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


def test_synth_out_refuses_old_scenes_and_force_replaces_them_whole(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    assert _cli("synth", "--out", scenes, "--frames", "4", "--seed", "9", *SMALL).returncode == 0
    before = _snapshot(scenes)
    assert len(before) == 8

    proc = _cli("synth", "--out", scenes, "--frames", "2", *SMALL)
    assert proc.returncode == 2
    assert _error_line(proc) == f"error: --out {scenes} exists and is not empty; pass --force to replace it"
    assert _snapshot(scenes) == before  # not one old scene overwritten

    assert _cli("synth", "--out", scenes, "--frames", "2", "--force", *SMALL).returncode == 0
    after = _snapshot(scenes)
    assert sorted(after) == ["0.png", "0_labels.png", "1.png", "1_labels.png"]  # scenes 2 and 3 are gone
    assert after["0.png"] != before["0.png"]  # seed 0, not the old seed 9
    _no_leftovers(tmp_path)


def test_an_empty_directory_is_a_fine_output(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    assert _cli("synth", "--out", tmp_path / "scenes", "--frames", "1", *SMALL).returncode == 0
    assert sorted(_snapshot(tmp_path / "scenes")) == ["0.png", "0_labels.png"]


def test_infer_refuses_an_old_out_and_never_writes_over_its_input(tmp_path: Path) -> None:
    images = tmp_path / "images"
    assert _cli("synth", "--out", images, "--frames", "1", *SMALL).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_labels.png").write_bytes(b"old")

    proc = _cli("infer", "--input", images, "--out", out)
    assert proc.returncode == 2
    assert _error_line(proc) == f"error: --out {out} exists and is not empty; pass --force to replace it"
    assert _snapshot(out) == {"old_labels.png": hashlib.sha256(b"old").hexdigest()}

    inputs = _snapshot(images)
    proc = _cli("infer", "--input", images, "--out", images, "--force")
    assert proc.returncode == 2
    assert _error_line(proc) == f"error: --out {images} would overwrite the input {images}; choose another --out"
    assert _snapshot(images) == inputs

    assert _cli("infer", "--input", images, "--out", out, "--force").returncode == 0
    written = _snapshot(out)
    assert "old_labels.png" not in written  # replaced whole, not mixed
    assert {"0_labels.png", "0_drivable.png", "0_overlay.png"} <= set(written)
    _no_leftovers(tmp_path)


def test_eval_report_refuses_an_old_report_before_scoring_and_force_replaces_it(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    assert _cli("synth", "--out", scenes, "--frames", "2", *SMALL).returncode == 0
    report = tmp_path / "report"
    report.mkdir()
    (report / "stale.png").write_bytes(b"stale")
    args = ("eval", "--images", scenes, "--labels", scenes, "--report", report)

    proc = _cli(*args)
    assert proc.returncode == 2
    assert _error_line(proc) == f"error: --report {report} exists and is not empty; pass --force to replace it"
    assert sorted(_snapshot(report)) == ["stale.png"]

    proc = _cli(*args, "--force")
    assert proc.returncode == 0, proc.stderr
    assert sorted(_snapshot(report)) == ["index.html"]
    _no_leftovers(tmp_path)

"""The path users take: `make venv` puts `seg-perception` and `seg_perception_node` in the venv's bin/, and they run.

(setup.cfg's [develop] script_dir, meant for colcon, used to send them to .venv/lib/seg_perception/ instead.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # .venv/bin of the venv running the tests


@pytest.mark.parametrize("script", ["seg-perception", "seg_perception_node"])
def test_console_script_is_in_the_venv_bin(script: str) -> None:
    path = BIN / script
    assert path.is_file(), f"{path} missing; {BIN} holds {sorted(p.name for p in BIN.iterdir())}"
    assert path.read_text().startswith(f"#!{sys.executable}"), "the script must run this venv's Python"


def test_venv_cli_runs_a_real_command(tmp_path: Path) -> None:
    cli = BIN / "seg-perception"
    shown = subprocess.run([str(cli), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: seg-perception"), shown.stderr
    out = tmp_path / "fused.onnx"
    compiled = subprocess.run(
        [str(cli), "compile", "--out", str(out), "--input-size", "640x360"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    assert out.stat().st_size > 100_000 and "demo_road_seg at 640x360 RGB" in compiled.stderr

"""`python -m seg_perception.demo` reports a bad --size and a node that does not come up in one line, never
a traceback: exit 2 for the bad command line, exit 1 for the node's failure (the command line was valid; the
run failed, as when no frame is answered)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "seg_perception.demo", "--out", str(tmp_path / "demo_out"), "--frames", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower() or "Traceback" in line]


def test_a_size_over_the_generated_scene_limit_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--size", "100000x100000")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert _error_lines(proc.stderr) == [
        "python -m seg_perception.demo: error: argument --size: size '100000x100000' is larger than the "
        "generated-scene limit of 7680x4320 (8K UHD) (see python -m seg_perception.demo --help)"
    ], proc.stderr[-2000:]
    assert not (tmp_path / "demo_out").exists()


def test_a_node_that_does_not_come_up_is_one_line_exit_1(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: --backend tensorrt would come up")
    proc = _demo(tmp_path, "--size", "64x48", "--backend", "tensorrt")
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: the node did not come up: "), proc.stderr[-3000:]
    assert "TensorRT" in errors[0], errors

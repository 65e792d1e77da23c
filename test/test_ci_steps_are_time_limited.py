"""`.ci/run` gives every step a time limit: a hung step fails CI in bounded time with one line naming it, and the
processes it started are stopped with it. A fake `make` stands in for the real steps (and a fake `chromium`
keeps the apt-get step out), with one limit shortened through its CI_TIMEOUT_<STEP> variable."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE_MAKE = """#!/usr/bin/env bash
echo "$1" >> "$CI_FAKE_DIR/steps"
case "$1" in
  "$CI_FAKE_HANG") sleep 600 & echo $! > "$CI_FAKE_DIR/sleeper"; wait ;;
  "$CI_FAKE_FAIL") exit 3 ;;
esac
"""


def _run_ci(tmp_path: Path, hang: str = "", fail: str = "", **limits: str) -> tuple[subprocess.CompletedProcess, float]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("make", FAKE_MAKE), ("chromium", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        CI_FAKE_DIR=str(tmp_path),
        CI_FAKE_HANG=hang,
        CI_FAKE_FAIL=fail,
        **limits,
    )
    start = time.monotonic()
    result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - start


def _steps(tmp_path: Path) -> list[str]:
    return (tmp_path / "steps").read_text().split()


def test_a_hung_step_fails_ci_within_its_limit_naming_it_and_its_processes_go(tmp_path: Path) -> None:
    result, took = _run_ci(tmp_path, hang="test-oldest", CI_TIMEOUT_TEST_OLDEST="2s")
    assert result.returncode == 1, result.stderr
    assert took < 30
    assert result.stderr.splitlines()[-1] == "ci: step 'make test-oldest' did not finish within 2s: stopped, CI fails"
    assert _steps(tmp_path) == ["test", "test-oldest"]  # the step after it never started
    sleeper = int((tmp_path / "sleeper").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{sleeper}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{sleeper}").exists(), "the hung step's child outlived it"


def test_a_failing_step_fails_ci_with_its_status_and_a_passing_run_runs_every_step(tmp_path: Path) -> None:
    (tmp_path / "fail").mkdir()
    (tmp_path / "pass").mkdir()
    result, _ = _run_ci(tmp_path / "fail", fail="test")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1] == "ci: step 'make test' failed (exit 3)"
    assert _steps(tmp_path / "fail") == ["test"]
    result, _ = _run_ci(tmp_path / "pass")
    assert result.returncode == 0, result.stderr
    assert _steps(tmp_path / "pass") == ["test", "test-oldest", "test-other-distro"]

"""Every planted bug of tools/plant_bugs.py still applies to the code as it is, and names tests that exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_planted_bug_still_applies() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "plant_bugs.py"), "--check", "--worktree"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    stale = [line for line in lines if "applies" not in line or "not at this ref" in line]
    assert done.returncode == 0 and not stale, f"stale plant_bugs entries:\n{done.stdout}{done.stderr}"
    assert len(lines) >= 22, done.stdout  # one line per bug: the check ran over the whole list

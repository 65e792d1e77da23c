"""The generated reference pages (parameters, topics, diagnostics keys, command line, errors, the architecture's
layer table) match the code: a parameter, option or error message changed without regenerating them fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tools" / "gen_docs_reference.py"


def _check(docs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--docs", str(docs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_committed_reference_pages_are_current() -> None:
    result = _check(REPO / "docs")
    assert result.returncode == 0, result.stderr


def test_a_stale_page_or_block_is_named(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    params = docs / "reference" / "parameters.md"
    params.write_text(params.read_text().replace("| `qos_depth` | `1` |", "| `qos_depth` | `5` |"))
    arch = docs / "architecture.md"
    arch.write_text(arch.read_text().replace("| `ray` | `fleet` |", "| `ray` | `core` |"))
    (docs / "reference" / "cli.md").unlink()
    result = _check(docs)
    assert result.returncode == 1
    named = result.stderr.split(": ", 1)[1].strip().split(", ")
    assert sorted(named) == ["architecture.md", "reference/cli.md", "reference/parameters.md"]

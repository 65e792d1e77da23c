"""The docs site builds with mkdocs --strict: a broken link or a link to a missing anchor fails the build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MKDOCS = REPO / ".venv" / "bin" / "mkdocs"


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = _build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "parameters" / "index.html").is_file()


def test_a_missing_anchor_or_page_fails_the_build(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    page = root / "docs" / "development.md"
    page.write_text(page.read_text() + "\nSee [the layers](architecture.md#no-such-heading).\n")
    result = _build(root, tmp_path / "site_anchor")
    assert result.returncode != 0
    assert "no-such-heading" in result.stdout + result.stderr
    page.write_text(page.read_text().replace("architecture.md#no-such-heading", "no_such_page.md"))
    result = _build(root, tmp_path / "site_page")
    assert result.returncode != 0
    assert "no_such_page.md" in result.stdout + result.stderr

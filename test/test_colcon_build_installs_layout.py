"""`colcon build` of a clean copy of the repository installs the node, the CLI and every data file where ROS looks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg_perception"
BUILD_TIMEOUT_S = 120
DEMO_MODEL_SPEC = "models/demo_road_seg.yaml"


def _git_files(*options: str) -> set[str]:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", *options], capture_output=True, check=True, timeout=60
    )
    return {name for name in result.stdout.decode().split("\0") if name}


def _tracked_files() -> list[str]:
    """Tracked files as a fresh clone would have them, less tracked files that .gitignore excludes (a venv)."""
    tracked = _git_files("--cached") - _git_files("--cached", "--ignored", "--exclude-standard")
    return sorted(name for name in tracked if (ROOT / name).is_file())


def _colcon_command() -> list[str]:
    script = Path(sys.executable).parent / "colcon"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "colcon_core.command"]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Copy the tracked files to a temporary workspace, build it there, return (install prefix, tracked files)."""
    pytest.importorskip("colcon_core", reason="colcon is not importable in this environment")
    workspace = tmp_path_factory.mktemp("colcon_ws")
    source = workspace / "src" / PACKAGE
    files = _tracked_files()
    for name in files:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)

    env = dict(os.environ)
    env["COLCON_HOME"] = str(workspace / "colcon_home")  # no user defaults.yaml or mixins
    env.pop("COLCON_DEFAULTS_FILE", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        *_colcon_command(),
        "--log-base",
        str(workspace / "log"),
        "build",
        "--base-paths",
        str(source),
        "--build-base",
        str(workspace / "build"),
        "--install-base",
        str(workspace / "install"),
        "--event-handlers",
        "console_direct+",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=workspace, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )
    elapsed = time.monotonic() - started
    output = f"$ {' '.join(command)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, f"colcon build failed ({elapsed:.1f} s)\n{output}"
    return workspace / "install" / PACKAGE, files


@pytest.mark.parametrize("executable", ["seg_perception_node", "seg-perception"])
def test_executables_install_into_lib_package(build: tuple[Path, list[str]], executable: str) -> None:
    prefix, _ = build
    path = prefix / "lib" / PACKAGE / executable
    assert path.is_file(), f"{path} missing; lib/{PACKAGE} holds {sorted(p.name for p in path.parent.glob('*'))}"
    assert os.access(path, os.X_OK), f"{path} is not executable"


@pytest.mark.parametrize(
    "relative",
    [
        f"share/{PACKAGE}/package.xml",
        f"share/{PACKAGE}/launch/seg_perception.launch.py",
        f"share/{PACKAGE}/config/seg_perception.yaml",
        f"share/{PACKAGE}/config/seg_perception.rviz",
        f"share/{PACKAGE}/config/fastdds_large_data.xml",
        f"share/ament_index/resource_index/packages/{PACKAGE}",
    ],
)
def test_share_files_install(build: tuple[Path, list[str]], relative: str) -> None:
    prefix, _ = build
    assert (prefix / relative).is_file(), f"{relative} not installed"


def test_demo_model_installs(build: tuple[Path, list[str]]) -> None:
    prefix, files = build
    # The bundled demo model is committed separately from this test. Until models/demo_road_seg.yaml is tracked
    # there is nothing to install, so this checks the layout only once it exists; the assertion then holds
    # unconditionally, and test_every_tracked_data_file_installs covers the model's ONNX file next to it.
    if DEMO_MODEL_SPEC not in files:
        pytest.skip(f"{DEMO_MODEL_SPEC} is not tracked yet")
    assert (prefix / "share" / PACKAGE / DEMO_MODEL_SPEC).is_file()


def test_every_tracked_data_file_installs(build: tuple[Path, list[str]]) -> None:
    prefix, files = build
    data = [
        name
        for name in files
        if name.startswith(("config/", "models/")) or (name.startswith("launch/") and name.endswith(".launch.py"))
    ]
    missing = [name for name in data if not (prefix / "share" / PACKAGE / name).is_file()]
    assert not missing, f"tracked but not installed into share/{PACKAGE}: {missing}"

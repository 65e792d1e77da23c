"""`colcon build` (plain and --symlink-install) of a clean copy installs the node, the CLI and every data file where
ROS looks, and the installed executables run from the install space (not from this checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_harness import NodeProcess, unique_domain_id

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg_perception"
BUILD_TIMEOUT_S = 300
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
LEGACY_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"
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


@pytest.fixture(scope="module", params=["plain", "symlink-install"])
def build(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, list[str]]:
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
        *(["--symlink-install"] if request.param == "symlink-install" else []),
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
        f"share/{PACKAGE}/config/fastdds_large_data_localhost.xml",
        f"share/ament_index/resource_index/packages/{PACKAGE}",
    ],
)
def test_share_files_install(build: tuple[Path, list[str]], relative: str) -> None:
    prefix, _ = build
    assert (prefix / relative).is_file(), f"{relative} not installed"


def test_demo_model_installs(build: tuple[Path, list[str]]) -> None:
    prefix, files = build
    assert DEMO_MODEL_SPEC in files, f"{DEMO_MODEL_SPEC} is not tracked"
    assert (prefix / "share" / PACKAGE / DEMO_MODEL_SPEC).is_file()


def _installed_environment(prefix: Path) -> dict[str, str]:
    """The environment `. install/local_setup.sh` gives (PYTHONPATH, AMENT_PREFIX_PATH), as a user sources it."""
    local_setup = prefix.parent / "local_setup.sh"
    result = subprocess.run(
        ["sh", "-c", f'. "{local_setup}" && env -0'], capture_output=True, check=True, timeout=60, cwd=prefix.parent
    )
    env = dict(entry.split("=", 1) for entry in result.stdout.decode().split("\0") if "=" in entry)
    env.pop(PROFILE_VARIABLE, None)  # the node must find the installed profile on its own only via `run`
    env.pop(LEGACY_PROFILE_VARIABLE, None)  # (the name Fast DDS 2.x reads; `make test` sets it on Jazzy)
    return env


def test_installed_package_is_the_one_imported(build: tuple[Path, list[str]]) -> None:
    """Sourcing the install space shadows this checkout's editable install (else the tests below prove nothing)."""
    prefix, _ = build
    result = subprocess.run(
        [sys.executable, "-c", "import seg_perception; print(seg_perception.__file__)"],
        env=_installed_environment(prefix),
        cwd=prefix,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = Path(result.stdout.strip())
    assert prefix.parent.parent in imported.parents, f"imported {imported}, not from the workspace"


def test_installed_cli_runs(build: tuple[Path, list[str]], tmp_path: Path) -> None:
    prefix, _ = build
    cli = prefix / "lib" / PACKAGE / "seg-perception"
    env = _installed_environment(prefix)
    shown = subprocess.run([str(cli), "--help"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: seg-perception"), shown.stderr
    out = tmp_path / "fused.onnx"
    compiled = subprocess.run(
        [str(cli), "compile", "--out", str(out)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert compiled.returncode == 0, compiled.stderr
    assert out.stat().st_size > 100_000 and "demo_road_seg at 320x192" in compiled.stderr


def test_installed_node_starts_on_the_installed_demo_model_and_stops_cleanly(build: tuple[Path, list[str]]) -> None:
    prefix, _ = build
    executable = str(prefix / "lib" / PACKAGE / "seg_perception_node")
    node = NodeProcess(
        unique_domain_id(),
        {"backend": "onnxruntime"},
        namespace="/installed",
        executable=[executable],
        base_env=_installed_environment(prefix),
    )
    try:
        node.wait_for_log("warm-up on", timeout=90)
    finally:
        node.stop(timeout=30)
    log = node.output
    lines = log.splitlines()
    model_lines = [line for line in lines if "model demo_road_seg (8 classes) from " in line]
    assert model_lines, log
    spec = Path(model_lines[0].split(" from ", 1)[1].split(";", 1)[0])
    assert prefix.parent.parent in spec.parents, f"the node loaded {spec}, not the installed demo model"
    assert node.proc.returncode == 0, log


def test_installed_run_command_uses_the_installed_profile(build: tuple[Path, list[str]]) -> None:
    """`lib/seg_perception/seg-perception run --ros-args ...` with no profile set picks the installed share copy."""
    prefix, _ = build
    node = NodeProcess(
        unique_domain_id(),
        {"backend": "onnxruntime"},
        namespace="/installed_run",
        executable=[str(prefix / "lib" / PACKAGE / "seg-perception"), "run"],
        base_env=_installed_environment(prefix),
        large_data_profile=False,
    )
    try:
        node.wait_for_log("Fast DDS profile:", timeout=90)
    finally:
        node.stop(timeout=30)
    line = next(line for line in node.output.splitlines() if "Fast DDS profile:" in line)
    profile = Path(line.split("Fast DDS profile: ", 1)[1].split(" (", 1)[0])
    # localhost discovery (the test's isolated domain): the loopback-only variant of the large-data profile
    assert profile.name == "fastdds_large_data_localhost.xml" and profile.is_file(), line
    assert prefix.parent.parent in profile.parents, f"{line}: not the workspace's copy"


def test_every_tracked_data_file_installs(build: tuple[Path, list[str]]) -> None:
    prefix, files = build
    data = [
        name
        for name in files
        if name.startswith(("config/", "models/")) or (name.startswith("launch/") and name.endswith(".launch.py"))
    ]
    missing = [name for name in data if not (prefix / "share" / PACKAGE / name).is_file()]
    assert not missing, f"tracked but not installed into share/{PACKAGE}: {missing}"

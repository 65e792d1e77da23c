"""The Makefile's venv step keeps one ROS 2 distribution per venv, and a build that stops part-way is not trusted.

The real Makefile runs in a scratch copy of the repository's build inputs, with fake Pythons: the machine's
`python3 -m venv` makes a tiny fake venv whose `bin/python` records what it was asked and "installs" the
rclpy wheel of the requirements file it is given (one dist-info folder), optionally failing right after.
No real venv is built or touched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = (
    "Makefile",
    "requirements.txt",
    "requirements-jazzy.txt",
    "requirements-kilted.txt",
    "constraints-jazzy.txt",
    "constraints.txt",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    ".ci/patch_tensorrt_stubs.py",
    ".ci/venv_distro.py",
)
SITE = "lib/python3.11/site-packages"

# The venv's bin/python: `-m pip install ... -r requirements-<distro>.txt` installs that distribution's rclpy
# (and the distribution-neutral ros_rclpy beside it, as the real wheels do); FAKE_PIP_FAILS=1 then fails.
FAKE_VENV_PYTHON = f"""#!{sys.executable}
import os, sys
from pathlib import Path
here = Path(sys.argv[0]).resolve().parent.parent
with open(here / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
for arg in args:
    if arg.startswith("requirements-") and arg.endswith(".txt"):
        distro = arg[len("requirements-"):-len(".txt")]
        (here / "{SITE}" / f"ros_{{distro}}_rclpy-1.0.dist-info").mkdir(parents=True, exist_ok=True)
        (here / "{SITE}" / "ros_rclpy-1.0.dist-info").mkdir(parents=True, exist_ok=True)
        if os.environ.get("FAKE_PIP_FAILS") == "1":
            sys.exit("pip: fake failure after the ROS wheels")
"""

# The machine's Python: `-m venv DIR` makes the fake venv; anything else (.ci/venv_distro.py) runs for real.
FAKE_SYSTEM_PYTHON = f"""#!{sys.executable}
import os, shutil, sys
from pathlib import Path
if sys.argv[1:3] == ["-m", "venv"]:
    venv = Path(sys.argv[3])
    (venv / "bin").mkdir(parents=True)
    (venv / "{SITE}").mkdir(parents=True)
    shutil.copy(os.environ["FAKE_VENV_PYTHON"], venv / "bin" / "python")
    (venv / "made-by-venv").touch()
    sys.exit(0)
os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])
"""


def _load_venv_distro() -> ModuleType:
    spec = importlib.util.spec_from_file_location("venv_distro", REPO / ".ci" / "venv_distro.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


venv_distro = _load_venv_distro()


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    """A copy of the build inputs plus the two fake Pythons; make runs here, never in the repository."""
    for name in BUILD_INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    for name, text in (("fake-python3", FAKE_SYSTEM_PYTHON), ("fake-venv-python", FAKE_VENV_PYTHON)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    return tmp_path


def _make(scratch: Path, distro: str, venv: str = ".venv", pip_fails: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(FAKE_VENV_PYTHON=str(scratch / "fake-venv-python"), FAKE_PIP_FAILS="1" if pip_fails else "0")
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "venv",
            f"ROS_DISTRO={distro}",
            f"VENV={venv}",
            f"PYTHON={scratch / 'fake-python3'}",
        ],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fake_unmarked_venv(venv: Path, *site_entries: str) -> None:
    (venv / SITE).mkdir(parents=True)
    for entry in site_entries:
        (venv / SITE / entry).mkdir()


def test_a_build_that_stops_part_way_leaves_no_marker_and_the_next_distro_rebuilds(scratch: Path) -> None:
    first = _make(scratch, "jazzy")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (scratch / ".venv" / "ros-distro").read_text() == "jazzy\n"
    assert (scratch / ".venv" / ".installed-jazzy").is_file()

    failed = _make(scratch, "kilted", pip_fails=True)
    assert failed.returncode != 0
    assert ".venv was built for ROS 2 jazzy: rebuilding it for kilted" in failed.stdout
    assert not (scratch / ".venv" / "ros-distro").exists()
    assert not (scratch / ".venv" / ".installed-kilted").exists()
    assert venv_distro.installed_distros(scratch / ".venv") == ["kilted"]

    # The half-built Kilted venv is not reused for Jazzy: its rclpy wheel says Kilted.
    again = _make(scratch, "jazzy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ".venv was built for ROS 2 kilted: rebuilding it for jazzy" in again.stdout
    assert venv_distro.installed_distros(scratch / ".venv") == ["jazzy"]
    assert (scratch / ".venv" / "ros-distro").read_text() == "jazzy\n"


def test_a_failed_rebuild_for_the_same_distro_removes_the_marker_and_then_completes_in_place(scratch: Path) -> None:
    assert _make(scratch, "jazzy").returncode == 0
    stamp_time = (scratch / ".venv" / ".installed-jazzy").stat().st_mtime
    os.utime(scratch / "requirements.txt", (stamp_time + 10, stamp_time + 10))  # newer: the step runs again
    failed = _make(scratch, "jazzy", pip_fails=True)
    assert failed.returncode != 0
    assert not (scratch / ".venv" / "ros-distro").exists()
    assert not (scratch / ".venv" / ".installed-jazzy").exists()
    again = _make(scratch, "jazzy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rebuilding" not in again.stdout
    assert (scratch / ".venv" / "made-by-venv").is_file()
    assert (scratch / ".venv" / "ros-distro").read_text() == "jazzy\n"


def test_an_unmarked_jazzy_venv_from_before_the_marker_is_kept_not_rebuilt_as_kilted(scratch: Path) -> None:
    venv = scratch / ".venv-jazzy"
    _fake_unmarked_venv(venv, "ros_jazzy_rclpy-7.1.6.dist-info", "ros_rclpy-7.1.6.dist-info")
    (venv / "bin").mkdir()
    shutil.copy(scratch / "fake-venv-python", venv / "bin" / "python")
    (venv / ".installed-stamp").touch()  # what the Makefile before the marker wrote
    (venv / "kept").touch()
    result = _make(scratch, "jazzy", venv=".venv-jazzy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rebuilding" not in result.stdout
    assert (venv / "kept").is_file()
    assert not (venv / "made-by-venv").exists()
    assert (venv / "ros-distro").read_text() == "jazzy\n"
    assert not (venv / ".installed-stamp").exists()


def test_which_distribution_a_venv_holds(tmp_path: Path) -> None:
    marked = tmp_path / "marked"
    _fake_unmarked_venv(marked, "ros_jazzy_rclpy-7.1.6.dist-info")
    (marked / "ros-distro").write_text("kilted\n")
    assert venv_distro.built_for(marked) == "kilted"  # the marker wins: it is written after a complete build

    old_kilted = tmp_path / "old-kilted"
    _fake_unmarked_venv(old_kilted, "ros_kilted_rclpy-9.1.2.dist-info", "ros_rclpy-9.1.2.dist-info")
    assert venv_distro.built_for(old_kilted) == "kilted"

    both = tmp_path / "both"
    _fake_unmarked_venv(both, "ros_jazzy_rclpy-7.1.6.dist-info", "ros_kilted_rclpy-9.1.2.dist-info")
    assert venv_distro.built_for(both) == "unknown"

    no_rclpy = tmp_path / "no-rclpy"
    _fake_unmarked_venv(no_rclpy, "ros_rclpy-9.1.2.dist-info", "numpy-2.2.6.dist-info")
    assert venv_distro.built_for(no_rclpy) == "unknown"

    no_ros = tmp_path / "no-ros"
    _fake_unmarked_venv(no_ros, "numpy-2.2.6.dist-info")
    assert venv_distro.built_for(no_ros) is None


def test_rebuild_reasons_word_for_word(tmp_path: Path) -> None:
    assert venv_distro.rebuild_reason(tmp_path / "absent", "jazzy") is None
    old_jazzy = tmp_path / "v"
    _fake_unmarked_venv(old_jazzy, "ros_jazzy_rclpy-7.1.6.dist-info")
    assert venv_distro.rebuild_reason(old_jazzy, "jazzy") is None
    assert venv_distro.rebuild_reason(old_jazzy, "kilted") == (
        f"{old_jazzy} was built for ROS 2 jazzy: rebuilding it for kilted"
    )
    shutil.rmtree(old_jazzy / SITE / "ros_jazzy_rclpy-7.1.6.dist-info")
    (old_jazzy / SITE / "ros_std_msgs-5.3.6.dist-info").mkdir()
    assert venv_distro.rebuild_reason(old_jazzy, "jazzy") == (
        f"{old_jazzy} holds ROS 2 wheels of no single known distribution (a build that stopped part-way?): "
        "rebuilding it for jazzy"
    )
    assert venv_distro.main([str(old_jazzy)]) == 2

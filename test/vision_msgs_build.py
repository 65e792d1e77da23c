"""Build the test stand-in for vision_msgs (LabelInfo, VisionClass) with colcon, cached by its sources.

vision_msgs is not on PyPI; test/interfaces/vision_msgs holds its two definitions field for field, built
with ament_cmake + rosidl_default_generators from the PyPI ROS wheels into .venv/vision_msgs_build/<hash>.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).parent / "interfaces" / "vision_msgs"
VENV = Path(sys.prefix)


def _key() -> str:
    digest = hashlib.sha256()
    for f in sorted(SOURCE.rglob("*")):
        if f.is_file():
            digest.update(f.relative_to(SOURCE).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def build_vision_msgs() -> Path:
    """The colcon install prefix of vision_msgs (built once per source hash; concurrent callers wait)."""
    root = VENV / "vision_msgs_build"
    root.mkdir(exist_ok=True)
    done = root / _key()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (done / "install" / "vision_msgs" / "share" / "vision_msgs" / "package.xml").is_file():
            return done / "install"
        work = root / f"{done.name}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(SOURCE, work / "src" / "vision_msgs")
        env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV))
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        cmd = [str(VENV / "bin" / "colcon"), "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}"]
        result = subprocess.run([*cmd, "-DBUILD_TESTING=OFF"], cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"colcon build of vision_msgs failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
        shutil.rmtree(done, ignore_errors=True)
        work.rename(done)
        return done / "install"


def vision_msgs_env(install: Path) -> dict[str, str]:
    """This process's environment plus the built vision_msgs (Python package and its shared libraries)."""
    prefix = install / "vision_msgs"
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix), str(VENV)) if p)
    return env

"""Build test stand-ins of ROS interface packages that are not on PyPI, with colcon, cached by their sources.

test/interfaces/<name> holds each package's definitions field for field (vision_msgs' LabelInfo, foxglove_msgs'
CompressedVideo, ffmpeg_image_transport_msgs' FFMPEGPacket), built with ament_cmake + rosidl_default_generators
from the PyPI ROS wheels into .venv/<name>_build/<hash>.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

INTERFACES = Path(__file__).parent / "interfaces"
VENV = Path(sys.prefix)


def _key(source: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(source.rglob("*")):
        if f.is_file():
            digest.update(f.relative_to(source).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def build_interface(name: str) -> Path:
    """The colcon install prefix of test/interfaces/<name> (built once per source hash; concurrent callers wait)."""
    source = INTERFACES / name
    root = VENV / f"{name}_build"
    root.mkdir(exist_ok=True)
    done = root / _key(source)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (done / "install" / name / "share" / name / "package.xml").is_file():
            return done / "install"
        work = root / f"{done.name}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work / "src" / name)
        env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV))
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        cmd = [str(VENV / "bin" / "colcon"), "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}"]
        result = subprocess.run([*cmd, "-DBUILD_TESTING=OFF"], cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"colcon build of {name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
        shutil.rmtree(done, ignore_errors=True)
        work.rename(done)
        return done / "install"


def interface_env(*names: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (this process's environment) plus the built packages `names` (Python packages and libraries)."""
    env = dict(os.environ if base is None else base)
    for name in names:
        prefix = build_interface(name) / name
        site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(
            p for p in (str(prefix), env.get("AMENT_PREFIX_PATH", "") or str(VENV)) if p
        )
    return env

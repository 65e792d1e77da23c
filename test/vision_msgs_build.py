"""Build the test stand-in for vision_msgs (LabelInfo, VisionClass) with colcon, cached by its sources.

vision_msgs is not on PyPI; test/interfaces/vision_msgs holds its two definitions field for field, built
with ament_cmake + rosidl_default_generators from the PyPI ROS wheels (test/interface_packages.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from interface_packages import VENV, build_interface


def build_vision_msgs() -> Path:
    """The colcon install prefix of vision_msgs (built once per source hash; concurrent callers wait)."""
    return build_interface("vision_msgs")


def vision_msgs_env(install: Path) -> dict[str, str]:
    """This process's environment plus the built vision_msgs (Python package and its shared libraries)."""
    import sys

    prefix = install / "vision_msgs"
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix), str(VENV)) if p)
    return env

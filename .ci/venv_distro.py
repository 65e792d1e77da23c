#!/usr/bin/env python3
"""Decide whether the Makefile must remove a venv before building it for one ROS 2 distribution.

Both distributions' wheels install the same modules (rclpy, rcl, ...), so a venv holds one distribution only.
Which one it holds:

1. its ``ros-distro`` marker, which the Makefile writes as the last step of a build that succeeded (and
   removes before building), so a marker always describes a complete build;
2. else the installed ``ros-<distro>-rclpy`` wheel (``ros_<distro>_rclpy-*.dist-info``): a venv from before the
   marker existed, or one whose build stopped part-way;
3. else, when it holds ROS wheels but no recognisable rclpy (a build that stopped part-way), nobody knows:
   rebuild; a venv with no ROS wheel at all (stopped before any was installed) is kept, it holds nothing
   distribution-specific and the build's pinned install completes it.

Usage: venv_distro.py VENV DISTRO  -- prints why VENV must be rebuilt for DISTRO (one line), or nothing.
Stdlib only: it runs on the machine's Python before any venv exists.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "ros-distro"
# ros-jazzy-rclpy installs ros_jazzy_rclpy-7.1.6.dist-info (the distribution-neutral ros_rclpy-*.dist-info
# beside it names no distribution).
_RCLPY_DIST_INFO = re.compile(r"^ros_([a-z]+)_rclpy-[^-]+\.dist-info$")


def _site_packages_entries(venv: Path) -> list[str]:
    return sorted(p.name for p in venv.glob("lib/python*/site-packages/*"))


def installed_distros(venv: Path) -> list[str]:
    """The distributions whose ros-<distro>-rclpy wheel VENV holds (normally one; none before rclpy installs)."""
    found = {m.group(1) for name in _site_packages_entries(venv) if (m := _RCLPY_DIST_INFO.match(name))}
    return sorted(found)


def built_for(venv: Path) -> str | None:
    """The distribution VENV holds: its marker, else its rclpy wheel's; None when VENV holds no ROS wheel.

    'unknown' when it holds ROS wheels but neither says which distribution (or several rclpy wheels do).
    """
    marker = venv / MARKER
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip() or "unknown"
    distros = installed_distros(venv)
    if len(distros) == 1:
        return distros[0]
    if distros or any(name.startswith("ros_") for name in _site_packages_entries(venv)):
        return "unknown"
    return None


def rebuild_reason(venv: Path, wanted: str) -> str | None:
    """One line saying why VENV must be removed before building it for WANTED, or None to build in place."""
    if not venv.exists():
        return None
    built = built_for(venv)
    if built is None or built == wanted:
        return None
    if built == "unknown":
        return f"{venv} holds ROS 2 wheels of no single known distribution (a build that stopped part-way?): " \
               f"rebuilding it for {wanted}"
    return f"{venv} was built for ROS 2 {built}: rebuilding it for {wanted}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: venv_distro.py VENV DISTRO\n")
        return 2
    reason = rebuild_reason(Path(argv[0]), argv[1])
    if reason:
        sys.stdout.write(reason + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

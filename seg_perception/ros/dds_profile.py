"""Which Fast DDS XML profile a process uses: the shipped large-data profile, and one log line saying so."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
# Fast DDS 2.x (Jazzy and older) reads only its old name; 3.x (Kilted on) reads the new one and warns on every
# start where the old one is set too: the old one is set only for 2.x (`profile_variables`).
LEGACY_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"
PROFILE_NAME = "fastdds_large_data.xml"
# The same profile with UDP on 127.0.0.1 only: chosen when discovery is limited to this machine.
LOCALHOST_PROFILE_NAME = "fastdds_large_data_localhost.xml"
DISCOVERY_RANGE_VARIABLE = "ROS_AUTOMATIC_DISCOVERY_RANGE"
# The registry's Fast DDS wheel: `ros-fastdds` from 3.x (Kilted), `ros-fastrtps` up to 2.x (Jazzy).
FASTDDS_WHEELS = ("ros-fastdds", "ros-fastrtps")
# Source tree (an editable install or `python -m`): <repo>/config next to the package.
REPO_CONFIG = Path(__file__).resolve().parent.parent.parent / "config"


def profile_name(environ: Mapping[str, str] | None = None) -> str:
    """Which shipped profile fits `environ`: the loopback-only one when discovery is limited to localhost."""
    env = os.environ if environ is None else environ
    localhost = env.get(DISCOVERY_RANGE_VARIABLE, "").strip().upper() == "LOCALHOST"
    return LOCALHOST_PROFILE_NAME if localhost else PROFILE_NAME


def shipped_profile(environ: Mapping[str, str] | None = None) -> Path | None:
    """The shipped large-data Fast DDS profile for `environ` (default: this process's environment), the source
    tree copy, else the installed share directory. With ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST it is the
    variant whose UDP transport binds and advertises 127.0.0.1 only."""
    name = profile_name(environ)
    candidates = [REPO_CONFIG / name]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("seg_perception")) / "config" / name)
    except Exception:  # noqa: BLE001 - not installed through ament: the source tree copy is all there is
        pass
    return next((c for c in candidates if c.is_file()), None)


def installed_fastdds_major(environ: Mapping[str, str] | None = None, fastdds_version: str | None = None) -> int:
    """The Fast DDS major version this process's rmw_fastrtps uses: the installed Fast DDS wheel's
    (`fastdds_version`, read from the installed packages when None); else the one the distribution ships
    (ROS_DISTRO, or the installed rclpy's version: an apt install); 3 when nothing tells."""
    from importlib.metadata import PackageNotFoundError, version

    from seg_perception.ros.distro import distro_name, fastdds_major, installed_rclpy_version

    if fastdds_version is None:
        fastdds_version = ""
        for wheel in FASTDDS_WHEELS:
            try:
                fastdds_version = version(wheel)
                break
            except PackageNotFoundError:
                continue
    major = fastdds_version.split(".")[0]
    if major.isdigit():
        return int(major)
    env = os.environ if environ is None else environ
    return fastdds_major(distro_name(env, installed_rclpy_version()))


def profile_variables(fastdds_major: int) -> tuple[str, ...]:
    """The variables that name the profile file for this Fast DDS major: the old name too for 2.x only."""
    return (PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE) if fastdds_major < 3 else (PROFILE_VARIABLE,)


def apply_default_profile(environ: MutableMapping[str, str] | None = None, fastdds_major: int | None = None) -> None:
    """Point FASTDDS_DEFAULT_PROFILES_FILE at the shipped profile unless the user set it (even to ''), and
    FASTRTPS_DEFAULT_PROFILES_FILE at the same file where Fast DDS 2.x reads only that (unless set)."""
    env = os.environ if environ is None else environ
    if PROFILE_VARIABLE not in env:
        profile = shipped_profile(env)
        if profile is None:
            return
        env[PROFILE_VARIABLE] = str(profile)
    major = installed_fastdds_major(env) if fastdds_major is None else fastdds_major
    for name in profile_variables(major)[1:]:
        env.setdefault(name, env[PROFILE_VARIABLE])


def describe_profile(
    environ: MutableMapping[str, str] | None = None, fastdds_major: int | None = None
) -> tuple[bool, str]:
    """(in force, one log line): the profile this process's DDS participant reads, or why there is none. Fast
    DDS 2.x reads FASTRTPS_DEFAULT_PROFILES_FILE only, so that is the variable looked at there."""
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return False, f"RMW_IMPLEMENTATION={rmw}: Fast DDS profiles do not apply"
    major = installed_fastdds_major(env) if fastdds_major is None else fastdds_major
    variable = profile_variables(major)[-1]
    value = env.get(variable, "")
    shipped = shipped_profile(env)
    hint = f"; the shipped large-data profile is {shipped}" if shipped is not None else ""
    if not value:
        return False, (
            f"Fast DDS profile: none ({variable} unset), Fast DDS defaults: large best-effort frames "
            f"may not arrive{hint}"
        )
    if not Path(value).is_file():
        return False, f"Fast DDS profile: {variable}={value} does not exist, Fast DDS defaults in force{hint}"
    return True, f"Fast DDS profile: {value} ({variable})"

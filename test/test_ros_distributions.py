"""Which ROS 2 distribution the node runs on, and what it says about it: pure decisions of ros/distro.py."""

from __future__ import annotations

from datetime import date
from importlib.metadata import distributions, version
from pathlib import Path

from seg_perception.ros.dds_profile import (
    FASTDDS_WHEELS,
    LEGACY_PROFILE_VARIABLE,
    PROFILE_VARIABLE,
    apply_default_profile,
    describe_profile,
    installed_fastdds_major,
    profile_variables,
)
from seg_perception.ros.distro import (
    DISTRIBUTIONS,
    distro_name,
    fastdds_major,
    installed_rclpy_version,
    refusal,
    support_notice,
)
from seg_perception.ros.node_process import isolated_ros_environment

TODAY = date(2026, 12, 7)


def test_the_distribution_comes_from_ros_distro_else_from_the_rclpy_wheel() -> None:
    assert distro_name({"ROS_DISTRO": "Jazzy "}, "9.1.2") == "jazzy"  # a sourced install says it
    assert distro_name({}, "9.1.2") == "kilted"
    assert distro_name({}, "7.1.6") == "jazzy"
    assert distro_name({}, "3.3.16") == "humble"
    assert distro_name({}, None) == "" and distro_name({}, "x.y") == ""


def test_humble_is_refused_in_one_line_naming_it_and_the_others_run() -> None:
    line = refusal("humble")
    assert line is not None and "Humble" in line and "\n" not in line
    assert all(refusal(name) is None for name in ("jazzy", "kilted", "lyrical", "rolling", ""))


def test_end_of_life_is_said_once_with_its_date() -> None:
    assert support_notice("kilted", TODAY) == (
        "ROS 2 kilted reaches end of life on 2026-12-31 (in 24 days): move to an LTS (Jazzy or Lyrical)"
    )
    assert support_notice("kilted", date(2027, 1, 1)) == (
        "ROS 2 kilted reached end of life on 2026-12-31: move to an LTS (Jazzy or Lyrical)"
    )
    assert support_notice("kilted", date(2026, 10, 1)) is None  # more than 60 days left
    assert support_notice("jazzy", TODAY) is None and support_notice("lyrical", TODAY) is None
    iron = support_notice("iron", TODAY)
    assert iron is not None and "not supported" in iron and "2024-12-04" in iron
    unknown = support_notice("", TODAY)
    assert unknown is not None and "unknown" in unknown


def test_lts_lines_and_fast_dds_majors() -> None:
    assert {n for n, d in DISTRIBUTIONS.items() if d.lts} == {"humble", "jazzy", "lyrical"}
    assert (fastdds_major("jazzy"), fastdds_major("kilted"), fastdds_major("some-future")) == (2, 3, 3)


def test_the_old_profile_variable_is_set_for_fast_dds_2_only() -> None:
    """Fast DDS 2.x (Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE; 3.x (Kilted) reads FASTDDS_... and warns
    on every start where the old one is set too."""
    assert profile_variables(2) == (PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE)
    assert profile_variables(3) == (PROFILE_VARIABLE,)
    env: dict[str, str] = {}
    apply_default_profile(env, fastdds_major=3)
    assert list(env) == [PROFILE_VARIABLE] and env[PROFILE_VARIABLE].endswith(".xml")
    env = {}
    apply_default_profile(env, fastdds_major=2)
    assert env[LEGACY_PROFILE_VARIABLE] == env[PROFILE_VARIABLE]
    env = {PROFILE_VARIABLE: "/etc/mine.xml", LEGACY_PROFILE_VARIABLE: "/etc/old.xml"}  # the user's stay
    apply_default_profile(env, fastdds_major=2)
    assert env == {PROFILE_VARIABLE: "/etc/mine.xml", LEGACY_PROFILE_VARIABLE: "/etc/old.xml"}


def test_the_fast_dds_major_comes_from_the_wheel_else_from_the_distribution() -> None:
    assert installed_fastdds_major({}, "2.14.5") == 2 and installed_fastdds_major({}, "3.2.2") == 3
    assert installed_fastdds_major({"ROS_DISTRO": "jazzy"}, "") == 2  # an apt install: no ros-fastrtps wheel
    assert installed_fastdds_major({"ROS_DISTRO": "kilted"}, "") == 3
    # This venv's wheels agree with the table of its distribution (Jazzy's 2.x, Kilted's 3.x).
    installed = DISTRIBUTIONS[distro_name({}, installed_rclpy_version())]
    assert installed_fastdds_major({}) == installed.fastdds_major
    # ... read from the Fast DDS wheel itself (ros-fastdds on Kilted, ros-fastrtps on Jazzy), not a fallback
    wheels = [version(w) for w in FASTDDS_WHEELS if w in {d.metadata["Name"] for d in distributions()}]
    assert len(wheels) == 1 and int(wheels[0].split(".")[0]) == installed.fastdds_major, wheels


def test_a_node_started_by_the_harness_gets_the_old_variable_only_on_fast_dds_2() -> None:
    env = isolated_ros_environment(7, base={LEGACY_PROFILE_VARIABLE: "/etc/stale.xml"})
    if installed_fastdds_major({}) < 3:
        assert env[LEGACY_PROFILE_VARIABLE] == env[PROFILE_VARIABLE]
    else:
        assert LEGACY_PROFILE_VARIABLE not in env and env[PROFILE_VARIABLE].endswith(".xml")


def test_the_profile_in_force_is_read_from_the_variable_this_fast_dds_reads(tmp_path: Path) -> None:
    mine = tmp_path / "mine.xml"
    mine.write_text("<profiles/>")
    env = {PROFILE_VARIABLE: str(mine)}
    assert describe_profile(env, fastdds_major=3) == (True, f"Fast DDS profile: {mine} ({PROFILE_VARIABLE})")
    in_force, line = describe_profile(env, fastdds_major=2)  # Fast DDS 2.x never reads FASTDDS_...
    assert not in_force and line.startswith(f"Fast DDS profile: none ({LEGACY_PROFILE_VARIABLE} unset)")
    env[LEGACY_PROFILE_VARIABLE] = str(mine)
    assert describe_profile(env, fastdds_major=2) == (True, f"Fast DDS profile: {mine} ({LEGACY_PROFILE_VARIABLE})")

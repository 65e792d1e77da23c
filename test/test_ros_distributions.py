"""Which ROS 2 distribution the node runs on, and what it says about it: pure decisions of ros/distro.py."""

from __future__ import annotations

from datetime import date

from seg_perception.ros.distro import DISTRIBUTIONS, distro_name, fastdds_major, refusal, support_notice

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

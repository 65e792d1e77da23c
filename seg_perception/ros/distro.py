"""The ROS 2 distributions this package meets, in one place: the rclpy names that differ between them, and
pure decisions (which distribution is this, is it supported, which Fast DDS major it ships) tests can reach.

Read from rclpy's own sources (ros2/rclpy branches humble, jazzy and rolling, whose newest snapshot here is of
2024-12-20: no kilted or lyrical branch, newest tag 8.0.0) and run on the Jazzy and Kilted wheels. The rclpy
releases per distribution (rclpy_major) are those of ros/rosdistro's distribution.yaml files at 8468e88
(2026-08-22): humble 3.3.21, jazzy 7.1.11, kilted 9.1.6, lyrical 10.0.10, rolling 11.0.2. Lyrical's rclpy
sources could not be read, so Lyrical is handled on what Kilted's and Jazzy's show, never executed.
- `rclpy.subscription.MessageInfo` (a TypedDict) and `rclpy.subscription.RCLError` exist in Kilted's rclpy only;
  Jazzy (and rolling of 2024-12) passes the same plain dict without `publisher_gid` (rclpy/src/rclpy/
  subscription.cpp builds it from rmw's message info, leaving the gid out), so frame loss is counted from
  sequence numbers only while a topic has one publisher, else not counted (ros/camera_channel.py,
  ros/messages.py). So the type is ours,
  and RCLError comes from the implementation singleton every distribution has
  (`rclpy.impl.implementation_singleton`).
- Humble's rclpy calls subscription callbacks with the message alone (no message info) and has `rclpy.qos_event`
  instead of `rclpy.event_handler`: the node refuses to start there (`refusal`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypedDict

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

RCLError: type[Exception] = _rclpy.RCLError


class MessageInfo(TypedDict, total=False):
    """What rclpy hands a subscription callback beside the message (Jazzy: no `publisher_gid`). Ours on every
    distribution, so mypy passes on Jazzy's rclpy and Kilted's alike; callbacks that take it are handed to
    rclpy as partials (Jazzy's create_subscription is annotated for one-argument callbacks only, though its
    Subscription calls a two-argument one with the message info)."""

    source_timestamp: int
    received_timestamp: int
    publication_sequence_number: int | None
    reception_sequence_number: int | None
    publisher_gid: dict[str, bytes]


@dataclass(frozen=True)
class Distribution:
    name: str
    end_of_life: date | None  # None: rolling, never released
    lts: bool
    fastdds_major: int  # the Fast DDS its rmw_fastrtps is built on (2.x up to Jazzy, 3.x from Kilted)
    rclpy_major: int  # rclpy's package.xml major version on that branch


# End-of-life dates as REP 2000 states them (the last day of the month named there).
DISTRIBUTIONS: dict[str, Distribution] = {
    d.name: d
    for d in (
        Distribution("humble", date(2027, 5, 31), True, 2, 3),
        Distribution("iron", date(2024, 12, 4), False, 2, 5),
        Distribution("jazzy", date(2029, 5, 31), True, 2, 7),
        Distribution("kilted", date(2026, 12, 31), False, 3, 9),
        Distribution("lyrical", date(2031, 5, 31), True, 3, 10),
        Distribution("rolling", None, False, 3, 11),
    )
}
SUPPORTED = ("jazzy", "kilted", "lyrical")  # the distributions the node runs on (Humble: see `refusal`)
EOL_WARNING_DAYS = 60  # warn this long before a supported distribution's end of life
MOVE_TO_LTS = "move to an LTS (Jazzy or Lyrical)"


def distro_name(environ: Mapping[str, str] | None = None, rclpy_version: str | None = None) -> str:
    """ROS_DISTRO (set by a ROS install's setup script); else the distribution whose rclpy major this is
    (the registry wheels set no ROS_DISTRO); '' when neither tells."""
    env = os.environ if environ is None else environ
    name = env.get("ROS_DISTRO", "").strip().lower()
    if name or not rclpy_version:
        return name
    try:
        major = int(rclpy_version.split(".")[0])
    except ValueError:
        return ""
    released = [d for d in DISTRIBUTIONS.values() if d.end_of_life is not None and d.rclpy_major == major]
    return released[0].name if released else ""


def installed_rclpy_version() -> str | None:
    """rclpy's distribution version where pip installed it (the wheels); None for an apt/source install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rclpy")
    except PackageNotFoundError:
        return None


def refusal(name: str) -> str | None:
    """One line why the node cannot run on this distribution, or None when it can."""
    if name == "humble":
        return (
            "ROS 2 Humble is not supported: its rclpy calls subscription callbacks without message info "
            "(the node's frame-loss and latency counters need it) and has no rclpy.event_handler; "
            "use Jazzy, Kilted or Lyrical"
        )
    return None


def support_notice(name: str, today: date) -> str | None:
    """One log line when the distribution is unknown, unsupported, past or near its end of life; else None."""
    if not name:
        return "ROS distribution unknown (ROS_DISTRO unset): supported are " + ", ".join(SUPPORTED)
    dist = DISTRIBUTIONS.get(name)
    if dist is None or (name not in SUPPORTED and name != "rolling"):
        eol = f" (end of life {dist.end_of_life})" if dist and dist.end_of_life else ""
        return f"ROS 2 {name}{eol} is not supported: supported are " + ", ".join(SUPPORTED)
    if dist.end_of_life is None:
        return f"ROS 2 {name} is a development distribution: untested here; supported are " + ", ".join(SUPPORTED)
    if today > dist.end_of_life:
        return f"ROS 2 {name} reached end of life on {dist.end_of_life}: {MOVE_TO_LTS}"
    left = (dist.end_of_life - today).days
    if left <= EOL_WARNING_DAYS:
        return f"ROS 2 {name} reaches end of life on {dist.end_of_life} (in {left} days): {MOVE_TO_LTS}"
    return None


def fastdds_major(name: str) -> int:
    """The Fast DDS major version a distribution's rmw_fastrtps uses (3 for an unknown, newer one)."""
    dist = DISTRIBUTIONS.get(name)
    return dist.fastdds_major if dist is not None else 3

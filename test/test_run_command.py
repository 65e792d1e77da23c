"""`seg-perception run` takes ROS arguments as `ros2 run` does and runs the node with the large-data DDS profile."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ros_harness import unique_domain_id

from seg_perception.cli import split_ros_args
from seg_perception.ros.dds_profile import (
    LEGACY_PROFILE_VARIABLE,
    PROFILE_VARIABLE,
    installed_fastdds_major,
    profile_variables,
)
from seg_perception.ros.node_process import isolated_ros_environment

ROOT = Path(__file__).resolve().parents[1]
# These runs discover localhost only (isolated_ros_environment), so the shipped default is the loopback variant.
SHIPPED_PROFILE = ROOT / "config" / "fastdds_large_data_localhost.xml"
STARTED_S = 90.0  # generous: a loaded 2-core machine


class _Running:
    """A command whose merged output is collected; `wait_for` waits on a line, not on time."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + STARTED_S
        with self._changed:
            while text not in "".join(self.lines):
                if self._ended:
                    break
                if not self._changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    break
        assert text in self.output, f"exit {self.proc.poll()}; never logged {text!r}:\n{self.output}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode


def _environment(profile: str | None) -> dict[str, str]:
    """The user's environment: the profile (if any) under the variable our docs name, the old name unset."""
    env = isolated_ros_environment(unique_domain_id())
    env.pop(PROFILE_VARIABLE, None)
    env.pop(LEGACY_PROFILE_VARIABLE, None)
    if profile is not None:
        env[PROFILE_VARIABLE] = profile
    return env


# The variable this Fast DDS reads, which the node's log line names: FASTRTPS_... on Jazzy's 2.x.
IN_FORCE = profile_variables(installed_fastdds_major())[-1]


NODE_ARGS = ["-r", "__ns:=/run_test", "-p", "backend:=onnxruntime", "-p", "qos_reliability:=reliable"]


@pytest.mark.parametrize(
    "form",
    [["run", "--ros-args", *NODE_ARGS], ["run", "--", "--ros-args", *NODE_ARGS]],
    ids=["ros2-run-form", "double-dash-form"],
)
def test_run_takes_ros_args_and_uses_the_shipped_profile_by_default(form: list[str]) -> None:
    running = _Running([sys.executable, "-m", "seg_perception.cli", *form], _environment(None))
    try:
        running.wait_for("subscribed to /run_test/image (Image, reliable, depth 1)")
    finally:
        code = running.stop()
    assert f"Fast DDS profile: {SHIPPED_PROFILE} ({IN_FORCE})" in running.output
    assert "backend onnxruntime: requested explicitly" in running.output  # the -p reached the node
    assert code == 0, running.output


def test_run_keeps_a_profile_the_user_set(tmp_path: Path) -> None:
    mine = tmp_path / "my_profile.xml"
    mine.write_bytes(SHIPPED_PROFILE.read_bytes())
    running = _Running(
        [sys.executable, "-m", "seg_perception.cli", "run", "--ros-args", *NODE_ARGS], _environment(str(mine))
    )
    try:
        running.wait_for("subscribed to /run_test/image")
    finally:
        running.stop()
    assert f"Fast DDS profile: {mine} ({IN_FORCE})" in running.output


def test_node_without_a_profile_says_so() -> None:
    """`ros2 run` / the bare node: no default is imposed, and the log says none is in force and names ours."""
    cmd = [sys.executable, "-m", "seg_perception.node", "--ros-args", *NODE_ARGS]
    running = _Running(cmd, _environment(None))
    try:
        running.wait_for("subscribed to /run_test/image")
    finally:
        running.stop()
    assert f"Fast DDS profile: none ({IN_FORCE} unset)" in running.output
    assert f"the shipped large-data profile is {SHIPPED_PROFILE}" in running.output


@pytest.mark.parametrize(
    ("argv", "head", "tail"),
    [
        (["run", "--ros-args", "-r", "a:=b"], ["run"], ["--ros-args", "-r", "a:=b"]),
        (
            ["-v", "run", "--params-file", "p.yaml", "--ros-args", "-p", "x:=1"],
            ["-v", "run", "--params-file", "p.yaml"],
            ["--ros-args", "-p", "x:=1"],
        ),
        (["run", "--", "--ros-args", "-p", "x:=1"], ["run", "--", "--ros-args", "-p", "x:=1"], []),
        (["run"], ["run"], []),
        (["compile", "--out", "run", "--ros-args"], ["compile", "--out", "run", "--ros-args"], []),
    ],
)
def test_split_ros_args(argv: list[str], head: list[str], tail: list[str]) -> None:
    assert split_ros_args(argv) == (head, tail)

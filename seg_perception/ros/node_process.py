"""Start `seg_perception_node` in a child process on an isolated, localhost-only DDS domain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seg_perception.ros.dds_profile import (
    LEGACY_PROFILE_VARIABLE,
    PROFILE_VARIABLE,
    installed_fastdds_major,
    profile_variables,
    shipped_profile,
)


def isolated_ros_environment(
    domain_id: int, base: Mapping[str, str] | None = None, large_data_profile: bool = True
) -> dict[str, str]:
    """Environment for a private DDS domain on localhost with (by default) the large-data transport profile."""
    env = dict(os.environ if base is None else base)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    profile = shipped_profile(env) if large_data_profile else None
    if profile is not None:
        env.pop(LEGACY_PROFILE_VARIABLE, None)  # set again below for Fast DDS 2.x only (3.x warns when it is set)
        env.update(dict.fromkeys(profile_variables(installed_fastdds_major(env)), str(profile)))
    return env


def apply_to_this_process(domain_id: int) -> None:
    """Make this process's own rclpy contexts use the same discovery settings as the child."""
    os.environ.update(
        {
            k: v
            for k, v in isolated_ros_environment(domain_id).items()
            if k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE)
        }
    )


class NodeProcess:
    """The node in a subprocess; its output is collected; always stopped by `stop()`."""

    def __init__(
        self,
        domain_id: int,
        params: Mapping[str, Any],
        namespace: str = "/camera",
        extra_ros_args: Sequence[str] = (),
        executable: Sequence[str] = (sys.executable, "-m", "seg_perception.node"),
        base_env: Mapping[str, str] | None = None,
        large_data_profile: bool = True,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        """`executable`: how to start the node (an installed `lib/seg_perception/seg_perception_node`, say);
        `preexec_fn` runs in the child before it starts (a test gives it SIGINT's default disposition)."""
        cmd = [*executable, "--ros-args", "-r", f"__ns:={namespace}"]
        for key, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{key}:={text}"]
        cmd += list(extra_ros_args)
        self.proc = subprocess.Popen(
            cmd,
            env=isolated_ros_environment(domain_id, base_env, large_data_profile),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        if self.proc.stdout is None:
            return
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def exited(self) -> bool:
        """True once the node process has ended (its output then read to the end)."""
        if self.proc.poll() is None:
            return False
        self._reader.join(timeout=1)
        return True

    def last_error(self) -> str:
        """The node's last line that says 'error' (else its last line), for a one-line report."""
        lines = [line.strip() for line in self._lines if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["no output"])[-1]

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        """True once the node has logged `text`; False on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                self._reader.join(timeout=1)
                return text in self.output
            time.sleep(0.05)
        return False

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> float:
        """Signal the node, wait for it to exit (killing it after `timeout`), return the seconds taken."""
        if self.proc.poll() is not None:
            self._reader.join(timeout=1)
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2)
        return time.monotonic() - start

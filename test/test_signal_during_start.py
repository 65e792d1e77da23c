"""A SIGINT that arrives while the node configures or activates (a launch stopped right after it started, a
supervisor's stop during start-up) ends the node quietly with exit 0, as one while it spins does: rclpy's
signal handler shuts the context down, the lifecycle transition's own publish then fails, and that must not
surface as a traceback and exit 1. The race is made exact: the transition's callback shuts the context down
as rclpy's handler does when the signal lands there (a Python-level KeyboardInterrupt is the other case,
already caught), before the transition publishes its state."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from ros_harness import unique_domain_id

from seg_perception.core.model_spec import default_spec_path
from seg_perception.ros.node_process import isolated_ros_environment

SCRIPT = textwrap.dedent(
    """
    import sys
    from seg_perception.ros import segmentation_node as m
    from seg_perception.node import main

    name = sys.argv[1]
    original = getattr(m.SegmentationNode, name)

    def interrupted(self, state):
        result = original(self, state)
        self.get_logger().info("transition done: shutting the context down")
        self.context.try_shutdown()  # what rclpy's SIGINT handler does
        return result

    setattr(m.SegmentationNode, name, interrupted)
    sys.exit(main(["seg_perception_node", "--ros-args", "-p", "model:=" + sys.argv[2], "-p", "backend:=onnxruntime"]))
    """
)


@pytest.mark.parametrize("transition", ["on_configure", "on_activate"])
def test_a_sigint_during_a_start_transition_ends_quietly_with_exit_0(transition: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, transition, str(default_spec_path())],
        env=isolated_ros_environment(unique_domain_id(37)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "transition done: shutting the context down" in output
    assert "Traceback" not in output, output
    assert done.returncode == 0, output

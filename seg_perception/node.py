"""Entry point of `seg_perception_node`: start, spin, and shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn

from seg_perception.core.errors import SegPerceptionError
from seg_perception.ros.dds_profile import describe_profile
from seg_perception.ros.distro import RCLError, distro_name, installed_rclpy_version, refusal, support_notice

if TYPE_CHECKING:
    from seg_perception.ros.segmentation_node import SegmentationNode


def _spin_until_shutdown(executor: SingleThreadedExecutor) -> None:
    """Spin; a callback that fails because a signal shut the context down mid-publish is a clean exit."""
    try:
        executor.spin()
    except RCLError:
        if rclpy.ok():
            raise


def _ignore_further_signals() -> None:
    """Shutdown has begun: a second Ctrl-C, or the SIGINT/SIGTERM a supervisor forwards once more, must not
    interrupt it half-way (a KeyboardInterrupt out of a thread join or a backend's close). Re-applied after
    rclpy's shutdown, which puts back the handlers it found at init."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def main(args: Sequence[str] | None = None) -> int:
    """Run the node until shutdown: exit status 0 after SIGINT/SIGTERM (however many), 2 for a configuration
    error."""
    try:
        return _run(args)
    except KeyboardInterrupt:  # a signal in the instant before shutdown ignored further ones
        _ignore_further_signals()
        return 0


def _start(node: SegmentationNode) -> bool:
    """Configure and activate; False when a SIGINT/SIGTERM during a transition shut the context down (rclpy's
    handler does), which makes the transition's own publish fail with RCLError: that is an interrupted start,
    not a failure, so it ends quietly with exit 0 like a signal while spinning."""
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            if not rclpy.ok(context=node.context):
                return False
            raise SegPerceptionError(node.configure_error or "configure failed")
        node.trigger_activate()
    except RCLError:
        if rclpy.ok(context=node.context):
            raise
        return False
    return rclpy.ok(context=node.context)


def _run(args: Sequence[str] | None) -> int:
    # rclpy's default signal handlers turn SIGINT and SIGTERM into a context shutdown, which ends spin().
    rclpy.init(args=list(args) if args is not None else None)
    node = None
    try:
        distro = distro_name(rclpy_version=installed_rclpy_version())
        refused = refusal(distro)
        if refused:
            raise SegPerceptionError(refused)
        # Imported after the refusal: it needs names an unsupported rclpy lacks.
        from seg_perception.ros.segmentation_node import SegmentationNode

        node = SegmentationNode()
        notice = support_notice(distro, date.today())
        if notice:
            node.get_logger().warning(notice)
        # Large frames over best effort need the large-data profile; say which one this process runs with.
        profile_in_force, profile_line = describe_profile()
        if profile_in_force:
            node.get_logger().info(profile_line)
        else:
            node.get_logger().warning(profile_line)
        if node.config.autostart and not _start(node):
            return 0  # a signal arrived while the node configured or activated: a clean stop, as after spinning
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        _spin_until_shutdown(executor)
    except (SegPerceptionError, ParameterException) as exc:
        # One clear line naming what is wrong; the traceback adds nothing for a configuration error.
        rclpy.logging.get_logger("seg_perception").fatal(f"cannot start: {exc}")
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _ignore_further_signals()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        _ignore_further_signals()
    return 0


if __name__ == "__main__":
    sys.exit(main())

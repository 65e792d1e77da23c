"""Launch seg_perception_node on a camera stream, with its parameters file and the large-data Fast DDS profile."""

import os
import tempfile
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import Shutdown
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from seg_perception.ros.dds_profile import installed_fastdds_major, profile_name, profile_variables
from seg_perception.ros.launch_arguments import (
    checked_params_file,
    default_fastdds_profile,
    node_exit_error,
    parameter_overrides,
    rviz_config,
    rviz_to_start,
    wants_rviz,
)


class LaunchArgumentError(RuntimeError):
    """One line, shown by ros2 launch as `Caught exception in launch ...: <line>` before it exits 1."""


def _rviz_installed() -> bool:
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return False
    return True


def _end_launch(event, context: LaunchContext) -> list:  # event: launch.events.process.ProcessExited
    """The node is the launch: when it exits the launch ends, failing (exit 1) unless the node exited 0."""
    error = node_exit_error(event.returncode)
    if error is not None:
        raise LaunchArgumentError(error)
    return [EmitEvent(event=Shutdown(reason="seg_perception_node exited"))]


def _node_and_rviz(context: LaunchContext) -> list:
    """Resolved at launch time: the params file first, then only the overrides that were given."""

    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    # Every refusal comes before anything starts: a launch that fails later leaves started processes behind.
    try:
        params_file = checked_params_file(value("params_file"))
        start_rviz = rviz_to_start(wants_rviz(value("rviz")), _rviz_installed())
        overrides = parameter_overrides(value("model"), value("backend"), value("use_sim_time"))
    except ValueError as exc:
        raise LaunchArgumentError(str(exc)) from None
    image_topic = value("image_topic")
    node = Node(
        package="seg_perception",
        executable="seg_perception_node",
        name="seg_perception",
        namespace=value("namespace"),
        # Later entries win: the overrides (typed explicitly, launch would YAML-parse strings) beat the file.
        parameters=[params_file, {k: ParameterValue(v, value_type=type(v)) for k, v in overrides.items()}],
        remappings=[
            ("image", image_topic),
            ("image/compressed", image_topic + "/compressed"),
            ("camera_info", value("camera_info_topic")),
        ],
        output="screen",
    )
    actions: list = [RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_end_launch)), node]
    if start_rviz:
        template = os.path.join(get_package_share_directory("seg_perception"), "config", "seg_perception.rviz")
        with open(template, encoding="utf-8") as f:
            text = rviz_config(f.read(), value("namespace"), image_topic)
        with tempfile.NamedTemporaryFile("w", prefix="seg_perception_", suffix=".rviz", delete=False) as out:
            out.write(text)
        # The config lives as long as the launch: removed at shutdown, however the launch ends.
        remove = OnShutdown(on_shutdown=lambda event, context, path=out.name: Path(path).unlink(missing_ok=True))
        actions.insert(0, RegisterEventHandler(remove))
        actions.append(Node(package="rviz2", executable="rviz2", arguments=["-d", out.name], output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    config_dir = os.path.join(get_package_share_directory("seg_perception"), "config")
    fastdds_profile = LaunchConfiguration("fastdds_profile")

    arguments = [
        DeclareLaunchArgument(
            "model",
            default_value="",
            description="Model spec YAML path; empty keeps the params file's model "
            "(whose empty value is the demo model).",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(config_dir, "seg_perception.yaml"),
            description="ROS 2 parameters file for the node; model, backend and use_sim_time override it when given.",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="camera",
            description="Node namespace; outputs appear under <namespace>/segmentation/ (rviz:=true follows it).",
        ),
        DeclareLaunchArgument(
            "image_topic",
            default_value="/camera/image_raw",
            description="Input sensor_msgs/Image topic; <image_topic>/compressed when input_transport is compressed.",
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="/camera/camera_info",
            description="Input sensor_msgs/CameraInfo topic (optional; rescaled onto segmentation/camera_info).",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            choices=["", "auto", "onnxruntime", "tensorrt"],
            description="Inference backend; empty keeps the params file's "
            "(auto: TensorRT when it imports and a GPU exists).",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="",
            description="true: use /clock (rosbag replay, simulation); empty keeps the params file's value (false).",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            # A FASTDDS_DEFAULT_PROFILES_FILE already set in the environment wins, as for `seg-perception run`;
            # a plain path, so --show-args shows the file that will be used.
            default_value=default_fastdds_profile(os.environ, os.path.join(config_dir, profile_name(os.environ))),
            description="Fast DDS XML profiles file (FASTDDS_DEFAULT_PROFILES_FILE); default: that variable if set, "
            "else the shipped profile, which enlarges shared memory so best-effort camera frames arrive whole.",
        ),
        DeclareLaunchArgument(
            "rviz",
            default_value="false",
            description="true: also start rviz2 with the shipped config pointed at namespace and image_topic.",
        ),
    ]

    # Must precede the Node: the process reads the variable when its DDS participant is created.
    # Fast DDS 2.x (Jazzy) reads only the old name of the same variable; 3.x warns when that is set.
    profile_env = [
        SetEnvironmentVariable(name, fastdds_profile) for name in profile_variables(installed_fastdds_major(os.environ))
    ]

    return LaunchDescription([*arguments, *profile_env, OpaqueFunction(function=_node_and_rviz)])

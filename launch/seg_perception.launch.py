"""Launch seg_perception_node on a camera stream, with its parameters file and the large-data Fast DDS profile."""

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from seg_perception.ros.launch_arguments import parameter_overrides, rviz_config, wants_rviz


def _node_and_rviz(context: LaunchContext) -> list:
    """Resolved at launch time: the params file first, then only the overrides that were given."""

    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    image_topic = value("image_topic")
    overrides = parameter_overrides(value("model"), value("backend"), value("use_sim_time"))
    node = Node(
        package="seg_perception",
        executable="seg_perception_node",
        name="seg_perception",
        namespace=value("namespace"),
        # Later entries win: the overrides (typed explicitly, launch would YAML-parse strings) beat the file.
        parameters=[value("params_file"), {k: ParameterValue(v, value_type=type(v)) for k, v in overrides.items()}],
        remappings=[
            ("image", image_topic),
            ("image/compressed", image_topic + "/compressed"),
            ("camera_info", value("camera_info_topic")),
        ],
        output="screen",
    )
    actions = [node]
    if wants_rviz(value("rviz")):
        template = os.path.join(get_package_share_directory("seg_perception"), "config", "seg_perception.rviz")
        with open(template, encoding="utf-8") as f:
            text = rviz_config(f.read(), value("namespace"), image_topic)
        with tempfile.NamedTemporaryFile("w", prefix="seg_perception_", suffix=".rviz", delete=False) as out:
            out.write(text)
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
            # A FASTDDS_DEFAULT_PROFILES_FILE already set in the environment wins, as for `seg-perception run`.
            default_value=EnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE", default_value=os.path.join(config_dir, "fastdds_large_data.xml")
            ),
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
    fastdds_env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", fastdds_profile)
    # Fast DDS 2.x (Jazzy) reads only the old name of the same variable.
    fastrtps_env = SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", fastdds_profile)

    return LaunchDescription([*arguments, fastdds_env, fastrtps_env, OpaqueFunction(function=_node_and_rviz)])

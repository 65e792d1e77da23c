"""Launch seg_perception_node on a camera stream, with its parameters file and the large-data Fast DDS profile."""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    config_dir = os.path.join(get_package_share_directory("seg_perception"), "config")

    model = LaunchConfiguration("model")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    image_topic = LaunchConfiguration("image_topic")
    camera_info_topic = LaunchConfiguration("camera_info_topic")
    backend = LaunchConfiguration("backend")
    use_sim_time = LaunchConfiguration("use_sim_time")
    fastdds_profile = LaunchConfiguration("fastdds_profile")

    arguments = [
        DeclareLaunchArgument(
            "model",
            default_value="",
            description="Model spec YAML path; empty selects the bundled demo model.",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(config_dir, "seg_perception.yaml"),
            description="ROS 2 parameters file for the node; model, backend and use_sim_time override it.",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="camera",
            description="Node namespace; outputs appear under <namespace>/segmentation/.",
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
            default_value="auto",
            choices=["auto", "onnxruntime", "tensorrt"],
            description="Inference backend; auto picks TensorRT when it imports and a GPU exists.",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            description="Use /clock (rosbag replay, simulation) instead of the wall clock.",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            default_value=os.path.join(config_dir, "fastdds_large_data.xml"),
            description="Fast DDS XML profiles file (FASTDDS_DEFAULT_PROFILES_FILE); "
            "the default enlarges shared memory so best-effort camera frames arrive whole.",
        ),
    ]

    # Must precede the Node: the process reads the variable when its DDS participant is created.
    fastdds_env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", fastdds_profile)

    node = Node(
        package="seg_perception",
        executable="seg_perception_node",
        name="seg_perception",
        namespace=namespace,
        parameters=[
            params_file,
            {
                # Explicit types: launch would otherwise YAML-parse the strings ("" -> null, "1" -> int).
                "model": ParameterValue(model, value_type=str),
                "backend": ParameterValue(backend, value_type=str),
                "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
            },
        ],
        remappings=[
            ("image", image_topic),
            ("image/compressed", [image_topic, "/compressed"]),
            ("camera_info", camera_info_topic),
        ],
        output="screen",
    )

    return LaunchDescription([*arguments, fastdds_env, node])

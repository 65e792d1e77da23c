"""rosbag2 workflows on the `rosbags` library: synthetic drives, offline processing and replay over DDS.

Only `replay` imports rclpy; writing and processing bags works on a machine without a ROS install.
"""

"""ROS 2 glue: everything that imports rclpy or message types lives here."""

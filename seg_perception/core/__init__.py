"""Pure core: no rclpy, tensorrt or pycuda imports anywhere below this package."""
